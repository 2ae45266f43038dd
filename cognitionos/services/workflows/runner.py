"""``StepRunner``: a step's whole run, from its dispatch to how it ended.

It claims the step (a stale dispatch is a no-op; an approval step is parked), runs its
kind — an inline kind inside the claim's transaction, any other with heartbeats that
keep its lease — maps whatever the run raised through one failure policy
(``outcome_of``), and settles the step. A lone step that settling made ready (a chain's
next link) is run here at once instead of a round trip through the queue; it is
already QUEUED in PostgreSQL, so if this process dies the reconciler dispatches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from opentelemetry import trace as otel_trace

from cognitionos.observability import get_logger
from cognitionos.observability.tracing import continued_span
from cognitionos.services.errors import CognitionError
from cognitionos.services.workflows.engine import Engine
from cognitionos.services.workflows.lifecycle import (
    ClaimedStep,
    Deferred,
    Failed,
    HeartbeatResult,
    Outcome,
    Succeeded,
)
from cognitionos.services.workflows.steps import (
    StepDeferred,
    StepDeps,
    StepFailure,
    StepKind,
    get_kind,
)
from cognitionos.services.workflows.templates import TemplateFailure, render_config
from cognitionos.services.workflows.transitions import Dispatch

__all__ = ["StepRunner", "outcome_of"]

log = get_logger("cognitionos.engine")
_tracer = otel_trace.get_tracer("cognitionos.jobs")
_MAX_EAGER = 8  # steps run at once without the queue, per runner


def outcome_of(
    exc: Exception, step: ClaimedStep, inputs: dict[str, Any] | None
) -> Failed | Deferred:
    """The one failure policy, for inline and dispatched steps alike: what a step's
    render or run raising ``exc`` means for the step."""
    if isinstance(exc, StepDeferred):
        return Deferred(str(exc), exc.delay, inputs)
    if isinstance(exc, StepFailure):
        return Failed(str(exc), exc.retryable, inputs)
    if isinstance(exc, TemplateFailure):
        return Failed(str(exc), retryable=False, inputs=inputs)
    if isinstance(exc, TimeoutError):
        timeout = step.spec.timeout_seconds
        return Failed(f"timed out after {timeout:g}s", retryable=True, inputs=inputs)
    if isinstance(exc, CognitionError):  # e.g. BUDGET_EXCEEDED, LLM_UNAVAILABLE
        return Failed(f"{exc.code}: {exc.message}", retryable=False, inputs=inputs)
    log.error("step raised", step=step.step_key, exc_info=exc)
    return Failed(f"{type(exc).__name__}: {exc}", retryable=True, inputs=inputs)


class StepRunner:
    """Runs dispatched steps for one process, as ``owner`` of their leases."""

    def __init__(
        self, *, engine: Engine, deps: StepDeps, owner: str, max_eager: int = _MAX_EAGER
    ) -> None:
        self.engine = engine
        self.deps = deps
        self.owner = owner
        self._max_eager = max_eager
        self._eager: set[asyncio.Task[None]] = set()

    async def run(self, step_id: uuid.UUID, seq: int, trace: dict[str, str] | None = None) -> str:
        """Run dispatch ``seq`` of a step, in a span that continues the trace of whatever
        dispatched it; returns how the claim went (``ClaimState``)."""
        attributes: dict[str, str | int] = {
            "messaging.system": "arq",
            "messaging.operation.type": "process",
            "messaging.message.id": f"step:{step_id}:{seq}",
            "cognitionos.step.id": str(step_id),
            "cognitionos.step.dispatch_seq": seq,
        }
        with continued_span(_tracer, "run_step", trace, attributes=attributes):
            # The claim names the span after the step's kind, or marks it stale.
            return await self._run(step_id, seq)

    async def _run(self, step_id: uuid.UUID, seq: int) -> str:
        async with self.engine.claim(step_id, seq, self.owner, hand_back=self._room()) as claim:
            step = claim.step
            kind = get_kind(step.spec.kind) if step is not None else None
            if step is not None and (kind is None or kind.inline):
                outcome = await self._attempt(step, kind, watch=False)
                assert outcome is not None  # only a watched run can lose its lease
                await claim.settle(outcome)
        self._run_soon(claim.handed_back)
        if step is None or kind is None or claim.settled:
            return claim.state.value
        outcome = await self._attempt(step, kind, watch=True)
        if outcome is not None:
            self._run_soon(
                await self.engine.settle(step_id, self.owner, outcome, hand_back=self._room())
            )
        return claim.state.value

    async def _attempt(
        self, step: ClaimedStep, kind: StepKind | None, *, watch: bool
    ) -> Outcome | None:
        """Render and run the step. ``watch``: with heartbeats (None when the lease was
        lost: the step is someone else's now)."""
        if kind is None:
            return Failed(f"unknown step kind {step.spec.kind}", retryable=False)
        ctx = step.context(self.deps)
        config: dict[str, Any] | None = None
        try:
            config = await render_config(
                step.spec.config,
                kind.templated,
                ctx.variables,
                renderer=self.deps.renderer,
                time_limit=step.spec.timeout_seconds,
            )
            run = asyncio.wait_for(kind.run(ctx, config), step.spec.timeout_seconds)
            if watch:
                task = asyncio.create_task(run)
                verdict = await self._watch(step, task)
                if verdict == HeartbeatResult.LOST:
                    log.warning("lease lost; another worker owns the step now", step=step.step_key)
                    return None
                if verdict == HeartbeatResult.CANCELLED:
                    return Failed("cancelled", retryable=False, inputs=config)
                output = task.result()
            else:
                output = await run
        except Exception as exc:
            return outcome_of(exc, step, config)
        try:
            json.dumps(output)
        except (TypeError, ValueError) as exc:
            return Failed(f"output is not JSON: {exc}", retryable=False, inputs=config)
        return Succeeded(
            output,
            inputs=config,
            cost_usd=ctx.cost_usd,
            tokens=ctx.tokens,
            served_by=ctx.served_by or None,
            notes=ctx.llm_notes() or None,
        )

    async def _watch(self, step: ClaimedStep, task: asyncio.Task[Any]) -> str:
        """Heartbeat until ``task`` is done; cancel it when the step was cancelled or its
        lease taken over."""
        interval = max(0.05, self.deps.settings.step_lease_seconds / 3)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return HeartbeatResult.OK
                try:
                    verdict = await self.engine.heartbeat(step.step_id, self.owner)
                except Exception:  # the DB blinked: try again next beat, the lease has slack
                    log.warning("heartbeat failed", step=step.step_key, exc_info=True)
                    continue
                if verdict != HeartbeatResult.OK:
                    return verdict
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _room(self) -> bool:
        return len(self._eager) < self._max_eager

    def _run_soon(self, item: Dispatch | None) -> None:
        if item is None:
            return
        task = asyncio.create_task(self._run_eagerly(item))
        self._eager.add(task)
        task.add_done_callback(self._eager.discard)

    async def _run_eagerly(self, item: Dispatch) -> None:
        """Failures only log: the step stays QUEUED and the reconciler dispatches it."""
        try:
            await self.run(item.step_id, item.seq, item.trace)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "eager step failed; the reconciler will dispatch it", step=str(item.step_id)
            )

    async def aclose(self) -> None:
        """Stop the steps run without the queue (their leases expire; they run again)."""
        tasks = list(self._eager)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
