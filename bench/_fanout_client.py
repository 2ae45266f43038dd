"""The subscribers of ``fanout.py``, in a process of their own.

Kept as light as a client can be (one asyncio loop, raw ``websockets``, one small JSON
parse per message) so that it takes as little as possible of the cores it shares with
the server. Reads one JSON job on stdin, prints ``ready <seconds to join>`` once every
subscription receives its live stream, then, after ``stop <expected>`` on stdin, prints
one JSON line: the (position, receive time) of every message, failures, and its own CPU.

Job: ``{"mode": "ws", "url": ..., "query": ..., "replay": 2,
"subscribers": [[token, execution_id], ...]}`` or ``{"mode": "redis", "url": ...,
"channels": [channel, ...]}`` (the bare Redis baseline: one connection per subscriber).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
from typing import Any

from websockets.asyncio.client import connect


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run:
    def __init__(self, count: int) -> None:
        self.count = count
        self.joined = 0
        self.settled = 0  # joined or failed
        self.ready = asyncio.Event()
        self.received: list[tuple[int, float]] = []
        self.failures: list[str] = []

    def join(self) -> None:
        self.joined += 1
        self.settle()

    def fail(self, why: str) -> None:
        self.failures.append(why)
        self.settle()

    def settle(self) -> None:
        self.settled += 1
        if self.settled == self.count:
            self.ready.set()


async def ws_subscriber(run: Run, job: dict[str, Any], token: str, execution_id: str) -> None:
    protocols: Any = ["graphql-transport-ws"]
    received = run.received
    replayed = 0
    try:
        async with connect(
            job["url"],
            subprotocols=protocols,
            max_queue=None,
            ping_interval=None,
            open_timeout=60,
            compression=job.get("compression", "deflate"),  # browsers offer it too
        ) as ws:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                run.fail(f"init: {ack}")
                return
            subscribe = {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": job["query"], "variables": {"id": execution_id}},
            }
            await ws.send(json.dumps(subscribe))
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send('{"type":"pong"}')
                    continue
                if kind != "next":
                    if kind in ("error", "complete"):
                        raise RuntimeError(f"{kind}: {str(message)[:200]}")
                    continue
                event = message["payload"]["data"]["executionUpdated"]
                if event["type"] == "BENCH_TICK":
                    received.append((event["position"], now))
                    continue
                replayed += 1
                if replayed == job["replay"]:  # the stored events: the live stream is on
                    run.join()
    except Exception as exc:  # reported, not raised: the run goes on without this one
        if replayed < job["replay"]:
            run.fail(f"{type(exc).__name__}: {exc}")
        else:
            run.failures.append(f"{type(exc).__name__}: {exc}")


async def redis_subscriber(run: Run, url: str, channel: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    run.join()
    try:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                now = time.time()
                run.received.append((json.loads(message["data"])["position"], now))
    finally:
        await pubsub.aclose()
        await client.aclose()


async def main() -> None:
    job = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    if job["mode"] == "ws":
        run = Run(len(job["subscribers"]))
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(ws_subscriber(run, job, token, execution_id))
            for token, execution_id in job["subscribers"]
        ]
    else:
        run = Run(len(job["channels"]))
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(redis_subscriber(run, job["url"], channel))
            for channel in job["channels"]
        ]
    try:
        await asyncio.wait_for(run.ready.wait(), 180)
    except TimeoutError:
        pass
    joined = time.perf_counter() - started
    # A short-lived process: no collector pauses in what it measures.
    gc.freeze()
    gc.disable()
    print(f"ready {joined:.3f} {run.joined}", flush=True)
    cpu_ready = cpu()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    expected = int(line.split()[1])
    deadline = time.monotonic() + 30
    while len(run.received) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    result = {
        "received": run.received,
        "failures": run.failures[:20],
        "failure_count": len(run.failures),
        "cpu_join": cpu_ready,
        "cpu_run": cpu() - cpu_ready,
    }
    print(json.dumps(result), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
