"""Connection slots in Redis: a cap per owner, shared by replicas, that a crash cannot leak."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from cognitionos.services.slots import Slots
from tests.conftest import Stack


async def test_the_cap_holds_and_a_crashed_holders_slots_lapse(stack: Stack) -> None:
    redis = Redis.from_url(stack.redis.url)
    try:
        live = Slots(redis, lease_seconds=30)
        crashed = Slots(redis, lease_seconds=0.3)  # a replica that will never renew
        assert await crashed.acquire("user", "dead-1", limit=2)
        assert await live.acquire("user", "live-1", limit=2)
        assert not await live.acquire("user", "live-2", limit=2)
        assert await live.acquire("other", "theirs", limit=2)  # per owner
        assert await live.acquire("user", "live-1", limit=2)  # holding it already: fine

        deadline = time.monotonic() + 5
        while not await live.acquire("user", "live-2", limit=2):
            assert time.monotonic() < deadline, "the crashed replica's slot never lapsed"
            await asyncio.sleep(0.1)
        assert await live.count("user") == 2

        await live.release("user", "live-1")
        await live.renew([("user", "live-2"), ("other", "theirs")])
        assert await live.count("user") == 1
        assert await live.count("other") == 1
    finally:
        await redis.aclose()
