"""Idle cost: CPU a server and a worker use when nobody asks anything of them.

Starts, on a fresh data dir, ``cognitionos serve`` with embedded PostgreSQL and Redis
(the worker runs in-process, as ``make serve`` does), lets it settle, and samples its
CPU time (``/proc/<pid>/stat``, all threads) over 30 s; then the production shape on
the same kind of stack: ``serve`` and a separate ``cognitionos worker``, each sampled
the same way, with the embedded Redis and PostgreSQL beside them (their CPU is what the
processes' polling makes them do). Prints % of one core per process.
Usage: python bench/idle.py [seconds]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
SETTLE = 8.0


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def sample(groups: dict[str, list[int]]) -> dict[str, float]:
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    started = time.monotonic()
    time.sleep(SECONDS)
    elapsed = time.monotonic() - started
    return {
        name: 100 * (cpu_seconds(pids) - before[name]) / elapsed for name, pids in groups.items()
    }


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def children(pid: int, name: str) -> list[int]:
    return [
        p.pid for p in psutil.Process(pid).children(recursive=True) if name in " ".join(p.cmdline())
    ]


def postgres(data: Path) -> list[int]:
    """The postmaster serving ``data`` (found by its command line) and its backends."""
    for process in psutil.process_iter(["cmdline"]):
        if "postgres" in " ".join(process.info["cmdline"] or []) and str(data) in " ".join(
            process.info["cmdline"] or []
        ):
            return [process.pid, *(c.pid for c in process.children(recursive=True))]
    return []


def report(rows: dict[str, float]) -> None:
    for name, percent in rows.items():
        print(f"  {name:<34} {percent:6.2f} % of a core")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        env.pop(name, None)
    env["COGNITIONOS_LOG_LEVEL"] = "WARNING"
    return env


def embedded_serve(port: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="cognitionos-idle-"))
    env = {**base_env(), "COGNITIONOS_DATA_DIR": str(data)}
    log = data / "serve.log"
    serve = spawn([sys.executable, "-m", "cognitionos", "serve", "--port", str(port)], env, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", serve, log)
        time.sleep(SETTLE)
        print(f"make serve (embedded services, worker in-process), idle {SECONDS:.0f} s:")
        report(
            sample(
                {
                    "serve (web + worker)": [serve.pid],
                    "embedded Redis": children(serve.pid, "redis-server"),
                    "embedded PostgreSQL (all backends)": postgres(data),
                }
            )
        )
    finally:
        stop(serve)


def separate(port: int) -> None:
    import asyncio

    from _stack import embedded_stack

    async def run() -> None:
        async with embedded_stack("cognitionos-idle-") as stack:
            env = {
                **base_env(),
                "DATABASE_URL": stack.database_url,
                "REDIS_URL": stack.redis_url,
                "SECRET_KEY": "i" * 40,
                "COGNITIONOS_DATA_DIR": str(stack.data),
            }
            log = stack.data / "separate.log"
            serve = spawn(
                [sys.executable, "-m", "cognitionos", "serve", "--port", str(port)], env, log
            )
            worker = spawn([sys.executable, "-m", "cognitionos", "worker"], env, log)
            try:
                wait_ready(f"http://127.0.0.1:{port}", serve, log)
                await asyncio.sleep(SETTLE)
                redis = children(os.getpid(), "redis-server")  # the stack's, ours
                print(f"serve and a separate worker (production shape), idle {SECONDS:.0f} s:")
                rows = await asyncio.to_thread(
                    sample,
                    {
                        "serve (web only)": [serve.pid],
                        "worker": [worker.pid],
                        "Redis": redis,
                        "PostgreSQL (all backends)": postgres(stack.data),
                    },
                )
                report(rows)
            finally:
                stop(worker)
                stop(serve)

    asyncio.run(run())


def main() -> None:
    from cognitionos.embedded import free_port

    embedded_serve(free_port())
    separate(free_port())


if __name__ == "__main__":
    main()
