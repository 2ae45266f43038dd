"""Traces end to end: a web process and a separate ``cognitionos worker`` export over
OTLP/HTTP to a receiver this test runs, and one run is one trace from the request to
the worker's step, its database work and its model call."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cognitionos.db import migrate
from cognitionos.embedded import free_port
from tests.conftest import TEST_SECRET, Stack, _truncate
from tests.llm_fake import FakeLLM
from tests.otlp import Receiver, Span, by_id, descends
from tests.support import GQL
from tests.test_workflows import create, transform
from tests.ws_support import LEGACY_WS, TRANSPORT_WS, WS

CLI = [sys.executable, "-m", "cognitionos"]
NAMED = """mutation executeWorkflow($input: ExecuteWorkflowInput!) {
    executeWorkflow(input: $input) { id } }"""
UNNAMED = "mutation($input: ExecuteWorkflowInput!) { executeWorkflow(input: $input) { id } }"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    live = Receiver().start()
    yield live
    live.stop()


TRACED_DATABASE = "cognitionos_tracing"


@pytest.fixture(autouse=True)
def traced_database(stack: Stack) -> str:
    """A database of these tests' own, emptied for each: the session's in-process workers
    reconcile the shared one, and would take (and run, untraced) a step whose dispatch a
    test here loses on purpose."""
    stack.postgres.ensure_database(TRACED_DATABASE)
    url = stack.postgres.url(TRACED_DATABASE)
    migrate(url)
    asyncio.run(_truncate(url.replace("postgresql+asyncpg://", "postgresql://")))
    return url


def _env(stack: Stack, receiver: Receiver, llm_fake: FakeLLM, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COGNITIONOS_", "OTEL_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PORT")
    }
    env.update(
        COGNITIONOS_ENV="production",
        DATABASE_URL=stack.postgres.url(TRACED_DATABASE),
        # Database 3: no in-process worker of this test session takes these jobs.
        REDIS_URL=stack.redis.url.rsplit("/", 1)[0] + "/3",
        SECRET_KEY=TEST_SECRET,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OPENAI_API_KEY="sk-test-openai",
        OPENAI_BASE_URL=f"{llm_fake.url}/openai/v1",
        **extra,
    )
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the web process never became ready")


def _one(spans: list[Span], **match: Any) -> Span | None:
    """The span matching every ``name=value``; ``attr_a__b`` is the attribute ``a.b``."""
    found = [
        s
        for s in spans
        if all(
            (s.attributes.get(k[5:].replace("__", ".")) if k.startswith("attr_") else getattr(s, k))
            == v
            for k, v in match.items()
        )
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def _run_trace(spans: list[Span], execution_id: str) -> dict[str, Span] | None:
    """The spans of one run, once all of them have arrived."""
    ask = _one(spans, attr_cognitionos__execution__id=execution_id, name="run_step LLM")
    shout = _one(spans, attr_cognitionos__execution__id=execution_id, name="run_step TRANSFORM")
    if ask is None or shout is None:
        return None
    index = by_id(spans)
    operation = index.get(ask.parent_id)
    chat = next(
        (s for s in spans if s.name == "chat gpt-4o-mini" and descends(s, ask, index)), None
    )
    if operation is None or chat is None:
        return None
    http = next((s for s in spans if s.parent_id == chat.span_id and s.name == "POST"), None)
    server = index.get(operation.parent_id)
    if http is None or server is None:
        return None
    return {"ask": ask, "shout": shout, "operation": operation, "chat": chat, "http": http,
            "server": server}  # fmt: skip


def test_a_run_is_one_trace_across_web_and_worker(
    stack: Stack,
    llm_fake: FakeLLM,
    receiver: Receiver,
    processes: list[Any],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "web.log").open("w")
    request.addfinalizer(log.close)
    web = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=_env(stack, receiver, llm_fake),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    processes.append(web)
    _wait_ready(url)
    gql = GQL(url)
    request.addfinalizer(gql.client.close)
    token = gql.member()
    create(
        gql,
        token,
        "traced",
        [
            {"key": "ask", "kind": "LLM", "config": {"prompt": "Say hi"}},
            transform("shout", "done", "ask"),
        ],
    )
    run = {"input": {"workflowKey": "traced", "inputs": {}}}

    # First run: its job is lost before any worker takes it (Redis flushed, say). The
    # worker's reconciler dispatches it again, and the trace still goes on.
    lost = gql.ok(NAMED, run, token=token)["executeWorkflow"]["id"]
    queue = redis.Redis.from_url(stack.redis.url.rsplit("/", 1)[0] + "/3")
    jobs = queue.keys("arq:job:step:*")
    assert len(jobs) == 1, jobs
    queue.delete("arq:queue", *jobs)
    queue.close()
    worker = subprocess.Popen(
        [*CLI, "worker"],
        env=_env(
            stack,
            receiver,
            llm_fake,
            COGNITIONOS_DISPATCH_GRACE_SECONDS="0.5",
            COGNITIONOS_RECONCILE_INTERVAL_SECONDS="0.2",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes.append(worker)
    finished = gql.wait_execution(lost, token, timeout=60)
    assert finished["status"] == "SUCCEEDED", finished["steps"]
    # Second run: dispatched as usual, by an operation without a name.
    normal = gql.ok(UNNAMED, run, token=token)["executeWorkflow"]["id"]
    assert gql.wait_execution(normal, token)["status"] == "SUCCEEDED"

    for execution_id, operation_name in ((lost, "mutation executeWorkflow"), (normal, "mutation")):
        found = receiver.wait_for(lambda spans, e=execution_id: _run_trace(spans, e))
        trace_id = found["ask"].trace_id
        assert {s.trace_id for s in found.values()} == {trace_id}
        spans = [s for s in receiver.snapshot() if s.trace_id == trace_id]
        index = by_id(spans)
        server, operation = found["server"], found["operation"]
        # web: POST /graphql → the GraphQL operation, named by the conventions
        assert (server.service, server.name, server.kind) == (
            "cognitionos",
            "POST /graphql",
            "SERVER",
        )
        assert not server.parent_id
        assert operation.service == "cognitionos"
        assert operation.name == operation_name
        assert operation.attributes["graphql.operation.type"] == "mutation"
        assert operation.attributes["cognitionos.graphql.root_field"] == "executeWorkflow"
        # the operation's own database and Redis work (the enqueue) are its children
        web_db = [s for s in spans if s.service == "cognitionos" and descends(s, operation, index)]
        assert any(s.attributes.get("db.system") == "postgresql" for s in web_db), web_db
        assert any(s.attributes.get("db.system") == "redis" for s in web_db), web_db
        # worker: the step continues the request's trace, the next step the step's
        ask, shout = found["ask"], found["shout"]
        assert (ask.service, ask.kind) == ("cognitionos-worker", "CONSUMER")
        assert ask.attributes["cognitionos.step.key"] == "ask"
        assert ask.attributes["cognitionos.step.attempt"] == 1
        assert shout.parent_id == ask.span_id
        worker_db = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
        scopes = {s.scope.rsplit(".", 1)[-1] for s in worker_db if descends(s, ask, index)}
        assert {"sqlalchemy", "asyncpg"} <= scopes, scopes
        # the model call: provider, model, tokens, cost, outcome; its HTTP request below it
        chat = found["chat"]
        assert chat.kind == "CLIENT" and not chat.error
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert chat.attributes["cognitionos.llm.cost_usd"] > 0
        assert chat.attributes["cognitionos.llm.outcome"] == "ok"
        assert chat.attributes["cognitionos.llm.purpose"] == "LLM_STEP"
        http = found["http"]
        assert http.kind == "CLIENT" and http.service == "cognitionos-worker"
        called = http.attributes.get("url.full", http.attributes.get("http.url"))
        assert str(called).endswith("/openai/v1/chat/completions")

    # Websockets: one span per subscribe, in either protocol, however many messages follow.
    follow = "subscription Follow($id: ID!) { executionUpdated(id: $id) { position type } }"

    async def subscribe(protocol: str, name: str) -> int:
        async with WS(url, protocol) as ws:
            assert (await ws.init(token))["type"] == "connection_ack"
            await ws.subscribe("1", follow.replace("Follow", name), {"id": normal})
            return len(await ws.collect("1"))

    sent = {name: asyncio.run(subscribe(p, name)) for p, name in ((TRANSPORT_WS, "Follow"),
            (LEGACY_WS, "FollowLegacy"))}  # fmt: skip
    for name, messages in sent.items():
        assert messages > 3
        span = receiver.wait_for(lambda spans, n=name: _one(spans, name=f"subscription {n}"))
        assert (span.service, span.kind, span.parent_id) == ("cognitionos", "SERVER", "")
        assert span.attributes["graphql.operation.name"] == name
        index = by_id(receiver.snapshot())
        below = [s for s in receiver.snapshot() if descends(s, span, index)]
        assert any(s.attributes.get("db.system") == "postgresql" for s in below)  # the replay
        assert not any(s.name.startswith("subscription") for s in below)

    # Background polling (an idle worker's Redis, the loops' "anything due?") is no trace.
    orphans = [s for s in receiver.snapshot() if s.kind == "CLIENT" and not s.parent_id]
    assert orphans == []
