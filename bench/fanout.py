"""Subscription fan-out: 1,000 websocket subscribers on one server process.

Two cases, each beside the bare Redis pub/sub baseline of the same shape:

* shared: one user's 1,000 sockets follow one execution's ``executionUpdated`` (what
  ``multiplex`` shares);
* distinct: 1,000 users each follow their own execution (nothing to share); events go to
  the executions in turn, so the total rate is spread over all of them.

Events are appended to the executions' logs and published as the engine does (lock the
execution, ``record``, commit, ``publish_events``). The subscribers run in a process of
their own (``_fanout_client.py``: one asyncio loop, raw ``websockets``) whose CPU is
reported; the server runs in another (``cognitionos serve``, fresh for each case). Prints
per case: how long the 1,000 sockets took to join (connect, ``connection_init``,
subscribe, replay), deliveries, latency p50/p99 from commit to receipt, the server's
RSS and CPU, the client's CPU, then the same for bare Redis (publish → receipt, one
connection per subscriber) and the ratio of the p99s.

Usage: python bench/fanout.py [shared=20] [distinct=100,200] [subscribers=1000] [seconds=8]
(``shared=`` or ``distinct=`` with no rate skips that case).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from _stack import Stack, embedded_stack

OPTIONS = {"shared": "20", "distinct": "100,200", "subscribers": "1000", "seconds": "8"}
for _arg in sys.argv[1:]:
    _name, _, _value = _arg.partition("=")
    if _name not in OPTIONS:
        sys.exit(__doc__)
    OPTIONS[_name] = _value
SUBSCRIBERS = int(OPTIONS["subscribers"])
SECONDS = float(OPTIONS["seconds"])
SECRET = "f" * 40
QUERY = "subscription($id: ID!) { executionUpdated(id: $id) { position version type } }"
REPLAYED = 2  # EXECUTION_CREATED and STEP_QUEUED: stored before anyone subscribes
CLIENT = Path(__file__).with_name("_fanout_client.py")


def rates(option: str) -> list[float]:
    return [float(r) for r in OPTIONS[option].split(",") if r]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Outcome:
    latencies: list[float]
    expected: int
    elapsed: float
    join_seconds: float
    joined: int
    failures: list[str]
    client_cpu: float  # % of one core while events flowed
    server_cpu: float = float("nan")
    rss: float = float("nan")

    def report(self, name: str) -> float:
        p99 = pct(self.latencies, 0.99)
        median = statistics.median(self.latencies) if self.latencies else float("nan")
        print(
            f"  {name:<31} delivered {len(self.latencies):>6}/{self.expected:<6} "
            f"{len(self.latencies) / self.elapsed:7.0f} msg/s  "
            f"p50 {median:7.1f} ms  p99 {p99:7.1f} ms  joined {self.joined} in "
            f"{self.join_seconds:5.2f}s  client CPU {self.client_cpu:3.0f}%"
            + (
                f"  server CPU {self.server_cpu:3.0f}% RSS {self.rss:4.0f} MiB"
                if self.rss == self.rss
                else ""
            )
        )
        for failure in self.failures[:3]:
            print(f"    failure: {failure}")
        return p99


class Client:
    """The subscriber process: give it a job, wait until it has joined, publish, collect."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CLIENT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        self.stdout = self.process.stdout

    async def joined(self) -> tuple[float, int]:
        line = await asyncio.to_thread(self.stdout.readline)
        _, seconds, count = line.split()
        return float(seconds), int(count)

    async def results(self, expected: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"stop {expected}\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(await asyncio.to_thread(self.stdout.readline))
        await asyncio.to_thread(self.process.wait, 30)
        return result


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def prepare(
    stack: Stack, users: int, tag: str
) -> tuple[list[tuple[str, str]], list[uuid.UUID]]:
    """``users`` logged-in members (a refresh-token family each, as a login leaves), one
    execution per user that nobody runs (its log is ours to extend), and each user's
    (access token, execution id)."""
    from cognitionos.config import Settings
    from cognitionos.db.models import Role, User
    from cognitionos.runtime import Runtime
    from cognitionos.services.auth import Principal
    from cognitionos.services.auth.sessions import TokenPolicy, issue_tokens
    from cognitionos.services.workflows import Dispatch, create_workflow

    class Nowhere:
        async def dispatch(self, items: list[Dispatch]) -> None:
            return None

    settings = Settings(
        database_url=stack.database_url, redis_url=stack.redis_url, secret_key=SECRET
    )
    policy = TokenPolicy(secret=SECRET, access_ttl_seconds=3600)
    tokens: list[str] = []
    # Nobody runs these executions: their logs are ours to extend.
    async with Runtime.start(settings, role="worker", dispatcher=Nowhere()) as runtime:
        async with runtime.sessionmaker() as session:
            rows = [
                User(email=f"{tag}-{i}@bench.local", password_hash="!", role=Role.MEMBER)
                for i in range(users)
            ]
            session.add_all(rows)
            await session.flush()
            for user in rows:
                pair, _ = await issue_tokens(session, policy=policy, user=user)
                tokens.append(pair.access_token)
            await session.commit()
            await create_workflow(
                session,
                actor_id=rows[0].id,
                key=tag,
                version="1.0.0",
                name=tag,
                steps=[{"key": "a", "kind": "TRANSFORM", "config": {"template": "1"}}],
            )
            user_ids = [user.id for user in rows]

        async def execute(user_id: uuid.UUID) -> uuid.UUID:
            execution = await runtime.engine.execute(
                principal=Principal(user_id=user_id, role=Role.MEMBER),
                key=tag,
                version=None,
                inputs={},
            )
            return execution.id

        executions: list[uuid.UUID] = []
        for start in range(0, users, 4):
            batch = user_ids[start : start + 4]
            executions += await asyncio.gather(*(execute(u) for u in batch))
    return [(t, str(e)) for t, e in zip(tokens, executions, strict=True)], executions


async def publish(stack: Stack, executions: list[uuid.UUID], rate: float) -> dict[int, float]:
    """Append BENCH_TICK events to the executions' logs in turn and publish each after its
    commit, at ``rate`` in total (each on time, not after the previous one)."""
    from redis.asyncio import Redis

    from cognitionos.db import create_engine, create_sessionmaker
    from cognitionos.services.events import publish_events
    from cognitionos.services.workflows.transitions import Effects, lock_execution, record

    engine = create_engine(stack.database_url, pool_size=8)
    sessionmaker = create_sessionmaker(engine)
    redis = Redis.from_url(stack.redis_url)
    sent: dict[int, float] = {}

    async def tick(execution_id: uuid.UUID, i: int) -> None:
        effects = Effects()
        async with sessionmaker() as session:
            execution = await lock_execution(session, execution_id)
            await record(session, effects, execution, "BENCH_TICK", tick=i)
            await session.commit()
        sent[effects.events[0].position] = time.time()
        await publish_events(redis, effects.events)

    count = int(rate * SECONDS)
    started = time.perf_counter()
    ticks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        ticks.append(asyncio.create_task(tick(executions[i % len(executions)], i)))
    await asyncio.gather(*ticks)
    await redis.aclose()
    await engine.dispose()
    return sent


async def start_server(stack: Stack) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    env.update(
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        SECRET_KEY=SECRET,
        COGNITIONOS_ENV="test",
        COGNITIONOS_WORKER_IN_PROCESS="false",
        COGNITIONOS_LOG_LEVEL="WARNING",
        COGNITIONOS_PUBSUB_QUEUE_SIZE="10000",
        # Every subscriber of the shared case is one user: lift that user's connection cap
        # and rate limit (each subscribe counts) for that case.
        COGNITIONOS_WS_MAX_CONNECTIONS_PER_USER=str(SUBSCRIBERS + 10),
        COGNITIONOS_GRAPHQL_RATE_LIMIT=str(SUBSCRIBERS * 10),
    )
    from cognitionos.embedded import free_port

    port = free_port()
    with (stack.data / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cognitionos", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server.port = port  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become ready")


async def server_case(stack: Stack, case: str, rate: float) -> Outcome:
    tag = f"{case}-{rate:g}"
    if case == "shared":
        pairs, executions = await prepare(stack, 1, tag)
        pairs = pairs * SUBSCRIBERS
    else:
        pairs, executions = await prepare(stack, SUBSCRIBERS, tag)
    server = await start_server(stack)
    try:
        client = Client(
            {
                "mode": "ws",
                "url": f"ws://127.0.0.1:{server.port}/graphql",  # type: ignore[attr-defined]
                "query": QUERY,
                "replay": REPLAYED,
                "subscribers": pairs,
            }
        )
        join_seconds, joined = await client.joined()
        server_cpu = cpu_seconds(server.pid)
        started = time.perf_counter()
        sent = await publish(stack, executions, rate)
        expected = len(sent) * SUBSCRIBERS // len(executions)
        result = await client.results(expected)
        elapsed = time.perf_counter() - started
        server_cpu = 100 * (cpu_seconds(server.pid) - server_cpu) / elapsed
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(30)
    return Outcome(
        latencies=[(at - sent[position]) * 1000 for position, at in result["received"]],
        expected=expected,
        elapsed=elapsed,
        join_seconds=join_seconds,
        joined=joined,
        failures=result["failures"],
        client_cpu=100 * result["cpu_run"] / elapsed,
        server_cpu=server_cpu,
        rss=rss,
    )


async def baseline_case(stack: Stack, case: str, rate: float) -> Outcome:
    """The same shape on bare Redis: one channel (shared) or one per subscriber."""
    from redis.asyncio import Redis

    channels = [
        "bench:baseline" if case == "shared" else f"bench:baseline:{i}" for i in range(SUBSCRIBERS)
    ]
    client = Client({"mode": "redis", "url": stack.redis_url, "channels": channels})
    join_seconds, joined = await client.joined()
    redis = Redis.from_url(stack.redis_url)
    count = int(rate * SECONDS)
    sent: dict[int, float] = {}
    started = time.perf_counter()
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        sent[i] = time.time()
        await redis.publish(channels[i % SUBSCRIBERS], json.dumps({"position": i}))
    await redis.aclose()
    expected = count * (SUBSCRIBERS if case == "shared" else 1)
    result = await client.results(expected)
    elapsed = time.perf_counter() - started
    return Outcome(
        latencies=[(at - sent[position]) * 1000 for position, at in result["received"]],
        expected=expected,
        elapsed=elapsed,
        join_seconds=join_seconds,
        joined=joined,
        failures=result["failures"],
        client_cpu=100 * result["cpu_run"] / elapsed,
    )


async def main() -> None:
    async with embedded_stack("cognitionos-fanout-") as stack:
        print(f"{SUBSCRIBERS} subscribers, {SECONDS:g}s per run, one server process")
        for case in ("shared", "distinct"):
            for rate in rates(case):
                who = "one user, one execution" if case == "shared" else "one user each"
                print(f"{case} ({who}), {rate:g} events/s")
                ours = (await server_case(stack, case, rate)).report("CognitionOS executionUpdated")
                bare = (await baseline_case(stack, case, rate)).report("bare Redis pub/sub")
                print(f"  ratio p99 CognitionOS/bare: {ours / bare:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
