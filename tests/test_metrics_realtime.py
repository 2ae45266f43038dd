"""/metrics for the realtime path: websocket messages sent by type, and pub/sub reconnects
(the web process's hub and its in-process worker's wake-up subscription), against a
server on its own Redis so that dropping pub/sub connections touches no other test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from cognitionos.app import create_app
from cognitionos.embedded import EmbeddedRedis
from tests.conftest import ENGINE_SETTINGS, Stack
from tests.support import LiveServer
from tests.test_subscriptions import chain, history, seen, start
from tests.ws_support import EXECUTION_UPDATED, LEGACY_WS, WS

SENT = "cognitionos_websocket_messages_sent_total"
RECONNECTS = "cognitionos_pubsub_reconnects_total"


@pytest.fixture(scope="module")
def realtime(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with its worker in-process, on a Redis of its own."""
    own = EmbeddedRedis(Path(tmp_path_factory.mktemp("realtime-redis")))
    own.start()
    settings = stack.settings(**{**ENGINE_SETTINGS, "redis_url": own.url})
    live = LiveServer(create_app(settings)).start()
    yield live
    live.stop()
    own.stop()


def values(server: LiveServer, name: str, label: str) -> dict[str, float]:
    """One counter's samples on a fresh scrape, by the value of ``label``."""
    text = server.gql.client.get(f"{server.url}/metrics").text
    return {
        sample.labels[label]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}


async def test_messages_sent_are_counted_by_protocol_type(realtime: LiveServer) -> None:
    gql = realtime.gql
    token = gql.member("counted@example.com")
    chain(gql, token, "counted", n=2)
    execution_id = start(gql, token, "counted")
    gql.wait_execution(execution_id, token)
    before = values(realtime, SENT, "type")
    assert set(before) >= {"connection_ack", "next", "data", "complete", "error", "other"}

    async with WS(realtime.url) as ws:  # graphql-transport-ws
        assert (await ws.init(token))["type"] == "connection_ack"
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
        transport = await ws.collect("1")
        await ws.subscribe("2", "subscription { noSuchField }", {})
        assert (await ws.recv())["type"] == "error"
    async with WS(realtime.url, protocol=LEGACY_WS) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
        legacy = await ws.collect("1")
        assert ws.pings >= 1  # graphql-ws's keep-alive, sent as soon as it acknowledges

    events = len(history(gql, token, execution_id))
    assert len(transport) == len(legacy) == events
    sent = moved(before, values(realtime, SENT, "type"))
    assert sent.pop("ka") >= 1
    sent.pop("ping", None)  # the server's own keep-alive pings, if one came due
    assert sent == {
        "connection_ack": 2,
        "pong": 1,
        "next": events,  # graphql-transport-ws
        "data": events,  # graphql-ws
        "error": 1,
        "complete": 2,
    }


async def test_a_dropped_pub_sub_connection_is_counted_and_subscriptions_go_on(
    realtime: LiveServer,
) -> None:
    gql = realtime.gql
    token = gql.member("dropped@example.com")
    chain(gql, token, "across", n=4, sleep=0.3)
    before = values(realtime, RECONNECTS, "connection")
    assert set(before) == {"hub", "wake"}

    async with WS(realtime.url) as ws:
        await ws.init(token)
        across = start(gql, token, "across")
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": across})
        first = seen(await ws.collect("1", limit=2))
        redis_url = realtime.app.state.settings.redis_url
        with redis.Redis.from_url(redis_url) as client:
            # The hub's pattern subscription and the worker's wake-up channel.
            assert client.client_kill_filter(_type="pubsub") >= 2
        deadline = time.monotonic() + 30
        while (after := moved(before, values(realtime, RECONNECTS, "connection"))) != {
            "hub": 1,
            "wake": 1,
        }:
            assert time.monotonic() < deadline, f"pub/sub reconnects moved by {after}"
            await asyncio.sleep(0.1)
        # The subscription that lived through the drop: nothing missed, nothing twice.
        rest = seen(await ws.collect("1"))
        assert first + rest == history(gql, token, across)
        assert rest[-1][1] == "EXECUTION_SUCCEEDED"

        # One started after the reconnect is fed live by the new connection.
        chain(gql, token, "after", n=2, sleep=0.3)
        after_drop = start(gql, token, "after")
        await ws.subscribe("2", EXECUTION_UPDATED, {"id": after_drop})
        assert seen(await ws.collect("2")) == history(gql, token, after_drop)
