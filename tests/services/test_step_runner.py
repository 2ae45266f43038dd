"""The StepRunner's one failure policy: an inline step (run inside its claim's
transaction) that raises ends exactly as a dispatched step raising the same would."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from pydantic import StrictStr
from sqlalchemy import select

from cognitionos.db.models import Role, StepExecution, User, WorkflowExecution
from cognitionos.runtime import Runtime
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BudgetExceeded
from cognitionos.services.workflows import Dispatch, create_workflow
from cognitionos.services.workflows.steps import StepContext, StepDeferred, register
from cognitionos.services.workflows.steps.base import Kind, StepConfig
from tests.conftest import Stack


class RaisesConfig(StepConfig):
    raises: StrictStr


def _raise(what: str) -> None:
    if what == "timeout":
        raise TimeoutError
    if what == "deferred":
        raise StepDeferred("no agent is free", delay=30)
    raise BudgetExceeded("the monthly budget is spent")


class RaisesInline(Kind):
    name: ClassVar[str] = "TEST_RAISES_INLINE"
    config_model = RaisesConfig
    inline: ClassVar[bool] = True

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        _raise(RaisesConfig.read(raw).raises)


class RaisesDispatched(RaisesInline):
    name: ClassVar[str] = "TEST_RAISES_DISPATCHED"
    inline: ClassVar[bool] = False


register(RaisesInline())
register(RaisesDispatched())


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Dispatch] = []

    async def dispatch(self, items: Sequence[Dispatch]) -> None:
        self.sent.extend(items)


async def _runs(stack: Stack, kind: str, raises: str) -> list[tuple[Any, ...]]:
    """Run the one step of a workflow of ``kind`` until nothing is dispatched any more
    (at most five times); the step's state after each run."""
    recorder = Recorder()
    settings = stack.settings()
    async with Runtime.start(settings, role="worker", dispatcher=recorder) as runtime:
        async with runtime.sessionmaker() as session:
            user = User(
                email=f"{uuid.uuid4().hex}@example.com", password_hash="x", role=Role.MEMBER
            )
            session.add(user)
            await session.commit()
            key = f"raises-{uuid.uuid4().hex[:8]}"
            step = {"key": "s", "kind": kind, "config": {"raises": raises}}
            step["retry"] = {"maxAttempts": 2, "initialDelaySeconds": 1}
            await create_workflow(
                session, actor_id=user.id, key=key, version="1.0.0", name=key, steps=[step]
            )
        principal = Principal(user_id=user.id, role=Role.MEMBER)
        execution = await runtime.engine.execute(
            principal=principal, key=key, version=None, inputs={}
        )
        states: list[tuple[Any, ...]] = []
        for _ in range(5):
            if not recorder.sent:
                break
            item = recorder.sent.pop()
            await runtime.steps.run(item.step_id, item.seq)
            async with runtime.sessionmaker() as session:
                row = await session.scalar(
                    select(StepExecution).where(StepExecution.execution_id == execution.id)
                )
                status = await session.scalar(
                    select(WorkflowExecution.status).where(WorkflowExecution.id == execution.id)
                )
            assert row is not None
            deferred = [d.defer_seconds is not None and d.defer_seconds > 0 for d in recorder.sent]
            states.append((row.status.value, row.attempt, row.error, status.value, deferred))
            if raises == "deferred":
                break  # deferred again each time: once says it
        return states


@pytest.mark.parametrize(
    ("raises", "expected"),
    [
        (
            "timeout",
            [
                ("RETRYING", 1, "timed out after 300s", "RUNNING", [True]),
                ("FAILED", 2, "timed out after 300s", "FAILED", []),
            ],
        ),
        ("deferred", [("RETRYING", 0, "no agent is free", "RUNNING", [True])]),
        (
            "budget",
            [("FAILED", 1, "BUDGET_EXCEEDED: the monthly budget is spent", "FAILED", [])],
        ),
    ],
)
async def test_an_inline_step_that_raises_ends_as_a_dispatched_one(
    stack: Stack, raises: str, expected: list[tuple[Any, ...]]
) -> None:
    dispatched = await _runs(stack, "TEST_RAISES_DISPATCHED", raises)
    inline = await _runs(stack, "TEST_RAISES_INLINE", raises)
    assert dispatched == expected
    assert inline == expected  # settled, never rolled back into QUEUED and run again
