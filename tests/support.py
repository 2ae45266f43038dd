"""Test helpers: a real uvicorn server in a thread, and a GraphQL client over HTTP."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from cognitionos.app import server_config
from cognitionos.config import Settings
from cognitionos.embedded import free_port
from cognitionos.runtime import Runtime
from cognitionos.services.templating import TemplateRenderer
from cognitionos.services.workflows import Dispatch, Engine
from cognitionos.services.workflows.steps import SqlPool, StepContext, StepDeps

STRONG_PASSWORD = "correct-horse-42"

EXECUTION = """query($id: ID!) { execution(id: $id) {
    id status inputs outputs error tokens costUsd startedAt finishedAt
    workflow { key version }
    steps { id stepKey status attempt inputs output error startedAt finishedAt } } }"""
CREATE_WORKFLOW = """mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) {
    id key version steps { key kind dependsOn } } }"""
EXECUTE = """mutation($input: ExecuteWorkflowInput!) { executeWorkflow(input: $input) {
    id status } }"""


def no_rendering() -> TemplateRenderer:
    """A closed renderer, which refuses to render: for running a step kind directly, on a
    config the runner would have rendered already."""
    renderer = TemplateRenderer()
    renderer.close()
    return renderer


def step_context(settings: Settings, *, sql: SqlPool | None = None) -> StepContext:
    """What a step kind sees, for running one directly (no database behind it; ``sql``:
    the SQL steps' pool)."""
    return StepContext(
        deps=StepDeps(
            settings=settings,
            sessionmaker=None,  # type: ignore[arg-type]
            renderer=no_rendering(),
            sql=sql,
        ),
        execution_id=uuid.uuid4(),
        step_id=uuid.uuid4(),
        step_key="s",
        attempt=1,
        actor_id=None,
    )


class _Lost:
    """A dispatcher whose every dispatch is lost."""

    async def dispatch(self, items: Sequence[Dispatch]) -> None:
        return None


@asynccontextmanager
async def undispatched_engine(settings: Settings) -> AsyncIterator[Engine]:
    """The engine of a web runtime whose process dies between each commit and its
    dispatch: what it starts is in PostgreSQL, never in the queue."""
    async with Runtime.start(settings, role="web", dispatcher=_Lost()) as runtime:
        yield runtime.engine


class LiveServer:
    """The real app behind real HTTP on a loopback port."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.port = free_port()
        if isinstance(getattr(app.state, "settings", None), Settings):
            # An app of create_app: served exactly as `cognitionos serve` serves it.
            config = server_config(app, host="127.0.0.1", port=self.port)
        else:
            config = uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                lifespan="on",
                ws="websockets-sansio",
            )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self._gql: GQL | None = None

    @property
    def gql(self) -> GQL:
        """A GraphQL client for this server, closed when the server stops."""
        if self._gql is None:
            self._gql = GQL(self.url)
        return self._gql

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._gql is not None:
            self._gql.client.close()
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class GQL:
    """Posts GraphQL documents; ``token`` is sent as a Bearer credential."""

    base_url: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return self.client.post(f"{self.base_url}/graphql", json=body, headers=sent)

    def ok(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        response = self.post(query, variables, **kw)
        payload = response.json()
        assert "errors" not in payload, payload
        assert response.status_code == 200
        return payload["data"]

    def error(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The first error of a response that must have one."""
        payload = self.post(query, variables, **kw).json()
        assert payload.get("errors"), payload
        return payload["errors"][0]

    def register(self, email: str, password: str = STRONG_PASSWORD) -> dict[str, Any]:
        data = self.ok(
            """mutation($input: RegisterInput!) { register(input: $input) {
                accessToken refreshToken expiresIn user { id email role } } }""",
            {"input": {"email": email, "password": password}},
        )
        return data["register"]  # type: ignore[no-any-return]

    def member(self, email: str = "member@example.com") -> str:
        """Register a member and return their access token."""
        return str(self.register(email)["accessToken"])

    def wait_execution(self, execution_id: str, token: str, *, timeout: float = 30) -> Any:
        """Poll until the execution is finished (or waiting); return it with its steps."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.ok(EXECUTION, {"id": execution_id}, token=token)["execution"]
            if execution["status"] in ("SUCCEEDED", "FAILED", "CANCELLED", "WAITING"):
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still {execution['status']}: {execution}")
            time.sleep(0.05)

    def wait_step(
        self, execution_id: str, token: str, step_key: str, status: str, *, timeout: float = 30
    ) -> Any:
        """Poll until a step reaches ``status``; return the execution."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.ok(EXECUTION, {"id": execution_id}, token=token)["execution"]
            step = next(s for s in execution["steps"] if s["stepKey"] == step_key)
            if step["status"] == status:
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"step {step_key} is {step['status']}, not {status}")
            time.sleep(0.05)

    def login(self, email: str, password: str = STRONG_PASSWORD) -> httpx.Response:
        return self.post(
            """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
                accessToken refreshToken user { id role } } }""",
            {"e": email, "p": password},
        )
