"""The step job and the worker's background loops (reconciler, scheduler, ...)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.jobs._idle import notifications_due, schedules_due, steps_in_flight
from cognitionos.observability import Metrics, get_logger
from cognitionos.services.memory import purge_expired
from cognitionos.services.notifications import deliver_due
from cognitionos.services.workflows import Engine, StepRunner, reconcile, tick
from cognitionos.services.workflows.ports import Agents

__all__ = ["Runtime", "background_loop", "engine_loops", "purge_memories", "run_step"]

log = get_logger("cognitionos.worker")


class Runtime(Protocol):
    """What a worker uses of its process's runtime (``cognitionos.runtime``, which
    builds it and sits above this package)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metrics(self) -> Metrics | None: ...
    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def reader(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def redis(self) -> Redis: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def steps(self) -> StepRunner: ...
    @property
    def agents(self) -> Agents: ...

    async def prepare(self) -> None: ...


async def run_step(
    ctx: dict[str, Any], step_id: str, seq: int, trace: dict[str, str] | None = None
) -> str:
    """arq's job: the process's ``StepRunner`` runs dispatch ``seq`` of the step (a stale
    or duplicate dispatch is a no-op), continuing the trace that dispatched it."""
    runtime: Runtime = ctx["runtime"]
    return await runtime.steps.run(uuid.UUID(step_id), seq, trace)


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


async def purge_memories(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return await purge_expired(session)


async def deliver_notifications(runtime: Runtime) -> int:
    return await deliver_due(
        runtime.sessionmaker, runtime.settings, runtime.redis, metrics=runtime.metrics
    )


def engine_loops(runtime: Runtime) -> list[asyncio.Task[None]]:
    """The worker's loops. Idle, each asks one cheap question per tick (``_idle``)."""
    settings, engine, reader = runtime.settings, runtime.engine, runtime.reader
    agents = runtime.agents
    # Agents' loads are healed by a full reconciler pass; with no step in flight that
    # pass runs this often (a stale load is only stale after minutes anyway).
    heal_every = max(1, round(30 / settings.reconcile_interval_seconds))
    return [
        asyncio.create_task(
            background_loop(
                "notifications",
                settings.notification_tick_seconds,
                lambda: deliver_notifications(runtime),
                quiet=True,
                due=lambda: notifications_due(reader),
            ),
            name="notifications",
        ),
        asyncio.create_task(
            background_loop(
                "memory purge",
                settings.memory_purge_interval_seconds,
                lambda: purge_memories(runtime),
            ),
            name="memory-purge",
        ),
        asyncio.create_task(
            background_loop(
                "reconciler",
                settings.reconcile_interval_seconds,
                lambda: reconcile(engine, agents),
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
