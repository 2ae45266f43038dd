"""The pub/sub hub against a real Redis: fan-out, bounded queues, reconnect."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from cognitionos.embedded import EmbeddedRedis
from cognitionos.pubsub import RESYNC, PubSubHub, SlowSubscriber
from tests.conftest import Stack


async def _publish(url: str, channel: str, *messages: dict[str, int]) -> None:
    client = Redis.from_url(url)
    try:
        for message in messages:
            await client.publish(channel, json.dumps(message))
    finally:
        await client.aclose()


async def test_messages_reach_every_local_subscriber_of_the_channel(stack: Stack) -> None:
    hub = PubSubHub(stack.redis.url)
    hub.start()
    try:
        async with (
            hub.subscribe("cognitionos:t:a") as a1,
            hub.subscribe("cognitionos:t:a") as a2,
            hub.subscribe("cognitionos:t:b") as b,
        ):
            await asyncio.wait_for(hub.connected.wait(), 5)
            assert await a1.get() is RESYNC  # joined before the hub connected
            await a2.get(), await b.get()
            await _publish(stack.redis.url, "cognitionos:t:a", {"n": 1}, {"n": 2})
            assert [await a1.get(), await a1.get()] == [{"n": 1}, {"n": 2}]
            assert [await a2.get(), await a2.get()] == [{"n": 1}, {"n": 2}]
            assert b.queue.empty()
        assert hub.subscriber_count == 0
    finally:
        await hub.stop()


async def test_a_subscriber_that_falls_behind_is_cut_off(stack: Stack) -> None:
    hub = PubSubHub(stack.redis.url, queue_size=3)
    hub.start()
    try:
        await asyncio.wait_for(hub.connected.wait(), 5)
        async with hub.subscribe("cognitionos:t:slow") as slow:
            await _publish(stack.redis.url, "cognitionos:t:slow", *({"n": i} for i in range(10)))
            await asyncio.sleep(0.3)
            assert slow.queue.qsize() <= 3  # bounded: memory does not grow with the backlog
            with pytest.raises(SlowSubscriber, match="fell more than 3 messages behind"):
                while True:
                    await slow.get()
    finally:
        await hub.stop()


async def test_redis_restart_reconnects_and_asks_for_a_resync(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    hub = PubSubHub(server.url)
    hub.start()
    try:
        async with hub.subscribe("cognitionos:t:r") as sub:
            await asyncio.wait_for(hub.connected.wait(), 5)
            assert await sub.get() is RESYNC
            server.kill()
            await asyncio.sleep(0.3)
            server.start()
            assert await asyncio.wait_for(sub.get(), 10) is RESYNC  # backfill what was missed
            assert hub.reconnects == 1  # one reconnect, however many attempts failed
            await _publish(server.url, "cognitionos:t:r", {"after": 1})
            assert await asyncio.wait_for(sub.get(), 5) == {"after": 1}
    finally:
        await hub.stop()
        server.stop()
