"""One execution of a subscription for every socket that asked the same thing.

When many sockets of one user run the same subscription document with the same
variables (a dashboard open in many tabs, a team's wall screens), their results are
identical: the stream is executed once per process and each result is serialized
once; every socket gets the same text. A socket that joins late first receives what
the shared stream has sent so far, so it sees exactly what a stream of its own would
have replayed: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse

from cognitionos.observability import get_logger

__all__ = ["Multiplexer", "subscription_key"]

log = get_logger("cognitionos.multiplex")

Item = tuple[str, str]  # ("next" | "error", payload JSON)
_END: Any = None
MAX_HISTORY = 10_000


def subscription_key(
    principal_key: str, query: str, variables: dict[str, Any] | None, operation_name: str | None
) -> tuple[str, ...] | None:
    """The sharing key, or None when the document is not a valid subscription."""
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return None
    if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
        return None
    try:
        frozen = json.dumps(variables or {}, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return (principal_key, query, frozen, operation_name or "")


class _Shared:
    def __init__(self, source: AsyncIterator[Item], queue_size: int) -> None:
        self.history: list[Item] = []
        self.listeners: set[asyncio.Queue[Item | None]] = set()
        self.queue_size = queue_size
        self.finished = False
        self.task = asyncio.create_task(self._pump(source), name="shared-subscription")

    async def _pump(self, source: AsyncIterator[Item]) -> None:
        try:
            async for item in source:
                self.history.append(item)
                for queue in list(self.listeners):
                    try:
                        queue.put_nowait(item)
                    except asyncio.QueueFull:
                        self.listeners.discard(queue)  # too slow: cut off, told below
                        with contextlib.suppress(asyncio.QueueEmpty):
                            queue.get_nowait()
                        queue.put_nowait(("slow", ""))
        finally:
            self.finished = True
            for queue in list(self.listeners):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(_END)


class Multiplexer:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._streams: dict[tuple[str, ...], _Shared] = {}

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    async def attach(
        self, key: tuple[str, ...], start: Callable[[], AsyncIterator[Item]]
    ) -> AsyncIterator[Item]:
        """Everything the shared stream sent so far, then what it sends next."""
        shared = self._streams.get(key)
        if shared is None or shared.finished or len(shared.history) >= MAX_HISTORY:
            shared = _Shared(start(), self.queue_size)
            self._streams[key] = shared
        queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=self.queue_size)
        backlog = list(shared.history)  # taken with the registration: nothing in between
        shared.listeners.add(queue)
        try:
            for item in backlog:
                yield item
            while True:
                got = await queue.get()
                if got is _END or got is None:
                    return
                if got[0] == "slow":
                    raise SlowConsumer(self.queue_size)
                yield got
        finally:
            shared.listeners.discard(queue)
            if not shared.listeners:
                shared.task.cancel()
                if self._streams.get(key) is shared:
                    del self._streams[key]


class SlowConsumer(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"subscriber fell more than {size} messages behind; "
            "resubscribe with the last position you received"
        )
