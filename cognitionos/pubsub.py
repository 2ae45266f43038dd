"""Redis pub/sub fan-out for one web process, built to survive Redis.

One connection per process pattern-subscribes to every ``cognitionos:*`` channel and
hands each message to the local subscribers of that channel. Each subscriber has a
bounded queue: one that cannot keep up is cut off with a clear reason instead of eating
memory. When the connection drops, the hub reconnects with backoff and tells every
subscriber to resynchronize (backfill what it may have missed from the event log); each
time it is back, ``on_reconnect`` is called (the process counts it in its metrics).

broadcaster's Redis backend (DESIGN §1) has unbounded per-subscriber queues and no
reconnect; wrapping it would have meant replacing both, so this is the small hub itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cognitionos.observability import get_logger

__all__ = ["RESYNC", "Mailbox", "PubSubHub", "SlowSubscriber", "Subscriber"]

log = get_logger("cognitionos.pubsub")
PATTERN = "cognitionos:*"
T = TypeVar("T")


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Any = _Resync()  # "you may have missed messages: backfill from the source of truth"


class SlowSubscriber(Exception):
    """The subscriber fell more than its queue size behind."""


class Mailbox(Generic[T]):
    """A bounded FIFO with one consumer: what ``asyncio.Queue`` does here, in a quarter of
    its memory (one deque and a future while waiting; every socket holds a few)."""

    __slots__ = ("_items", "_waiter", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def put(self, item: T) -> None:
        """Add ``item`` even when full (the caller decides what full means)."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drop_oldest(self) -> None:
        if self._items:
            self._items.popleft()

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Subscriber:
    def __init__(self, channel: str, size: int) -> None:
        self.channel = channel
        self.queue: Mailbox[Any] = Mailbox(size)
        self.overflowed = False

    def offer(self, item: Any) -> None:
        if self.overflowed:
            return
        if self.queue.full():
            self.overflowed = True
            # Wake the consumer so it notices at once.
            self.queue.drop_oldest()
            item = None
        self.queue.put(item)

    async def get(self) -> Any:
        """The next message (a dict) or ``RESYNC``; raises when cut off as too slow."""
        item = await self.queue.get()
        if self.overflowed:
            raise SlowSubscriber(
                f"subscriber fell more than {self.queue.maxsize} messages behind; "
                "resubscribe with the last position you received"
            )
        return item


class PubSubHub:
    def __init__(
        self,
        redis_url: str,
        *,
        queue_size: int = 1000,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.queue_size = queue_size
        self._on_reconnect = on_reconnect
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0  # times the connection came back after being lost

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pubsub-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscriber]:
        subscriber = Subscriber(channel, self.queue_size)
        self._subscribers[channel].add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers[channel].discard(subscriber)
            if not self._subscribers[channel]:
                del self._subscribers[channel]

    def _deliver(self, channel: str, data: Any) -> None:
        targets = self._subscribers.get(channel)
        if not targets:
            return
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            log.warning("dropping a malformed pub/sub message", channel=channel)
            return
        for subscriber in list(targets):
            subscriber.offer(message)

    def _resync_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in list(subscribers):
                subscriber.offer(RESYNC)

    async def _run(self) -> None:
        delay = 0.1
        lost = False  # connected once, then lost: the next connection is a reconnect
        while True:
            client = Redis.from_url(self.redis_url, decode_responses=True)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(PATTERN)
                if lost:
                    lost = False
                    self.reconnects += 1
                    if self._on_reconnect is not None:
                        self._on_reconnect()
                    log.info("pub/sub reconnected", reconnects=self.reconnects)
                # Anything published while we were not listening: subscribers backfill.
                self._resync_all()
                self.connected.set()
                delay = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                    if message is not None and message["type"] == "pmessage":
                        self._deliver(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                lost = lost or self.connected.is_set()
                self.connected.clear()
                log.warning("pub/sub connection lost; reconnecting", error=str(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
