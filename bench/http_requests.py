"""The GraphQL request path against bare Starlette and bare strawberry, in one run.

Starts each server as its own uvicorn process on loopback and loads it with ``wrk``
(``-t1 -c32 -d10s``, POST bodies from a Lua script); the load generator is native code,
so it does not measure itself on these cores. Rows:

* raw Starlette JSON endpoint (the floor: uvicorn + Starlette, nothing else);
* bare strawberry ASGI app answering ``{ me { id email } }`` from a constant;
* CognitionOS ``{ __typename }`` anonymous, ``{ me { id email } }`` authenticated, and a
  page of 20 executions with their steps and workflow (embedded PostgreSQL + Redis).

Prints req/s, p50 and p99 per row, the server process's CPU time per request (read from
/proc around the run: unlike req/s it barely moves when other work shares the cores),
each row's ratio to raw Starlette and to bare strawberry, and the SQL statements one
request of each CognitionOS row runs.
Usage: python bench/http_requests.py [seconds]   (needs Debian's ``wrk``; says so and exits 0
without it). Internally: ``python bench/http_requests.py --serve KIND PORT`` runs one server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import strawberry

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10
CONNECTIONS = 32
SECRET = "h" * 40
EXECUTIONS = 25
PAGE = """{ executions(first: 20) { edges { cursor node { id status createdAt
  workflow { key version name } steps { id stepKey status attempt } } }
  pageInfo { hasNextPage endCursor } } }"""
ME = "{ me { id email } }"
TYPENAME = "{ __typename }"


# -- the servers (each run in its own process) ----------------------------------------


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"data": {"me": {"id": "1", "email": "bench@bench.local"}}})

    return Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])


@strawberry.type(name="User")
class BareUser:
    id: strawberry.ID
    email: str


@strawberry.type(name="Query")
class BareQuery:
    @strawberry.field
    async def me(self) -> BareUser:
        return BareUser(id=strawberry.ID("1"), email="bench@bench.local")


def strawberry_app() -> Any:
    from strawberry.asgi import GraphQL

    return GraphQL(strawberry.Schema(query=BareQuery), graphql_ide=None)


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "cognitionos":
        from cognitionos.app import create_app, server_config
        from cognitionos.config import Settings
        from cognitionos.observability import configure_logging

        settings = Settings()
        configure_logging(level=settings.log_level, json=True)
        app = create_app(settings)
        uvicorn.Server(server_config(app, host="127.0.0.1", port=port)).run()
        return
    app = starlette_app() if kind == "starlette" else strawberry_app()
    # uvicorn's defaults (uvloop + httptools when installed), no access log.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- load ----------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int
    cpu_ms: float  # server CPU per request


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lua_string(text: str) -> str:
    """``text`` as a Lua string literal: printable ASCII as is, every other byte of its
    UTF-8 (and the quote and backslash) as a decimal escape, which every Lua reads."""
    plain = (chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in text.encode())
    return '"' + "".join(plain) + '"'


def _run_wrk(
    url: str, lua: list[str], headers: dict[str, str], options: list[str]
) -> subprocess.CompletedProcess[str]:
    """``wrk`` with ``options`` on ``url``, its script ``lua`` plus ``headers``."""
    lua = [*lua, *(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lua) + "\n")
    try:
        command = ["wrk", *options, "-s", script.name, url]
        return subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        os.unlink(script.name)


def wrk(
    url: str, body: str, headers: dict[str, str], seconds: int
) -> tuple[float, float, float, int, int]:
    lua = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    options = ["-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    out = _run_wrk(url, lua, headers, options).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*timeout (\d+)", out)
    failures = (int(bad.group(1)) if bad else 0) + (int(errors.group(1)) if errors else 0)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, p50, p99, failures, total


# Cycles through a list of bodies on one connection, one request at a time; counts a
# response that is not a 200 or that carries GraphQL errors as bad, and prints wrk's own
# latency percentiles (microseconds).
_CYCLE = """wrk.method = "POST"
local bodies = %s
local i, threads = 0, {}
bad = 0  -- a global of each thread's state, read back in done()
setup = function(thread) table.insert(threads, thread) end
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do bad = bad + thread:get("bad") end
  -- wrk leaves a request out of the latencies when it fails or times out (2 s): bad too
  local e = summary.errors
  bad = bad + e.connect + e.read + e.write + e.timeout
  io.write(string.format("cycle %%d %%d %%d %%d %%d\\n", summary.requests, bad,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_cycle(
    url: str, bodies: list[str], headers: dict[str, str], seconds: int
) -> tuple[int, int, float, float, float]:
    """``wrk -t1 -c1`` for ``seconds`` through ``bodies`` in turn (each about as often):
    requests, bad responses, and p50, p95, p99 in ms. One client, one request at a time:
    the latency of a request, not a throughput."""
    lua = [_CYCLE % ("{" + ",".join(_lua_string(b) for b in bodies) + "}")]
    out = _run_wrk(url, lua, headers, ["-t1", "-c1", f"-d{seconds}s"])
    found = re.search(r"^cycle (\d+) (\d+) (\d+) (\d+) (\d+)$", out.stdout, re.M)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    n, bad, p50, p95, p99 = (int(v) for v in found.groups())
    return n, bad, p50 / 1000, p95 / 1000, p99 / 1000


def measure(name: str, url: str, query: str, pid: int, token: str | None = None) -> Row:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query})
    answer = httpx.post(url, content=body, headers=headers, timeout=30).json()
    assert "errors" not in answer and answer.get("data"), answer
    wrk(url, body, headers, 2)  # warm-up: imports, pools, caches
    before = cpu_seconds(pid)
    rps, p50, p99, failures, total = wrk(url, body, headers, SECONDS)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(total, 1)
    return Row(name, rps, p50, p99, failures, cpu_ms)


def start(kind: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    from cognitionos.embedded import free_port

    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + ("/health/ready" if kind == "cognitionos" else "/"), timeout=1)
            return process, url + "/graphql"
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{kind} server did not start:\n{tail}") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- CognitionOS data and SQL counts ----------------------------------------------------


async def seed(database_url: str, redis_url: str) -> str:
    """A member with EXECUTIONS executions of a three-step workflow; returns a token."""
    from cognitionos.config import Settings
    from cognitionos.db.models import Role, User
    from cognitionos.runtime import Runtime
    from cognitionos.services.auth import Principal
    from cognitionos.services.auth.tokens import issue_access_token
    from cognitionos.services.workflows import Dispatch, create_workflow

    class Nowhere:
        async def dispatch(self, items: list[Dispatch]) -> None:
            return None

    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key=SECRET)
    noop = {"kind": "TRANSFORM", "config": {"template": "1"}}
    # Executions nobody runs: the pages read them as they were created.
    async with Runtime.start(settings, role="worker", dispatcher=Nowhere()) as runtime:
        async with runtime.sessionmaker() as session:
            user = User(email="http@bench.local", password_hash="!", role=Role.MEMBER)
            session.add(user)
            await session.commit()
            await create_workflow(
                session,
                actor_id=user.id,
                key="page",
                version="1.0.0",
                name="page",
                steps=[
                    {"key": "a", **noop},
                    {"key": "b", "dependsOn": ["a"], **noop},
                    {"key": "c", "dependsOn": ["a"], **noop},
                ],
            )
        principal = Principal(user_id=user.id, role=Role.MEMBER)
        for _ in range(EXECUTIONS):
            await runtime.engine.execute(principal=principal, key="page", version=None, inputs={})
    return issue_access_token(
        user_id=user.id, role=Role.MEMBER, secret=SECRET, issuer="cognitionos", ttl_seconds=7200
    )


async def statements(settings: Any, token: str) -> dict[str, int]:
    """SQL statements of one request per row, counted on the app's own engine."""
    from sqlalchemy import event

    from cognitionos.app import create_app
    from cognitionos.observability import configure_logging

    configure_logging(level="WARNING")
    app = create_app(settings)
    counts: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        engine = app.state.services.sessionmaker.kw["bind"].sync_engine
        seen = [0]

        def count(*args: Any) -> None:
            seen[0] += 1

        event.listen(engine, "before_cursor_execute", count)
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            cases = {
                "{ __typename }": (TYPENAME, {}),
                "{ me { id email } }": (ME, auth),
                "executions page (5)": (PAGE.replace("first: 20", "first: 5"), auth),
                "executions page (20)": (PAGE, auth),
            }
            for name, (query, headers) in cases.items():
                for _ in range(2):  # the second request: pools and caches are warm
                    seen[0] = 0
                    answer = (
                        await client.post("/graphql", json={"query": query}, headers=headers)
                    ).json()
                    assert "errors" not in answer, answer
                counts[name] = seen[0]
        event.remove(engine, "before_cursor_execute", count)
    return counts


# -- the run ---------------------------------------------------------------------------


async def main() -> None:
    if shutil.which("wrk") is None:
        print("bench/http_requests.py needs wrk (Debian: apt-get install wrk); skipped")
        return
    from _stack import embedded_stack

    async with embedded_stack("cognitionos-http-") as stack:
        token = await seed(stack.database_url, stack.redis_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
        env.update(
            DATABASE_URL=stack.database_url,
            REDIS_URL=stack.redis_url,
            SECRET_KEY=SECRET,
            COGNITIONOS_DATA_DIR=str(stack.data),
            # The limiter still runs on every request; it must not refuse the load.
            COGNITIONOS_GRAPHQL_RATE_LIMIT="1000000000",
            COGNITIONOS_LOG_JSON="true",
        )
        from cognitionos.config import Settings

        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            settings = Settings()
            counts = await statements(settings, token)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        await asyncio.to_thread(run_rows, env, stack.data, token, counts)


def run_rows(env: dict[str, str], data: Path, token: str, counts: dict[str, int]) -> None:
    rows: list[Row] = []
    for kind, name in (("starlette", "raw Starlette JSON"), ("strawberry", "bare strawberry me")):
        process, url = start(kind, env, data / f"{kind}.log")
        try:
            rows.append(measure(name, url, ME, process.pid))
        finally:
            stop(process)
    process, url = start("cognitionos", env, data / "cognitionos.log")
    try:
        rows.append(measure("CognitionOS __typename", url, TYPENAME, process.pid))
        rows.append(measure("CognitionOS me (auth)", url, ME, process.pid, token))
        rows.append(measure("CognitionOS 20 executions", url, PAGE, process.pid, token))
    finally:
        stop(process)
    raw, bare = rows[0].rps, rows[1].rps
    print(
        f"wrk -t1 -c{CONNECTIONS} -d{SECONDS}s, one server process each, "
        f"{os.cpu_count()} cores; PostgreSQL and Redis embedded on the same machine"
    )
    print(
        f"{'request':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}"
        f" {'÷ Starlette':>12} {'÷ strawberry':>13}"
    )
    for row in rows:
        failed = f"  ({row.failures} failed)" if row.failures else ""
        print(
            f"{row.name:<28} {row.rps:9.0f} {row.p50_ms:8.1f} {row.p99_ms:8.1f} "
            f"{row.cpu_ms:11.2f} "
            f"{row.rps / raw:12.2f} {row.rps / bare:13.2f}{failed}"
        )
    print("SQL statements per request: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        asyncio.run(main())
