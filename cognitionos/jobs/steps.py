"""The step job and the engine's background loops (reconciler, scheduler)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace as otel_trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.jobs._idle import notifications_due, schedules_due, steps_in_flight
from cognitionos.observability import get_logger
from cognitionos.observability.tracing import continued_span
from cognitionos.services.memory import purge_expired
from cognitionos.services.notifications import deliver_due
from cognitionos.services.workflows import Dispatch, Engine, reconcile, run_claimed, tick

__all__ = ["background_loop", "engine_loops", "purge_memories", "run_eagerly", "run_step"]

log = get_logger("cognitionos.worker")
_tracer = otel_trace.get_tracer("cognitionos.jobs")


async def run_step(
    ctx: dict[str, Any], step_id: str, seq: int, trace: dict[str, str] | None = None
) -> str:
    """Claim the step (a stale or duplicate dispatch is a no-op) and run it, in a span
    that continues the trace of whatever dispatched it (``trace``)."""
    engine: Engine = ctx["workflow_engine"]
    owner: str = ctx["worker_id"]
    attributes: dict[str, str | int] = {
        "messaging.system": "arq",
        "messaging.operation.type": "process",
        "messaging.message.id": f"step:{step_id}:{seq}",
        "cognitionos.step.id": step_id,
        "cognitionos.step.dispatch_seq": seq,
    }
    with continued_span(_tracer, "run_step", trace, attributes=attributes):
        # The engine names the span after the step; an inline kind (TRANSFORM) has run
        # inside claim() already, a stale dispatch is marked so.
        claimed = await engine.claim(uuid.UUID(step_id), seq, owner)
        if claimed is None:
            return "skipped"
        await run_claimed(engine, claimed, owner)
        return "ran"


async def run_eagerly(ctx: dict[str, Any], item: Dispatch) -> None:
    """Run a step handed over by the engine without the queue; failures only log
    (the step stays QUEUED in Postgres and the reconciler dispatches it)."""
    try:
        await run_step(ctx, str(item.step_id), item.seq, item.trace)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("eager step failed; the reconciler will dispatch it", step=str(item.step_id))


async def background_loop(
    name: str,
    every: float,
    work: Callable[[], Awaitable[int]],
    *,
    quiet: bool = False,
    due: Callable[[], Awaitable[bool]] | None = None,
    regardless_every: int = 0,
) -> None:
    """Run ``work`` forever, ``every`` seconds; failures are logged, never fatal. With
    ``due``, a pass runs only when ``due()`` says there is something to do (and, with
    ``regardless_every``, every that many ticks anyway)."""
    ticks = 0
    while True:
        ticks += 1
        try:
            regardless = regardless_every > 0 and ticks % regardless_every == 0
            if due is None or regardless or await due():
                moved = await work()
                if moved and not quiet:
                    log.info(f"{name} pass", moved=moved)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(f"{name} pass failed")
        await asyncio.sleep(every)


async def purge_memories(engine: Engine) -> int:
    async with engine.sessionmaker() as session:
        return await purge_expired(session)


async def deliver_notifications(engine: Engine) -> int:
    return await deliver_due(
        engine.sessionmaker, engine.settings, engine.redis, metrics=engine.metrics
    )


def engine_loops(
    engine: Engine, reader: async_sessionmaker[AsyncSession]
) -> list[asyncio.Task[None]]:
    """The worker's loops. Idle, each asks one cheap question per tick (``_idle``)."""
    settings = engine.settings
    # Agents' loads are healed by a full reconciler pass; with no step in flight that
    # pass runs this often (a stale load is only stale after minutes anyway).
    heal_every = max(1, round(30 / settings.reconcile_interval_seconds))
    return [
        asyncio.create_task(
            background_loop(
                "notifications",
                settings.notification_tick_seconds,
                lambda: deliver_notifications(engine),
                quiet=True,
                due=lambda: notifications_due(reader),
            ),
            name="notifications",
        ),
        asyncio.create_task(
            background_loop(
                "memory purge",
                settings.memory_purge_interval_seconds,
                lambda: purge_memories(engine),
            ),
            name="memory-purge",
        ),
        asyncio.create_task(
            background_loop(
                "reconciler",
                settings.reconcile_interval_seconds,
                lambda: reconcile(engine),
                due=lambda: steps_in_flight(reader),
                regardless_every=heal_every,
            ),
            name="reconciler",
        ),
        asyncio.create_task(
            background_loop(
                "scheduler",
                settings.schedule_tick_seconds,
                lambda: tick(engine),
                due=lambda: schedules_due(reader),
            ),
            name="scheduler",
        ),
    ]
