"""What a runtime (and a served app) holds is gone when it closes: no task left running,
no cache holding rows, no render process. Tests, and a process that runs several apps,
start many of them on fresh event loops; nothing of one may outlive it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from cognitionos.db.models import Role, StepExecution, StepStatus, User
from cognitionos.runtime import Runtime
from cognitionos.services.auth import Principal
from cognitionos.services.workflows import create_workflow
from cognitionos.services.workflows.transitions import Dispatch
from tests.conftest import ENGINE_SETTINGS, Stack
from tests.support import LiveServer
from tests.test_subscriptions import chain, start
from tests.test_template_limits import gone, render_processes
from tests.ws_support import WS

WITH_STEPS = """subscription($id: ID!) {
    executionUpdated(id: $id) { version type execution { status steps { stepKey } } } }"""


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Dispatch] = []

    async def dispatch(self, items: Sequence[Dispatch]) -> None:
        self.sent.extend(items)


async def first_dispatch(
    runtime: Runtime, recorder: Recorder, key: str, steps: list[dict[str, Any]]
) -> Dispatch:
    """A member's workflow of ``steps``, executed: the dispatch of its first step."""
    async with runtime.sessionmaker() as session:
        user = User(email=f"{uuid.uuid4().hex}@example.com", password_hash="x", role=Role.MEMBER)
        session.add(user)
        await session.commit()
        await create_workflow(
            session, actor_id=user.id, key=key, version="1.0.0", name=key, steps=steps
        )
    principal = Principal(user_id=user.id, role=Role.MEMBER)
    await runtime.engine.execute(principal=principal, key=key, version=None, inputs={})
    return recorder.sent.pop()


async def test_a_closed_runtime_leaves_no_task_and_no_cached_rows(stack: Stack) -> None:
    recorder = Recorder()
    async with Runtime.start(stack.settings(), role="worker", dispatcher=recorder) as runtime:
        steps = [
            {
                "key": f"s{i}",
                "kind": "TRANSFORM",
                "config": {"template": str(i)},
                "dependsOn": [f"s{i - 1}"] if i else [],
            }
            for i in range(20)
        ]
        first = await first_dispatch(runtime, recorder, "closing", steps)
        await runtime.steps.run(first.step_id, first.seq)  # the chain's next links run on
        assert runtime.engine.cached > 0
    # Closed while the chain may still be running: its tasks were stopped, not left behind.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert runtime.engine.cached == 0


async def test_a_closed_runtime_leaves_no_render_process(stack: Stack) -> None:
    recorder = Recorder()
    async with Runtime.start(stack.settings(), role="worker", dispatcher=recorder) as runtime:
        steps = [{"key": "t", "kind": "TRANSFORM", "config": {"template": "{{ 6 * 7 }}"}}]
        first = await first_dispatch(runtime, recorder, "renders", steps)
        await runtime.steps.run(first.step_id, first.seq)
        async with runtime.sessionmaker() as session:
            step = await session.get(StepExecution, first.step_id)
        assert step is not None and step.status is StepStatus.SUCCEEDED
        assert step.output == 42
        theirs = runtime.renderer.processes  # the step rendered in one of them
        assert theirs and theirs <= render_processes()
    assert all(gone(pid) for pid in theirs)
    assert not render_processes() & theirs


async def test_a_stopped_app_leaves_no_subscription_read_and_no_cached_rows(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(**ENGINE_SETTINGS)
    gql = server.gql
    token = gql.member("closing@example.com")
    chain(gql, token, "watched", n=3)
    async with WS(server.url) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        execution_id = start(gql, token, "watched")
        await ws.subscribe("1", WITH_STEPS, {"id": execution_id})
        payloads = await ws.collect("1")
    last = payloads[-1]["data"]["executionUpdated"]
    assert last["execution"]["status"] == "SUCCEEDED"
    assert [s["stepKey"] for s in last["execution"]["steps"]] == ["s0", "s1", "s2"]
    snapshots = server.app.state.services.snapshots
    assert snapshots.cached > 0  # the workflow version and the execution as it is now
    # Web and in-process worker rendered in the same processes, the runtime's.
    rendering = server.app.state.services.renderer.processes
    assert rendering and rendering <= render_processes()
    server.stop()
    assert snapshots.cached == 0
    assert snapshots.reads == 0
    assert all(gone(pid) for pid in rendering)
