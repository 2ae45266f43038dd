"""Engine throughput and dispatch latency against bare arq, in one run.

Runs N no-op TRANSFORM steps through the full engine (a wide fan-out and a long chain)
with one worker process (``cognitionos worker``), each execution started by the engine
of a web process's runtime (``Runtime.start(role="web")``: its pools, Redis and arq
dispatcher, as ``executeWorkflow`` uses them), then the same number of bare arq no-op
jobs through one arq worker process on the same Redis. Prints steps/s, dispatch latency
(ready -> started) p50/p95, and the engine/bare-arq ratio. Usage: python bench/engine.py [N]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _stack import Stack, embedded_stack
from arq.connections import RedisSettings

FAN = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 500
CHAIN = max(50, FAN // 5)
POLL = "0.01"


async def _noop(ctx: dict[str, Any]) -> None:
    return None


class NoopWorker:
    """arq settings for the baseline worker process (``python bench/engine.py --noop URL``)."""

    functions = [_noop]
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://localhost:6379"))
    poll_delay = float(POLL)
    max_jobs = 50
    keep_result = 600


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


async def engine_run(
    runtime: Any, key: str, steps: list[dict[str, Any]]
) -> tuple[float, list[float]]:
    from sqlalchemy import select

    from cognitionos.db.models import Role, StepExecution, User, WorkflowExecution
    from cognitionos.services.auth import Principal
    from cognitionos.services.workflows import create_workflow

    sessionmaker = runtime.sessionmaker
    async with sessionmaker() as session:
        user = User(email=f"{key}@bench.local", password_hash="!", role=Role.MEMBER)
        session.add(user)
        await session.commit()
        await create_workflow(
            session, actor_id=user.id, key=key, version="1.0.0", name=key, steps=steps
        )
    started = time.perf_counter()
    execution = await runtime.engine.execute(
        principal=Principal(user_id=user.id, role=Role.MEMBER), key=key, version=None, inputs={}
    )
    while True:
        async with sessionmaker() as session:
            status = await session.scalar(
                select(WorkflowExecution.status).where(WorkflowExecution.id == execution.id)
            )
        if status is not None and status.terminal:
            break
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    assert status.value == "SUCCEEDED", status
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(StepExecution.dispatched_at, StepExecution.started_at).where(
                    StepExecution.execution_id == execution.id
                )
            )
        ).all()
    latencies = [(s - d).total_seconds() * 1000 for d, s in rows]
    return elapsed, latencies


async def arq_run(redis_url: str, n: int) -> tuple[float, list[float]]:
    from arq import create_pool

    from cognitionos.jobs import redis_settings

    pool = await create_pool(redis_settings(redis_url))
    started = time.perf_counter()
    jobs = [await pool.enqueue_job("_noop", _job_id=uuid.uuid4().hex) for _ in range(n)]
    results = [await job.result_info() for job in jobs if job is not None]
    while any(r is None for r in results):
        await asyncio.sleep(0.02)
        results = [await job.result_info() for job in jobs if job is not None]
    elapsed = time.perf_counter() - started
    latencies = [
        (r.start_time - r.enqueue_time).total_seconds() * 1000 for r in results if r is not None
    ]
    await pool.aclose()
    return elapsed, latencies


def report(name: str, n: int, elapsed: float, latencies: list[float]) -> float:
    rate = n / elapsed
    print(
        f"{name:<24} {n:>5} steps  {elapsed:6.2f}s  {rate:8.1f} steps/s  "
        f"dispatch p50 {statistics.median(latencies):6.1f} ms  p95 {pct(latencies, 0.95):6.1f} ms"
    )
    return rate


async def main() -> None:
    async with embedded_stack("cognitionos-bench-") as stack:
        await measure(stack)


async def measure(stack: Stack) -> None:
    from cognitionos.config import Settings
    from cognitionos.observability import configure_logging
    from cognitionos.runtime import Runtime

    database_url, redis_url = stack.database_url, stack.redis_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="b" * 40,
        COGNITIONOS_WORKER_POLL_DELAY_SECONDS=POLL,
        COGNITIONOS_LOG_LEVEL="WARNING",
    )
    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key="b" * 40)
    configure_logging(level="WARNING")
    worker = spawn([sys.executable, "-m", "cognitionos", "worker"], env, stack.data / "worker.log")
    try:
        async with Runtime.start(settings, role="web") as runtime:
            await asyncio.sleep(2)  # worker start-up is not what we measure
            noop = {"kind": "TRANSFORM", "config": {"template": "1"}}
            fan = [{"key": "root", **noop}] + [
                {"key": f"s{i}", "dependsOn": ["root"], **noop} for i in range(FAN - 1)
            ]
            chain = [{"key": "s0", **noop}] + [
                {"key": f"s{i}", "dependsOn": [f"s{i - 1}"], **noop} for i in range(1, CHAIN)
            ]
            print(f"one worker, poll delay {POLL}s, 2 cores; engine = full durable path")
            fan_rate = report("engine fan-out", FAN, *await engine_run(runtime, "fan", fan))
            chain_rate = report("engine chain", CHAIN, *await engine_run(runtime, "chain", chain))
    finally:
        worker.terminate()
        worker.wait()
    baseline = spawn(
        [sys.executable, "-m", "arq", "engine.NoopWorker"],
        {**env, "PYTHONPATH": str(Path(__file__).parent)},
        stack.data / "noop.log",
    )
    try:
        await asyncio.sleep(2)
        arq_rate = report("bare arq no-op jobs", FAN, *await arq_run(redis_url, FAN))
    finally:
        baseline.terminate()
        baseline.wait()
    print(
        f"ratio engine/bare-arq (steps/s): fan-out {fan_rate / arq_rate:.2f}, "
        f"chain {chain_rate / arq_rate:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
