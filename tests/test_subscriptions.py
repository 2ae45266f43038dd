"""Live subscriptions over real websockets, against the real server and worker."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.support import CREATE_WORKFLOW, EXECUTE, GQL, LiveServer
from tests.ws_support import EXECUTION_UPDATED, LEGACY_WS, WS

HISTORY = "query($id: ID!) { events(streamId: $id) { position version type } }"


def chain(gql: GQL, token: str, key: str, n: int = 5, sleep: float = 0.0) -> None:
    """n steps in a row; with ``sleep`` each one is a PYTHON step that takes that long."""
    steps = []
    for i in range(n):
        step: dict[str, Any] = (
            {
                "kind": "PYTHON",
                "config": {"code": f"import time\ntime.sleep({sleep})\nresult = {i}"},
            }
            if sleep
            else {"kind": "TRANSFORM", "config": {"template": str(i)}}
        )
        steps.append({"key": f"s{i}", "dependsOn": [f"s{i - 1}"] if i else [], **step})
    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": key, "version": "1.0.0", "name": key, "steps": steps}},
        token=token,
    )


def start(gql: GQL, token: str, key: str) -> str:
    return str(
        gql.ok(EXECUTE, {"input": {"workflowKey": key}}, token=token)["executeWorkflow"]["id"]
    )


def history(gql: GQL, token: str, execution_id: str) -> list[tuple[int, str]]:
    events = gql.ok(HISTORY, {"id": execution_id}, token=token)["events"]
    return [(e["position"], e["type"]) for e in events]


def seen(payloads: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [
        (p["data"]["executionUpdated"]["position"], p["data"]["executionUpdated"]["type"])
        for p in payloads
    ]


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


async def test_subscriber_sees_every_transition_in_order_then_completes(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("watcher@example.com")
    chain(gql, token, "five", sleep=0.1)
    async with WS(engine_server.url) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        execution_id = start(gql, token, "five")
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
        payloads = await ws.collect("1")
    events = seen(payloads)
    assert events == history(gql, token, execution_id)  # all of them, in order, once
    types = [t for _, t in events]
    assert types[-1] == "EXECUTION_SUCCEEDED"
    assert types.count("STEP_STARTED") == 5 and types.count("STEP_SUCCEEDED") == 5
    last = payloads[-1]["data"]["executionUpdated"]
    assert last["execution"]["status"] == "SUCCEEDED"
    step_events = [
        p["data"]["executionUpdated"]
        for p in payloads
        if p["data"]["executionUpdated"]["type"] == "STEP_SUCCEEDED"
    ]
    assert [e["step"]["stepKey"] for e in step_events] == ["s0", "s1", "s2", "s3", "s4"]


async def test_resume_after_disconnect_has_no_gap_and_no_duplicate(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("resume@example.com")
    chain(gql, token, "resumable", sleep=0.3)
    execution_id = start(gql, token, "resumable")
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
        first = seen(await ws.collect("1", limit=4))
    await asyncio.sleep(0.5)  # events keep happening while we are away
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("2", EXECUTION_UPDATED, {"id": execution_id, "after": first[-1][0]})
        rest = seen(await ws.collect("2"))
    assert first + rest == history(gql, token, execution_id)
    assert rest[-1][1] == "EXECUTION_SUCCEEDED"


async def test_finished_execution_replays_and_completes(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("late@example.com")
    chain(gql, token, "done", n=2)
    execution_id = start(gql, token, "done")
    gql.wait_execution(execution_id, token)
    async with WS(engine_server.url, protocol=LEGACY_WS) as ws:  # the legacy protocol too
        assert (await ws.init(token))["type"] == "connection_ack"
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
        assert seen(await ws.collect("1")) == history(gql, token, execution_id)


@pytest.mark.parametrize(
    "payload", [{}, {"authorization": "Bearer not-a-token"}, {"authorization": "Basic abc"}]
)
async def test_bad_credentials_close_with_4403(engine_server: LiveServer, payload: Any) -> None:
    async with WS(engine_server.url) as ws:
        await ws.send({"type": "connection_init", "payload": payload})
        code, reason = await ws.closed()
    assert (code, reason) == (4403, "Forbidden")


async def test_another_users_execution_is_forbidden(engine_server: LiveServer, gql: GQL) -> None:
    owner = gql.member("owner@example.com")
    chain(gql, owner, "private", n=1)
    execution_id = start(gql, owner, "private")
    snoop = gql.member("snoop@example.com")
    async with WS(engine_server.url) as ws:
        await ws.init(snoop)
        await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
        message = await ws.recv()
    assert message["id"] == "1"
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0].get("extensions", {}).get("code") == "FORBIDDEN", message


async def test_init_timeout_pings_and_subscription_cap(make_server: Any, gql: GQL) -> None:
    server = make_server(
        ws_init_timeout_seconds=0.5, ws_keepalive_seconds=0.2, ws_max_subscriptions=2
    )
    async with WS(server.url) as ws:
        code, reason = await ws.closed()
    assert code == 4408 and "timeout" in (reason or "").lower()

    token = server.gql.member("capped@example.com")
    async with WS(server.url) as ws:
        await ws.init(token)
        await asyncio.sleep(0.6)
        for op in ("a", "b", "c"):  # a and b stay open: nothing is notified
            await ws.subscribe(op, "subscription { notificationReceived { id } }", {})
        refused = await ws.recv()
        assert ws.pings >= 2  # the server kept the idle connection alive
    assert (refused["id"], refused["type"]) == ("c", "error")
    assert refused["payload"][0]["message"] == "Subscription limit reached"


async def test_two_server_processes_on_one_redis_both_deliver(stack: Any, tmp_path: Any) -> None:
    """Subscribe on process A; start the run through process B."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from cognitionos.embedded import free_port
    from tests.conftest import TEST_SECRET

    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    env.update(
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis.url,
        SECRET_KEY=TEST_SECRET,
        COGNITIONOS_ENV="test",
        COGNITIONOS_PYTHON_STEPS_ENABLED="true",
    )
    procs, urls = [], []
    for name, in_process in (("a", "false"), ("b", "true")):
        port = free_port()
        with (tmp_path / f"{name}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cognitionos", "serve", "--port", str(port)],
                    env={**env, "COGNITIONOS_WORKER_IN_PROCESS": in_process},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{url} never became ready"
                await asyncio.sleep(0.2)
        a, b = GQL(urls[0]), GQL(urls[1])
        token = b.member("replicas@example.com")
        chain(b, token, "across", n=3, sleep=0.2)
        async with WS(urls[0]) as ws:
            await ws.init(token)
            execution_id = start(b, token, "across")
            await ws.subscribe("1", EXECUTION_UPDATED, {"id": execution_id})
            events = seen(await ws.collect("1"))
        assert events == history(a, token, execution_id)
        assert events[-1][1] == "EXECUTION_SUCCEEDED"
        a.client.close()
        b.client.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


async def test_identical_subscriptions_share_one_stream_and_late_joiners_miss_nothing(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("wall@example.com")
    chain(gql, token, "shared", n=4, sleep=0.2)
    multiplexer = engine_server.app.state.graphql_ws.multiplexer
    execution_id = start(gql, token, "shared")
    async with WS(engine_server.url) as early, WS(engine_server.url) as late:
        await early.init(token)
        await late.init(token)
        await early.subscribe("e", EXECUTION_UPDATED, {"id": execution_id})
        head = await early.collect("e", limit=3)
        await late.subscribe("l", EXECUTION_UPDATED, {"id": execution_id})  # joins mid-run
        await asyncio.sleep(0.1)
        assert multiplexer.stream_count == 1  # one execution serves both sockets
        everything_late = seen(await late.collect("l"))
        everything_early = seen(head + await early.collect("e"))
    expected = history(gql, token, execution_id)
    assert everything_early == expected
    assert everything_late == expected
    assert multiplexer.stream_count == 0  # the shared stream ends with its last listener


async def test_feeds_deliver_what_producers_publish_to_the_right_user(
    engine_server: LiveServer, gql: GQL, stack: Any
) -> None:
    import json as _json

    from redis.asyncio import Redis

    from cognitionos.subscriptions.channels import agents_channel, notifications_channel

    token = gql.member("feeds@example.com")
    other = gql.member("feeds-other@example.com")
    me = gql.ok("{ me { id } }", token=token)["me"]["id"]
    redis = Redis.from_url(stack.redis.url)
    try:
        async with WS(engine_server.url) as mine, WS(engine_server.url) as theirs:
            await mine.init(token)
            await theirs.init(other)
            await mine.subscribe("n", "subscription { notificationReceived { id subject body "
                                 "priority } }", {})  # fmt: skip
            await theirs.subscribe("n", "subscription { notificationReceived { id } }", {})
            await mine.subscribe("a", "subscription { agentStatusChanged { name status "
                                 "currentLoad } }", {})  # fmt: skip
            await asyncio.sleep(0.3)  # subscriptions registered
            await redis.publish(
                notifications_channel(me),
                _json.dumps({"id": "n1", "subject": "Hi", "body": "Run done", "priority": "HIGH"}),
            )
            await redis.publish(
                agents_channel(),
                _json.dumps({"name": "planner", "status": "BUSY", "currentLoad": 1}),
            )
            got = {m["id"]: m["payload"]["data"] for m in [await mine.recv() for _ in range(2)]}
            assert got["n"]["notificationReceived"] == {
                "id": "n1",
                "subject": "Hi",
                "body": "Run done",
                "priority": "HIGH",
            }
            assert got["a"]["agentStatusChanged"] == {
                "name": "planner",
                "status": "BUSY",
                "currentLoad": 1,
            }
            with pytest.raises(TimeoutError):  # not someone else's notification
                await theirs.recv(wait=0.5)
    finally:
        await redis.aclose()


AS_OF = """subscription($id: ID!, $after: Int) { executionUpdated(id: $id, after: $after) {
    position version type data
    execution { id status error outputs costUsd tokens inputs createdAt startedAt finishedAt }
    step { id executionId stepKey kind status attempt maxAttempts agent output error costUsd
           tokens startedAt finishedAt nextAttemptAt } } }"""
APPROVE = """mutation($id: ID!) { approveStep(stepExecutionId: $id, approved: true) { status } }"""
HISTORY_DATA = "query($id: ID!) { events(streamId: $id) { position data } }"


def gated(gql: GQL, token: str, key: str) -> None:
    """An approval gate, then a slow step with a follower, beside a step that fails twice."""
    steps = [
        {"key": "gate", "kind": "APPROVAL", "config": {"prompt": "Go?"}},
        {
            "key": "slow",
            "kind": "PYTHON",
            "dependsOn": ["gate"],
            "config": {"code": "import time\ntime.sleep(0.2)\nresult = {'n': 7}"},
        },
        {
            "key": "next",
            "kind": "TRANSFORM",
            "dependsOn": ["slow"],
            "config": {"template": "{{ steps.slow.output.n }}"},
        },
        {
            "key": "flaky",
            "kind": "PYTHON",
            "dependsOn": ["gate"],
            "config": {"code": "raise ValueError('not today')"},
            "retry": {"maxAttempts": 2, "initialDelaySeconds": 0.1},
        },
    ]
    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": key, "version": "1.0.0", "name": key, "steps": steps}},
        token=token,
    )


async def test_each_event_shows_the_state_at_that_event_live_and_replayed_alike(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("asof@example.com")
    gated(gql, token, "asof")
    execution_id = start(gql, token, "asof")
    waiting = gql.wait_execution(execution_id, token)
    gate = next(s for s in waiting["steps"] if s["stepKey"] == "gate")
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("live", AS_OF, {"id": execution_id})
        # Created, gate queued, started, gate waiting, execution waiting: all before us.
        live = await ws.collect("live", limit=5)
        gql.ok(APPROVE, {"id": gate["id"]}, token=token)  # everything after this is live
        live += await ws.collect("live")
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("replay", AS_OF, {"id": execution_id, "after": 0})
        replay = await ws.collect("replay")

    # Payload by payload, the same text.
    assert [json.dumps(p) for p in replay] == [json.dumps(p) for p in live]
    events = [p["data"]["executionUpdated"] for p in replay]
    assert [(e["position"], e["type"]) for e in events] == history(gql, token, execution_id)
    stored = gql.ok(HISTORY_DATA, {"id": execution_id}, token=token)["events"]
    assert [e["data"] for e in events] == [e["data"] for e in stored]

    def at(kind: str, key: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in events
            if e["type"] == kind and (key is None or (e["step"] or {}).get("stepKey") == key)
        ]

    (created,) = at("EXECUTION_CREATED")
    assert created["execution"]["status"] == "PENDING"
    assert created["execution"]["startedAt"] is None and created["execution"]["finishedAt"] is None
    assert created["step"] is None
    (queued,) = at("STEP_QUEUED", "gate")
    assert (queued["step"]["status"], queued["step"]["attempt"]) == ("QUEUED", 0)
    assert at("EXECUTION_WAITING")[0]["execution"]["status"] == "WAITING"
    (started,) = at("STEP_STARTED", "slow")
    assert started["step"]["status"] == "RUNNING" and started["step"]["attempt"] == 1
    assert started["step"]["startedAt"] is not None and started["step"]["finishedAt"] is None
    assert started["step"]["output"] is None and started["execution"]["status"] == "RUNNING"
    (succeeded,) = at("STEP_SUCCEEDED", "slow")
    assert succeeded["step"]["status"] == "SUCCEEDED" and succeeded["step"]["output"] == {"n": 7}
    assert succeeded["step"]["finishedAt"] is not None
    assert [e["step"]["attempt"] for e in at("STEP_STARTED", "flaky")] == [1, 2]
    (retrying,) = at("STEP_RETRYING", "flaky")
    assert retrying["step"]["status"] == "RETRYING" and retrying["step"]["attempt"] == 1
    assert "not today" in retrying["step"]["error"] and retrying["step"]["nextAttemptAt"]
    (failed,) = at("STEP_FAILED", "flaky")
    assert (failed["step"]["status"], failed["step"]["attempt"]) == ("FAILED", 2)
    last = events[-1]
    assert last["type"] == "EXECUTION_FAILED" and last["execution"]["status"] == "FAILED"
    assert "flaky" in last["execution"]["error"] and last["execution"]["finishedAt"]
    # Every step event's step agrees with what the event recorded.
    for event in events:
        if event["step"] is not None:
            assert event["step"]["status"] == event["data"]["status"], event


CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { status } }"
RETRY = "mutation($id: ID!) { retryExecution(id: $id) { status } }"


def run_then(gql: GQL, token: str, key: str, first: dict[str, Any]) -> str:
    """A run of ``first`` followed by a step that needs it; returns the execution's id."""
    after = {"key": "after", "kind": "TRANSFORM", "dependsOn": [first["key"]]}
    steps = [first, {**after, "config": {"template": "ok"}}]
    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": key, "version": "1.0.0", "name": key, "steps": steps}},
        token=token,
    )
    return start(gql, token, key)


async def test_a_replay_goes_past_the_end_of_a_run_retried_since(
    engine_server: LiveServer, gql: GQL
) -> None:
    """A tab that reconnects from before a cancel must not be left at CANCELLED when the
    run was retried since: it gets everything after, stays open while the run lives, and
    completes when it ends; a subscriber to a run already over completes at once."""
    token = gql.member("retried@example.com")
    execution_id = run_then(
        gql, token, "retried", {"key": "ask", "kind": "APPROVAL", "config": {"prompt": "Go?"}}
    )
    assert gql.wait_execution(execution_id, token)["status"] == "WAITING"
    before_cancel = history(gql, token, execution_id)[-1][0]
    assert gql.ok(CANCEL, {"id": execution_id}, token=token)["cancelExecution"]["status"] == (
        "CANCELLED"
    )
    gql.ok(RETRY, {"id": execution_id}, token=token)
    waiting = gql.wait_step(execution_id, token, "ask", "WAITING_APPROVAL")
    for _ in range(100):  # the execution's own WAITING follows the step's in its transaction
        if history(gql, token, execution_id)[-1][1] == "EXECUTION_WAITING":
            break
        await asyncio.sleep(0.05)
    since = [e for e in history(gql, token, execution_id) if e[0] > before_cancel]
    assert [t for _, t in since if t.startswith("EXECUTION_")] == [
        "EXECUTION_CANCELLED",
        "EXECUTION_RETRIED",
        "EXECUTION_WAITING",
    ]
    ask = next(s for s in waiting["steps"] if s["stepKey"] == "ask")
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("s", EXECUTION_UPDATED, {"id": execution_id, "after": before_cancel})
        replayed = await ws.collect("s", limit=len(since))
        assert seen(replayed) == since  # past EXECUTION_CANCELLED, still open
        gql.ok(APPROVE, {"id": ask["id"]}, token=token)
        rest = await ws.collect("s")  # live, until the run ends
    assert seen(rest)[-1][1] == "EXECUTION_SUCCEEDED"
    assert seen(replayed + rest) == [
        e for e in history(gql, token, execution_id) if e[0] > before_cancel
    ]
    last = history(gql, token, execution_id)[-1][0]
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("over", EXECUTION_UPDATED, {"id": execution_id, "after": last})
        assert await asyncio.wait_for(ws.collect("over"), 10) == []


async def test_a_cancelled_run_whose_step_stopped_after_it_still_completes(
    engine_server: LiveServer, gql: GQL
) -> None:
    """A cancel leaves a running step to stop on its own: its STEP_CANCELLED comes after
    EXECUTION_CANCELLED. The run is over all the same: every replay of it completes."""
    token = gql.member("stopping@example.com")
    execution_id = run_then(
        gql,
        token,
        "stopping",
        {"key": "sleep", "kind": "PYTHON", "config": {"code": "import time\ntime.sleep(30)"}},
    )
    gql.wait_step(execution_id, token, "sleep", "RUNNING")
    gql.ok(CANCEL, {"id": execution_id}, token=token)
    gql.wait_step(execution_id, token, "sleep", "CANCELLED")
    events = history(gql, token, execution_id)
    cancelled = next(p for p, t in events if t == "EXECUTION_CANCELLED")
    assert events[-1][1] == "STEP_CANCELLED" and events[-1][0] > cancelled
    for after in (None, cancelled, events[-1][0]):
        async with WS(engine_server.url) as ws:
            await ws.init(token)
            await ws.subscribe("s", EXECUTION_UPDATED, {"id": execution_id, "after": after})
            got = await asyncio.wait_for(ws.collect("s"), 10)
        assert seen(got) == [e for e in events if after is None or e[0] > after]


async def test_a_tab_opened_later_gets_only_what_happens_after_it_opened(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("tabs@example.com")
    me = gql.ok("{ me { id } }", token=token)["me"]["id"]
    feed = "subscription { notificationReceived { id subject } }"
    multiplexer = engine_server.app.state.graphql_ws.multiplexer

    def send(subject: str) -> str:
        sent = gql.ok(
            "mutation($i: SendNotificationInput!) { sendNotification(input: $i) { id } }",
            {"i": {"userId": me, "channel": "IN_APP", "subject": subject, "body": "."}},
            token=token,
        )
        return str(sent["sendNotification"]["id"])

    def ids(payloads: list[dict[str, Any]]) -> list[str]:
        return [p["data"]["notificationReceived"]["id"] for p in payloads]

    async with WS(engine_server.url) as first, WS(engine_server.url) as second:
        await first.init(token)
        await second.init(token)
        await first.subscribe("n", feed, {})
        await asyncio.sleep(0.3)  # subscription registered
        earlier = [send(f"n{i}") for i in (1, 2, 3)]
        assert sorted(ids(await first.collect("n", limit=3))) == sorted(earlier)
        await second.subscribe("n", feed, {})  # the same feed: it shares the first tab's
        await asyncio.sleep(0.3)
        assert multiplexer.stream_count == 1
        later = [send("n4"), send("n5")]
        # The second tab's first message is the fourth: the first three are not replayed.
        assert sorted(ids(await second.collect("n", limit=2))) == sorted(later)
        assert sorted(ids(await first.collect("n", limit=2))) == sorted(later)


async def test_sharing_a_stream_never_changes_what_a_cursor_replays(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member("cursors@example.com")
    chain(gql, token, "cursors", n=4, sleep=0.2)
    multiplexer = engine_server.app.state.graphql_ws.multiplexer
    execution_id = start(gql, token, "cursors")
    async with (
        WS(engine_server.url) as whole,
        WS(engine_server.url) as resumed,
        WS(engine_server.url) as twin,
    ):
        for ws in (whole, resumed, twin):
            await ws.init(token)
        await whole.subscribe("w", EXECUTION_UPDATED, {"id": execution_id})
        head = await whole.collect("w", limit=4)
        cursor = seen(head)[1][0]
        await resumed.subscribe("r", EXECUTION_UPDATED, {"id": execution_id, "after": cursor})
        await twin.subscribe("t", EXECUTION_UPDATED, {"id": execution_id})  # joins "w"
        await asyncio.sleep(0.1)
        assert multiplexer.stream_count == 2  # "w" and "t" share; "r" asked for other events
        from_cursor = seen(await resumed.collect("r"))
        from_twin = seen(await twin.collect("t"))
        from_whole = seen(head + await whole.collect("w"))
    expected = history(gql, token, execution_id)
    assert from_whole == expected and from_twin == expected
    assert from_cursor == [e for e in expected if e[0] > cursor]


async def test_events_stored_before_they_carried_their_state_fall_back_to_the_rows(
    engine_server: LiveServer, gql: GQL, stack: Any
) -> None:
    import asyncpg

    token = gql.member("old@example.com")
    chain(gql, token, "old", n=1)
    execution_id = start(gql, token, "old")
    done = gql.wait_execution(execution_id, token)
    conn = await asyncpg.connect(stack.dsn)
    try:  # as the log was written before events stored the state
        await conn.execute(
            "UPDATE events SET data = data - 'execution' - 'step' WHERE stream_id = $1",
            uuid.UUID(execution_id),
        )
    finally:
        await conn.close()
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("1", AS_OF, {"id": execution_id, "after": 0})
        events = [p["data"]["executionUpdated"] for p in await ws.collect("1")]
    by_type = {e["type"]: e for e in events}
    assert "step" not in by_type["STEP_STARTED"]["data"]
    # What the old events did record (statuses, attempt) still shows as of the event...
    assert by_type["EXECUTION_CREATED"]["execution"]["status"] == "PENDING"
    started = by_type["STEP_STARTED"]["step"]
    assert (started["stepKey"], started["status"], started["attempt"]) == ("s0", "RUNNING", 1)
    # ...the rest is the step as it is now.
    assert started["output"] == done["steps"][0]["output"]
    assert by_type["EXECUTION_SUCCEEDED"]["execution"]["status"] == "SUCCEEDED"
