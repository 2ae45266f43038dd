"""One execution of a subscription for every socket that asked the same thing.

When many sockets of one user run the same subscription document with the same
variables (a dashboard open in many tabs, a team's wall screens), their results are
identical: the stream is executed once per process and each result is serialized
once; every socket gets the same text.

Sharing must not change what anyone sees, so a socket that joins late gets exactly
what a stream of its own would send, and how depends on the field (``JOINS``):

* a replaying stream (``executionUpdated``: the log after the cursor, then live) first
  gives the late joiner everything it has sent so far, which is that replay;
* a feed (``notificationReceived``, ``agentStatusChanged``: what happens from now on)
  gives it only what comes next;
* any other field is not shared: each socket runs its own stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast, parse

from cognitionos.observability import get_logger
from cognitionos.pubsub import Mailbox

__all__ = [
    "JOINS",
    "Multiplexer",
    "SharedKey",
    "SlowConsumer",
    "shareable",
    "subscription_key",
]

log = get_logger("cognitionos.multiplex")

Item = tuple[str, str]  # ("next" | "error", payload JSON)
_END: Any = None
MAX_HISTORY = 10_000

# Per subscription field: does a late joiner get what the stream has sent so far?
JOINS: dict[str, bool] = {
    "executionUpdated": True,
    "notificationReceived": False,
    "agentStatusChanged": False,
}


@dataclass(frozen=True)
class SharedKey:
    """Who asked what: sockets with equal keys share one stream."""

    principal: str
    query: str
    variables: str
    operation_name: str
    replay: bool  # late joiners first get what the stream has sent so far


def subscription_key(
    principal_key: str,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    *,
    replay: bool | None = None,
) -> SharedKey | None:
    """The sharing key, or None when the document is not a valid, shareable subscription.
    ``replay``: what ``shareable`` said of the document, when the caller knows it."""
    if replay is None:
        replay = shareable(query, operation_name)
        if replay is None:
            return None
    try:
        frozen = json.dumps(variables or {}, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return SharedKey(principal_key, query, frozen, operation_name or "", replay)


def shareable(query: str, operation_name: str | None) -> bool | None:
    """``JOINS`` of the document's one subscription field; None: not shared."""
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return None
    if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    return JOINS.get(selections[0].name.value)


class _Shared:
    def __init__(self, source: AsyncIterator[Item], queue_size: int, *, replay: bool) -> None:
        # A feed keeps only errors: a late joiner must still learn that the stream failed.
        self.history: list[Item] = []
        self.replay = replay
        self.listeners: set[Mailbox[Item | None]] = set()
        self.queue_size = queue_size
        self.finished = False
        self.task = asyncio.create_task(self._pump(source), name="shared-subscription")

    async def _pump(self, source: AsyncIterator[Item]) -> None:
        try:
            async for item in source:
                if self.replay or item[0] == "error":
                    self.history.append(item)
                for queue in list(self.listeners):
                    if queue.full():
                        self.listeners.discard(queue)  # too slow: cut off, told at once
                        queue.drop_oldest()
                        queue.put(("slow", ""))
                    else:
                        queue.put(item)
        finally:
            self.finished = True
            for queue in list(self.listeners):
                queue.put(_END)


class Multiplexer:
    def __init__(self, *, queue_size: int = 1000, documents: int = 256) -> None:
        self.queue_size = queue_size
        self._streams: dict[SharedKey, _Shared] = {}
        # Clients send the same few documents: parse each once (bounded, oldest out).
        self._shareable: dict[tuple[str, str | None], bool | None] = {}
        self._documents = documents

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def key(
        self,
        principal_key: str,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> SharedKey | None:
        """``subscription_key``, remembering what each document is."""
        document = (query, operation_name)
        if document in self._shareable:
            replay = self._shareable[document]
        else:
            replay = shareable(query, operation_name)
            if len(self._shareable) >= self._documents:
                del self._shareable[next(iter(self._shareable))]
            self._shareable[document] = replay
        if replay is None:
            return None
        return subscription_key(principal_key, query, variables, operation_name, replay=replay)

    async def attach(
        self, key: SharedKey, start: Callable[[], AsyncIterator[Item]]
    ) -> AsyncIterator[Item]:
        """What the shared stream sent so far when ``key.replay`` (else only its errors),
        then what it sends next."""
        shared = self._streams.get(key)
        if shared is None or shared.finished or len(shared.history) >= MAX_HISTORY:
            shared = _Shared(start(), self.queue_size, replay=key.replay)
            self._streams[key] = shared
        queue: Mailbox[Item | None] = Mailbox(self.queue_size)
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
