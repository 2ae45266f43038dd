"""SQL steps as a member runs them: their own role, which reads the sandbox and nothing of
ours, on connections that forget each step."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cognitionos.config import Settings
from cognitionos.services.workflows.steps import (
    SqlPool,
    StepContext,
    StepDeps,
    StepFailure,
    UnsafeSqlRole,
    get_kind,
)
from tests.conftest import TEST_DATABASE, TEST_SECRET, Stack
from tests.support import GQL, LiveServer, no_rendering
from tests.test_cli import Serve, data_dir  # noqa: F401 (data_dir is a fixture)
from tests.test_workflows import create, run


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


@pytest.fixture
def token(gql: GQL) -> str:
    return gql.member()


def sql(key: str, query: str, *deps: str, **params: str) -> dict[str, Any]:
    config: dict[str, Any] = {"query": query}
    if params:
        config["params"] = params
    return {"key": key, "kind": "SQL", "config": config, "dependsOn": list(deps)}


def step(execution: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in execution["steps"] if s["stepKey"] == key)


def run_one(gql: GQL, token: str, query: str) -> dict[str, Any]:
    """Run ``query`` as the only step of a fresh workflow; return that step."""
    key = f"q-{uuid.uuid4().hex[:8]}"
    create(gql, token, key, [sql("q", query)])
    execution = run(gql, token, key)
    return step(execution, "q")


MARKER = Path("/tmp") / f"cognitionos-copy-program-{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("SELECT email, password_hash FROM users", "permission denied for table users"),
        ("SELECT key_hash FROM public.api_keys", "permission denied for table api_keys"),
        ("SELECT token_hash FROM refresh_tokens", "permission denied for table refresh_tokens"),
        ("SELECT pg_read_file('/etc/hostname')", "permission denied for function pg_read_file"),
        (f"COPY (SELECT 1) TO PROGRAM 'touch {MARKER}'", "permission denied to COPY"),
        ("SELECT pg_advisory_xact_lock(1)", "permission denied for function pg_advisory"),
        ("SELECT pg_try_advisory_lock(1, 2)", "permission denied for function pg_try_advisory"),
        ("SELECT pg_cancel_backend(1)", "permission denied for function pg_cancel_backend"),
        ("SET temp_file_limit = -1", 'permission denied to set parameter "temp_file_limit"'),
        (
            "SELECT set_config('role', 'postgres', false)",
            'permission denied to set role "postgres"',
        ),
    ],
)
def test_sql_step_reaches_neither_our_tables_nor_the_server(
    gql: GQL, token: str, query: str, refusal: str
) -> None:
    gql.register("victim@example.com")  # a row whose password hash is worth stealing
    attempt = run_one(gql, token, query)
    assert attempt["status"] == "FAILED", attempt
    assert refusal in attempt["error"]
    assert attempt["output"] is None
    assert not MARKER.exists()


def test_sql_step_reads_the_sandbox_with_parameters(
    gql: GQL, token: str, db: Callable[..., Any]
) -> None:
    db("CREATE TABLE sql_sandbox.cities (name text, population int)")
    try:
        db("INSERT INTO sql_sandbox.cities VALUES ('Lyon', 522000), ('Nice', 342000)")
        create(
            gql,
            token,
            "sandbox",
            [
                sql("one", "SELECT 1 AS x"),
                sql("who", "SELECT current_user AS who"),
                sql(
                    "cities",
                    "SELECT name, population FROM cities WHERE name <> :skip ORDER BY name",
                    skip="{{ inputs.skip }}",
                ),
            ],
        )
        execution = run(gql, token, "sandbox", {"skip": "Nice"})
        assert execution["status"] == "SUCCEEDED", execution
        outputs = execution["outputs"]
        assert outputs["one"] == {"columns": ["x"], "rows": [[1]], "truncated": False}
        assert outputs["who"]["rows"] == [["cognitionos_sql_reader"]]
        assert outputs["cities"]["rows"] == [["Lyon", 522000]]
    finally:
        db("DROP TABLE sql_sandbox.cities")


def test_a_sql_step_leaves_nothing_in_the_session_for_the_next(gql: GQL, token: str) -> None:
    # The engine server's SQL pool holds one connection: every step below runs on it.
    create(
        gql,
        token,
        "leaky",
        [
            sql(
                "a",
                # (Advisory locks are refused to this role outright: see above.)
                "SELECT set_config('cognitionos.leak', 'yes', false) AS v, "
                "now() AS at, pg_backend_pid() AS pid",
            ),
            sql("b", "PREPARE leaked AS SELECT 'left behind'", "a"),
            sql(
                "c",
                "SELECT current_setting('cognitionos.leak', true) AS v, "
                "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()) AS locks, pg_backend_pid() AS pid",
                "b",
            ),
            sql("d", "EXECUTE leaked", "c"),
        ],
    )
    execution = run(gql, token, "leaky")
    first, third, last = step(execution, "a"), step(execution, "c"), step(execution, "d")
    assert first["status"] == "SUCCEEDED" and third["status"] == "SUCCEEDED", execution
    assert first["output"]["rows"][0][0] == "yes"
    value, locks, pid = third["output"]["rows"][0]
    assert pid == first["output"]["rows"][0][2]  # the same connection, so this is a real test
    assert value in ("", None)
    assert locks == 0
    assert last["status"] == "FAILED"
    assert 'prepared statement "leaked" does not exist' in last["error"]


def test_a_step_cut_off_mid_query_gives_its_connection_back(gql: GQL, token: str) -> None:
    slow = {**sql("slow", "SELECT pg_sleep(3)"), "timeoutSeconds": 0.5}
    create(gql, token, "slow", [slow])
    cut = step(run(gql, token, "slow"), "slow")
    assert cut["status"] == "FAILED", cut
    # The pool has one connection: the next step gets it, in a clean state.
    after = run_one(gql, token, "SELECT 1 AS x, current_setting('transaction_read_only') AS ro")
    assert after["status"] == "SUCCEEDED", after
    assert after["output"]["rows"] == [[1, "on"]]


def _verify(url: str) -> None:
    async def check() -> None:
        pool = SqlPool(url, size=1)
        try:
            await pool.verify()
        finally:
            await pool.aclose()

    asyncio.run(check())


@pytest.fixture
def role(stack: Stack, db: Callable[..., Any]) -> Iterator[Callable[[str], str]]:
    """Make a login role with the given grants; return its URL. Dropped afterwards."""
    made: list[str] = []

    def make(grants: str) -> str:
        name = f"probe_{uuid.uuid4().hex[:8]}"
        db(f"CREATE ROLE {name} LOGIN")
        made.append(name)
        db(grants.format(role=name))
        return stack.postgres.url(TEST_DATABASE, user=name)

    yield make
    for name in made:
        db(f"DROP OWNED BY {name}")
        db(f"DROP ROLE {name}")


def test_role_check_refuses_what_reaches_too_far(stack: Stack, role: Callable[[str], str]) -> None:
    superuser = "refusing to run SQL steps as role 'postgres': it is a superuser"
    with pytest.raises(UnsafeSqlRole, match=superuser):
        _verify(stack.database_url)
    reads_users = role("GRANT SELECT (email) ON users TO {role}")
    with pytest.raises(UnsafeSqlRole, match=r"can read the application's tables \(users\)"):
        _verify(reads_users)
    reads_files = role("GRANT pg_read_server_files TO {role}")
    with pytest.raises(UnsafeSqlRole, match="member of pg_read_server_files"):
        _verify(reads_files)
    _verify(stack.sql_step_url)  # the sandbox role passes


async def test_a_sql_step_on_a_superuser_fails_without_running(stack: Stack) -> None:
    kind = get_kind("SQL")
    assert kind is not None
    pool = SqlPool(stack.database_url, size=1)
    try:
        deps = StepDeps(
            settings=Settings(secret_key=TEST_SECRET),
            sessionmaker=None,  # type: ignore[arg-type]
            renderer=no_rendering(),
            sql=pool,
        )
        ctx = StepContext(
            deps=deps,
            execution_id=uuid.uuid4(),
            step_id=uuid.uuid4(),
            step_key="q",
            attempt=1,
            actor_id=None,
        )
        with pytest.raises(StepFailure, match="it is a superuser") as caught:
            await kind.run(ctx, {"query": "SELECT pg_read_file('/etc/hostname')"})
        assert caught.value.retryable is False
    finally:
        await pool.aclose()


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PORT"):
        env.pop(name, None)
    env.update(extra)
    return env


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_serve_and_worker_refuse_a_superuser_sql_role(
    stack: Stack, tmp_path: Path, command: str
) -> None:
    env = _cli_env(
        COGNITIONOS_ENV="test",
        COGNITIONOS_DATA_DIR=str(tmp_path),
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis.url,
        SECRET_KEY=TEST_SECRET,
        COGNITIONOS_SQL_STEP_DATABASE_URL=stack.database_url,
    )
    done = subprocess.run(
        [sys.executable, "-m", "cognitionos", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to run SQL steps as role 'postgres': it is a superuser" in done.stderr


def test_embedded_serve_runs_sql_steps_as_their_own_role(data_dir: Path) -> None:  # noqa: F811
    server = Serve(data_dir)
    try:
        server.wait_ready()
        gql = GQL(server.url)
        token = gql.member()
        create(
            gql,
            token,
            "embedded",
            [
                sql(
                    "who",
                    "SELECT current_user AS who, reset_val AS role_timeout "
                    "FROM pg_settings WHERE name = 'statement_timeout'",
                )
            ],
        )
        execution = run(gql, token, "embedded")
        assert execution["outputs"]["who"]["rows"] == [["cognitionos_sql_reader", "5000"]]
        assert (
            "permission denied for table users"
            in run_one(gql, token, "SELECT password_hash FROM users")["error"]
        )
        gql.client.close()
    finally:
        assert server.stop() == 0
