"""Engine rules without GraphQL: step kinds' guards, schedules firing exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from cognitionos.config import Settings
from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.db.models import Role, Schedule, ScheduleKind, User, WorkflowExecution
from cognitionos.services.auth import Principal
from cognitionos.services.notifications import NotificationService
from cognitionos.services.templating import TemplateRenderer
from cognitionos.services.workflows import Dispatch, Engine, create_schedule, create_workflow, tick
from cognitionos.services.workflows.definitions import RetryPolicy
from cognitionos.services.workflows.schedules import next_fire
from cognitionos.services.workflows.steps import SqlPool, StepFailure, get_kind
from tests.conftest import Stack
from tests.support import step_context


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Dispatch] = []

    async def dispatch(self, items: Any) -> None:
        self.sent.extend(items)


async def test_python_steps_are_off_by_default() -> None:
    kind = get_kind("PYTHON")
    assert kind is not None
    with pytest.raises(StepFailure, match="COGNITIONOS_PYTHON_STEPS_ENABLED"):
        await kind.run(step_context(Settings()), {"code": "result = 1"})


async def test_python_memory_limit_kills_the_child_not_the_server() -> None:
    kind = get_kind("PYTHON")
    assert kind is not None
    settings = Settings(python_steps_enabled=True, python_step_memory_mb=128)
    with pytest.raises(StepFailure, match="python step failed: MemoryError"):
        await kind.run(step_context(settings), {"code": "x = bytearray(512 * 1024 * 1024)"})
    assert await kind.run(step_context(settings), {"code": "result = [1, 2]"}) == [1, 2]


def test_backoff_grows_with_jitter_and_caps() -> None:
    policy = RetryPolicy(
        max_attempts=5, initial_delay_seconds=1, backoff_factor=2, max_delay_seconds=5
    )
    for attempt, base in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        delays = {policy.delay(attempt) for _ in range(20)}
        assert all(base / 2 <= d <= base for d in delays)
        assert len(delays) > 1  # jittered


def test_next_fire_cron_in_a_time_zone_and_once_in_the_past() -> None:
    after = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    fire = next_fire(ScheduleKind.CRON, "0 9 * * *", "America/New_York", after)
    assert fire == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # 09:00 EST, 07:00 now
    assert next_fire(ScheduleKind.ONCE, "2020-01-01T00:00:00", "UTC", after) is None
    assert next_fire(ScheduleKind.INTERVAL, "90", "UTC", after) == after + timedelta(seconds=90)


async def test_two_schedulers_fire_each_due_schedule_once(
    stack: Stack, renderer: TemplateRenderer
) -> None:
    settings = stack.settings()
    engine = create_engine(stack.database_url, pool_size=4)
    redis = Redis.from_url(stack.redis.url)
    sessionmaker = create_sessionmaker(engine)
    try:
        engines = [
            Engine(
                settings=settings,
                sessionmaker=sessionmaker,
                redis=redis,
                dispatcher=Recorder(),
                notifications=NotificationService(settings, renderer),
                renderer=renderer,
            )
            for _ in range(2)
        ]
        async with sessionmaker() as session:
            user = User(email="sched@example.com", password_hash="x", role=Role.MEMBER)
            session.add(user)
            await session.commit()
            principal = Principal(user_id=user.id, role=Role.MEMBER)
            await create_workflow(
                session,
                actor_id=user.id,
                key="tick",
                version="1.0.0",
                name="tick",
                steps=[{"key": "a", "kind": "TRANSFORM", "config": {"template": "x"}}],
            )
            schedule = await create_schedule(
                session,
                principal=principal,
                workflow_key="tick",
                workflow_version=None,
                kind=ScheduleKind.INTERVAL,
                expression="60",
            )
            # Down for an hour: sixty fires were missed.
            await session.execute(
                update(Schedule).values(next_run_at=datetime.now(UTC) - timedelta(hours=1))
            )
            await session.commit()

        fired = await asyncio.gather(*(tick(e) for e in engines), *(tick(e) for e in engines))
        assert sum(fired) == 1
        async with sessionmaker() as session:
            runs = await session.scalar(select(func.count()).select_from(WorkflowExecution))
            row = await session.get(Schedule, schedule.id)
            assert row is not None and row.next_run_at is not None
            assert row.next_run_at > datetime.now(UTC)  # the backlog collapsed into one run
            assert row.last_execution_id is not None
        assert runs == 1
        assert sum(len(e.dispatcher.sent) for e in engines) == 1  # type: ignore[attr-defined]
    finally:
        await redis.aclose()
        await engine.dispose()


@pytest.mark.parametrize(
    ("code", "limits", "reason"),
    [
        ("while True:\n    pass", {"python_step_cpu_seconds": 1}, "CPU or memory limit"),
        ("open('big', 'wb').write(b'x' * (3 * 1024 * 1024))", {"python_step_file_mb": 1},
         "File too large"),
    ],
)  # fmt: skip
async def test_python_cpu_and_file_limits(code: str, limits: dict[str, int], reason: str) -> None:
    kind = get_kind("PYTHON")
    assert kind is not None
    settings = Settings(python_steps_enabled=True, python_step_wall_seconds=20, **limits)
    with pytest.raises(StepFailure, match=reason):
        await kind.run(step_context(settings), {"code": code})


async def test_sql_statement_timeout(stack: Stack) -> None:
    kind = get_kind("SQL")
    assert kind is not None
    pool = SqlPool(stack.sql_step_url, size=1)
    try:
        ctx = step_context(Settings(sql_statement_timeout_ms=200), sql=pool)
        with pytest.raises(StepFailure, match="statement timeout") as caught:
            await kind.run(ctx, {"query": "SELECT pg_sleep(3)"})
        assert caught.value.retryable is True  # a timeout counts as a (retryable) failure
    finally:
        await pool.aclose()


async def test_http_response_size_is_capped() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Big(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 50_000)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kind = get_kind("HTTP")
    assert kind is not None
    settings = Settings(http_allow_hosts=["127.0.0.1"], http_max_response_bytes=10_000)
    try:
        with pytest.raises(StepFailure, match="response larger than 10000 bytes"):
            await kind.run(
                step_context(settings), {"url": f"http://127.0.0.1:{server.server_port}/"}
            )
    finally:
        server.shutdown()
        server.server_close()
