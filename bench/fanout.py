"""Subscription fan-out: 1,000 websocket subscribers on one server process.

Events are appended to one execution's log and published at a fixed rate, as the
engine does; every subscriber follows ``executionUpdated`` over graphql-transport-ws.
In the same run, the baseline: the same messages by bare Redis pub/sub to 1,000
asyncio consumers. Prints delivery latency p50/p99, messages/s, the ratio, and the
server's RSS. Usage: python bench/fanout.py [subscribers] [events/s] [seconds]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from _stack import embedded_stack
from websockets.asyncio.client import connect

SUBSCRIBERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
SECRET = "f" * 40
QUERY = "subscription($id: ID!) { executionUpdated(id: $id) { position version type } }"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, latencies: list[float], elapsed: float, expected: int) -> float:
    rate = len(latencies) / elapsed
    print(
        f"{name:<34} delivered {len(latencies):>7}/{expected:<7} {rate:9.0f} msg/s  "
        f"latency p50 {statistics.median(latencies):7.1f} ms  p99 {pct(latencies, 0.99):7.1f} ms"
    )
    return pct(latencies, 0.99)


async def prepare(database_url: str, redis_url: str) -> tuple[str, str, Any]:
    """A user, a workflow, and an execution nobody runs (its log is ours to extend)."""
    from redis.asyncio import Redis

    from cognitionos.config import Settings
    from cognitionos.db import create_engine, create_sessionmaker
    from cognitionos.db.models import Role, User
    from cognitionos.services.auth import Principal
    from cognitionos.services.auth.tokens import issue_access_token
    from cognitionos.services.workflows import Dispatch, Engine, create_workflow

    class Nowhere:
        async def dispatch(self, items: list[Dispatch]) -> None:
            return None

    engine = create_engine(database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        user = User(email="fanout@bench.local", password_hash="!", role=Role.MEMBER)
        session.add(user)
        await session.commit()
        await create_workflow(
            session,
            actor_id=user.id,
            key="fanout",
            version="1.0.0",
            name="fanout",
            steps=[{"key": "a", "kind": "TRANSFORM", "config": {"template": "1"}}],
        )
    redis = Redis.from_url(redis_url)
    workflow_engine = Engine(
        settings=Settings(secret_key=SECRET),
        sessionmaker=sessionmaker,
        redis=redis,
        dispatcher=Nowhere(),
    )
    execution = await workflow_engine.execute(
        principal=Principal(user_id=user.id, role=Role.MEMBER),
        key="fanout",
        version=None,
        inputs={},
        dispatch=False,
    )
    await redis.aclose()
    token = issue_access_token(
        user_id=user.id, role=Role.MEMBER, secret=SECRET, issuer="cognitionos", ttl_seconds=3600
    )
    return token, str(execution.id), (engine, sessionmaker)


async def publisher(
    sessionmaker: Any, redis_url: str, execution_id: str, sent: dict[int, float]
) -> int:
    """Append BENCH_TICK events to the execution's log and publish them, at RATE."""
    from redis.asyncio import Redis

    from cognitionos.services.events import publish_events
    from cognitionos.services.workflows.transitions import Effects, lock_execution, record

    redis = Redis.from_url(redis_url)
    count = int(RATE * SECONDS)
    start = time.perf_counter()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / RATE - time.perf_counter()))
        effects = Effects()
        async with sessionmaker() as session:
            execution = await lock_execution(session, uuid.UUID(execution_id))
            await record(session, effects, execution, "BENCH_TICK", tick=i)
            await session.commit()
        sent[effects.events[0].position] = time.time()
        await publish_events(redis, effects.events)
    await redis.aclose()
    return count


async def subscriber(
    url: str,
    token: str,
    execution_id: str,
    sent: dict[int, float],
    latencies: list[float],
    ready: asyncio.Event,
    ready_count: list[int],
    stop: asyncio.Event,
) -> None:
    protocols: Any = ["graphql-transport-ws"]
    async with connect(url, subprotocols=protocols, max_queue=None) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": {"id": execution_id}},
                }
            )
        )
        replayed = 0
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "ping":
                await ws.send('{"type": "pong"}')
                continue
            if message.get("type") != "next":
                continue
            event = message["payload"]["data"]["executionUpdated"]
            if event["type"] != "BENCH_TICK":
                replayed += 1
                if replayed == 2:  # the two stored events: the live stream is on
                    ready_count[0] += 1
                    if ready_count[0] == SUBSCRIBERS:
                        ready.set()
                continue
            latencies.append((now - sent[event["position"]]) * 1000)


async def server_run(
    database_url: str, redis_url: str, data: Path
) -> tuple[float, list[float], int, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=SECRET,
        COGNITIONOS_ENV="test",
        COGNITIONOS_WORKER_IN_PROCESS="false",
        COGNITIONOS_LOG_LEVEL="WARNING",
        COGNITIONOS_PUBSUB_QUEUE_SIZE="10000",
    )
    from cognitionos.embedded import free_port

    port = free_port()
    with (data / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cognitionos", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (
                        await client.get(f"http://127.0.0.1:{port}/health/ready")
                    ).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        token, execution_id, (engine, sessionmaker) = await prepare(database_url, redis_url)
        sent: dict[int, float] = {}
        latencies: list[float] = []
        ready, stop = asyncio.Event(), asyncio.Event()
        ready_count = [0]
        url = f"ws://127.0.0.1:{port}/graphql"
        clients = [
            asyncio.create_task(
                subscriber(url, token, execution_id, sent, latencies, ready, ready_count, stop)
            )
            for _ in range(SUBSCRIBERS)
        ]
        await asyncio.wait_for(ready.wait(), 120)
        started = time.perf_counter()
        count = await publisher(sessionmaker, redis_url, execution_id, sent)
        deadline = time.monotonic() + 30
        while len(latencies) < count * SUBSCRIBERS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
        await engine.dispose()
        return elapsed, latencies, count, rss
    finally:
        server.terminate()
        server.wait(30)


async def baseline_run(redis_url: str) -> tuple[float, list[float], int]:
    from redis.asyncio import Redis

    latencies: list[float] = []
    clients = [Redis.from_url(redis_url) for _ in range(SUBSCRIBERS)]
    pubsubs = [c.pubsub() for c in clients]
    for pubsub in pubsubs:
        await pubsub.subscribe("bench:baseline")
    stop = asyncio.Event()

    async def consume(pubsub: Any) -> None:
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                latencies.append((time.time() - json.loads(message["data"])["t"]) * 1000)

    consumers = [asyncio.create_task(consume(p)) for p in pubsubs]
    publisher_client = Redis.from_url(redis_url)
    count = int(RATE * SECONDS)
    started = time.perf_counter()
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / RATE - time.perf_counter()))
        await publisher_client.publish("bench:baseline", json.dumps({"i": i, "t": time.time()}))
    deadline = time.monotonic() + 30
    while len(latencies) < count * SUBSCRIBERS and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*consumers)
    for pubsub, client in zip(pubsubs, clients, strict=True):
        await pubsub.aclose()
        await client.aclose()
    await publisher_client.aclose()
    return elapsed, latencies, count


async def main() -> None:
    async with embedded_stack("cognitionos-fanout-") as stack:
        print(f"{SUBSCRIBERS} subscribers, {RATE:g} events/s for {SECONDS:g}s, one server process")
        elapsed, latencies, count, rss = await server_run(
            stack.database_url, stack.redis_url, stack.data
        )
        p99 = report("CognitionOS executionUpdated (ws)", latencies, elapsed, count * SUBSCRIBERS)
        base_elapsed, base_latencies, base_count = await baseline_run(stack.redis_url)
        base_p99 = report(
            "bare Redis pub/sub (asyncio)", base_latencies, base_elapsed, base_count * SUBSCRIBERS
        )
        print(f"ratio p99 CognitionOS/bare: {p99 / base_p99:.2f}; server RSS {rss:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
