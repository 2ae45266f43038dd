"""``stepOutput`` and ``stepOutputChunks``: a step's streamed output, attempt by attempt.

The subscriber joins the step's channel, reads the step's output log
(``services.workflows.output``), then the step: a finished step gives its output and
completes; otherwise the attempt in progress gives what it has produced so far (or, if
none is running, the next attempt is awaited), then every piece as it comes, numbered,
so what the log already gave is dropped and a gap is read back from the log.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field

import strawberry
from redis.asyncio import Redis
from strawberry import Info

from cognitionos.context import Context
from cognitionos.db import models
from cognitionos.pubsub import RESYNC
from cognitionos.schema.common import parse_id
from cognitionos.schema.permissions import IsViewer
from cognitionos.schema.workflows import StepStatus
from cognitionos.services.workflows import get_step
from cognitionos.services.workflows.output import (
    EntryKind,
    OutputEntry,
    output_text,
    read_log,
)
from cognitionos.subscriptions.channels import step_output_channel

__all__ = ["StepOutputChunk", "StepOutputSubscription"]


@strawberry.type(description="A piece of a step's streamed output.")
class StepOutputChunk:
    attempt: int = strawberry.field(description="The attempt the text belongs to (1, 2, …).")
    text: str = strawberry.field(description="The next piece of that attempt's output.")
    done: bool = strawberry.field(
        description="The attempt has ended. Text after a done chunk belongs to a new "
        "attempt and starts from nothing."
    )
    status: StepStatus | None = strawberry.field(
        description="On a done chunk: the step's status after the attempt (RETRYING: "
        "another attempt follows); null while the attempt runs or when its end was lost."
    )
    # The whole output of a step that had finished when the subscription started.
    whole: strawberry.Private[bool] = False


@dataclass
class _Attempts:
    """Log entries in, chunks out: text belongs to the run its ``start`` opened."""

    attempt: int | None = None  # the run being followed; None: waiting for one
    said: bool = False  # whether that run has produced text
    finished: StepStatus | None = field(default=None)  # ended while no run was followed

    def open(self, attempt: int, text: str) -> list[StepOutputChunk]:
        self.attempt, self.said = attempt, bool(text)
        return (
            [StepOutputChunk(attempt=attempt, text=text, done=False, status=None)] if text else []
        )

    def feed(self, entry: OutputEntry) -> list[StepOutputChunk]:
        attempt = self.attempt
        if entry.kind is EntryKind.START:
            lost = attempt is not None and self.said  # a run that never said it ended
            self.attempt, self.said = entry.attempt, False
            return [self._end(attempt, None)] if lost and attempt is not None else []
        if attempt is None:
            if entry.kind is EntryKind.END and entry.status is not None and entry.status.terminal:
                self.finished = entry.status
            return []
        if entry.kind is EntryKind.TEXT:
            if entry.attempt != attempt or not entry.text:
                return []  # a lost worker still talking
            self.said = True
            return [StepOutputChunk(attempt=attempt, text=entry.text, done=False, status=None)]
        if entry.kind is EntryKind.DEFER and not self.said:
            self.attempt = None  # gave its attempt back before saying anything: not an end
            return []
        self.attempt = None
        status = entry.status if entry.kind is EntryKind.END else StepStatus.RETRYING
        return [self._end(attempt, status)]

    @staticmethod
    def _end(attempt: int, status: StepStatus | None) -> StepOutputChunk:
        return StepOutputChunk(attempt=attempt, text="", done=True, status=status)


def _last_run(log: list[OutputEntry]) -> tuple[OutputEntry | None, list[OutputEntry]]:
    """The newest ``start`` in the log and the entries after it."""
    for index in range(len(log) - 1, -1, -1):
        if log[index].kind is EntryKind.START:
            return log[index], log[index + 1 :]
    return None, []


def _text(start: OutputEntry | None, entries: Iterable[OutputEntry]) -> str:
    if start is None:
        return ""
    return "".join(
        e.text for e in entries if e.kind is EntryKind.TEXT and e.attempt == start.attempt
    )


def _whole(step: models.StepExecution, log: list[OutputEntry]) -> StepOutputChunk:
    """A finished step: its output, or, without one, what its last run streamed."""
    if step.output is not None:
        text = output_text(step.output)
    else:
        text = _text(*_last_run(log))
    return StepOutputChunk(
        attempt=step.attempt, text=text, done=True, status=step.status, whole=True
    )


async def _missed(
    redis: Redis, step_id: uuid.UUID, count: int, last: str | None
) -> tuple[list[OutputEntry], bool]:
    """The entries after number ``count`` (id ``last``), read back from the log; the whole
    log, and True, when it is no longer the log read before (Redis restarted without it)."""
    log = await read_log(redis, step_id)
    if count and not any(e.n == count and e.id == last for e in log):
        return log, True
    return [e for e in log if e.n > count], False


async def _follow(ctx: Context, step_id: uuid.UUID) -> AsyncGenerator[StepOutputChunk, None]:
    """Every chunk from the attempt in progress (or the next) until the step finishes."""
    services = ctx.services
    async with services.pubsub.subscribe(step_output_channel(step_id)) as live:
        # The log first, then the step: an attempt that ended before the step was read
        # has its end in the log, and one that starts after it arrives on the channel.
        log = await read_log(services.redis, step_id)
        async with services.sessionmaker() as session:
            step = await session.get(models.StepExecution, step_id)
        assert step is not None
        if step.status.terminal:
            yield _whole(step, log)
            return
        runs = _Attempts()
        start, since = _last_run(log)
        running = (
            step.status is StepStatus.RUNNING
            and start is not None
            and start.attempt == step.attempt
            and not any(e.kind in (EntryKind.END, EntryKind.DEFER) for e in since)
        )
        if running and start is not None:
            for chunk in runs.open(start.attempt, _text(start, since)):
                yield chunk
        count, last = (log[-1].n, log[-1].id) if log else (0, None)
        while True:
            message = await live.get()
            entry = None if message is RESYNC else OutputEntry.from_message(message)
            if entry is not None and entry.n <= count:
                continue  # the log gave it already
            if entry is not None and entry.n == count + 1:
                entries = [entry]
            elif message is RESYNC or entry is not None:  # reconnected, or a gap
                entries, lost = await _missed(services.redis, step_id, count, last)
                if lost:
                    count, last = 0, None
            else:
                continue
            for item in entries:
                count, last = item.n, item.id
                log.append(item)
                for chunk in runs.feed(item):
                    yield chunk
                if runs.finished is not None:  # ended with no attempt to follow
                    async with services.sessionmaker() as session:
                        step = await session.get(models.StepExecution, step_id)
                    assert step is not None
                    yield _whole(step, log)
                    return


async def _authorized(info: Info[Context, None], step_execution_id: strawberry.ID) -> uuid.UUID:
    ctx = info.context
    step_id = parse_id(step_execution_id, "stepExecutionId")
    async with ctx.session() as session:
        await get_step(session, principal=ctx.require_principal(), step_id=step_id)
    return step_id


@strawberry.type
class StepOutputSubscription:
    @strawberry.subscription(
        permission_classes=[IsViewer],
        description="The text an LLM or AGENT step streams, for one attempt: first what "
        "the attempt in progress has produced so far (when none runs, the next attempt "
        "is awaited), then each piece as it comes; completes when that attempt ends. A "
        "finished step: its output (text as is, anything else as JSON), then complete. "
        "To follow retries, use `stepOutputChunks`.",
    )
    async def step_output(
        self, info: Info[Context, None], step_execution_id: strawberry.ID
    ) -> AsyncGenerator[str, None]:
        step_id = await _authorized(info, step_execution_id)
        async with aclosing(_follow(info.context, step_id)) as chunks:
            async for chunk in chunks:
                if chunk.text or chunk.whole:
                    yield chunk.text
                if chunk.done:
                    return

    @strawberry.subscription(
        permission_classes=[IsViewer],
        description="Like `stepOutput`, attempt after attempt until the step finishes: "
        "each attempt's text, then a `done` chunk saying how it ended. A finished step: "
        "one done chunk with its output.",
    )
    async def step_output_chunks(
        self, info: Info[Context, None], step_execution_id: strawberry.ID
    ) -> AsyncGenerator[StepOutputChunk, None]:
        step_id = await _authorized(info, step_execution_id)
        async with aclosing(_follow(info.context, step_id)) as chunks:
            async for chunk in chunks:
                yield chunk
                if chunk.done and chunk.status is not None and chunk.status.terminal:
                    return
