"""The engine's one unit of work: a transaction, then what follows its commit.

Every state change writes the new state and its events in one transaction
(``Transactions.unit``); only after the commit are the events published and the steps
that became ready dispatched (``apply``). A crash between the two loses nothing: the
event log is in PostgreSQL and the reconciler dispatches what was never dispatched.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models.workflows import Workflow
from cognitionos.observability import Metrics, get_logger
from cognitionos.services.events import publish_events
from cognitionos.services.templating import TemplateRenderer
from cognitionos.services.workflows.output import mark_attempts
from cognitionos.services.workflows.ports import Notifications
from cognitionos.services.workflows.transitions import Definition, Dispatch, Effects, Finished

__all__ = ["Dispatcher", "Transactions", "Unit"]

log = get_logger("cognitionos.engine")
_DEFINITIONS = 2048  # parsed workflow definitions kept, most recently used last
_WORKFLOW_KEYS = 1000  # workflow keys kept for metric labels


class Dispatcher(Protocol):
    """Transport for ready steps (arq in production; anything that eventually calls
    ``StepRunner.run(step_id, seq)``)."""

    async def dispatch(self, items: Sequence[Dispatch]) -> None: ...


class Unit:
    """One transaction's session and what its commit sets off. ``handed_back`` is the
    lone ready step the caller asked to run itself (``unit(hand_back=True)``), once the
    unit is over."""

    __slots__ = ("effects", "handed_back", "session")

    def __init__(self, session: AsyncSession, notices: Notifications) -> None:
        self.session = session
        self.effects = Effects(notices=notices)
        self.handed_back: Dispatch | None = None


class Transactions:
    """What every engine operation shares: the unit of work, the after-commit ``apply``
    and the caches they read (bounded, dropped by ``close``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        dispatcher: Dispatcher,
        notifications: Notifications,
        renderer: TemplateRenderer,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.dispatcher = dispatcher
        # The owner's notices of an execution's end or wait, written in its transition.
        self.notifications = notifications
        # Approval prompts render here before an approver reads them.
        self.renderer = renderer
        self.metrics = metrics
        self._definitions: dict[uuid.UUID, Definition] = {}
        self._workflow_keys: dict[uuid.UUID, str] = {}

    @asynccontextmanager
    async def unit(self, *, hand_back: bool = False) -> AsyncIterator[Unit]:
        """A transaction: committed when the block ends (a return included), rolled back
        when it raises; then ``apply``. With ``hand_back``, a lone step made ready to run
        now is not dispatched but left in ``Unit.handed_back`` for the caller to run."""
        async with self.sessionmaker() as session:
            unit = Unit(session, self.notifications)
            yield unit
            await session.commit()
        unit.handed_back = await self.apply(unit.effects, hand_back=hand_back)

    async def apply(self, effects: Effects, *, hand_back: bool = False) -> Dispatch | None:
        """After commit: publish, then dispatch. A crash here is healed by the reconciler."""
        if self.metrics is not None:
            for event in effects.events:
                self.metrics.events.labels(event.type).inc()
            if effects.finished:
                await self._observe(effects.finished)
        if effects.events:
            try:
                await publish_events(self.redis, effects.events)
            except Exception:  # subscribers backfill from the event log
                log.warning("publishing events failed", exc_info=True)
            try:  # before the step runs: its tokens follow its start in the log
                await mark_attempts(self.redis, effects.events)
            except Exception:  # live output is a view; the step's result is what counts
                log.warning("marking step attempts failed", exc_info=True)
        dispatch = effects.dispatch
        if hand_back and len(dispatch) == 1 and not dispatch[0].defer_seconds:
            return dispatch[0]  # already QUEUED in Postgres: a lost run is re-dispatched
        if dispatch:
            try:
                await self.dispatcher.dispatch(dispatch)
            except Exception:  # the reconciler re-dispatches from Postgres
                log.warning("dispatch failed; the reconciler will retry", exc_info=True)
        return None

    async def definition(self, session: AsyncSession, workflow_id: uuid.UUID) -> Definition:
        """The workflow's parsed steps and graph. A version never changes once created,
        so a parsed one is kept (least recently used dropped first)."""
        cache = self._definitions
        found = cache.pop(workflow_id, None)
        if found is None:
            steps = await session.scalar(select(Workflow.steps).where(Workflow.id == workflow_id))
            if steps is None:
                raise LookupError(f"workflow {workflow_id} not found")
            found = Definition.build(list(steps))
            if len(cache) >= _DEFINITIONS:
                del cache[next(iter(cache))]
        cache[workflow_id] = found
        return found

    @property
    def cached(self) -> int:
        """Entries held: parsed definitions and workflow keys."""
        return len(self._definitions) + len(self._workflow_keys)

    def close(self) -> None:
        """Drop the caches (the runtime's shutdown)."""
        self._definitions.clear()
        self._workflow_keys.clear()

    async def _observe(self, finished: list[Finished]) -> None:
        """Durations by workflow key (capped in ``Metrics``), kind and status."""
        assert self.metrics is not None
        keys = self._workflow_keys
        missing = {f.workflow_id for f in finished} - keys.keys()
        if missing:
            try:
                async with self.sessionmaker() as session:
                    rows = await session.execute(
                        select(Workflow.id, Workflow.key).where(Workflow.id.in_(missing))
                    )
                    if len(keys) > _WORKFLOW_KEYS:
                        keys.clear()
                    keys.update({id_: key for id_, key in rows})
            except Exception:  # a metric is not worth failing a transition's aftermath
                log.warning("reading workflow keys for metrics failed", exc_info=True)
        for f in finished:
            key = keys.get(f.workflow_id, "unknown")
            if f.kind is None:
                self.metrics.execution_duration.labels(key, f.status).observe(f.seconds)
            else:
                self.metrics.step_duration.labels(key, f.kind, f.status).observe(f.seconds)
