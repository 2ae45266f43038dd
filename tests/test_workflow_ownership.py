"""A workflow key belongs to the creator of its first version; work run later on a user's
behalf (schedules, step claims) acts as that user as they are now."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.support import CREATE_WORKFLOW, EXECUTE, GQL, LiveServer
from tests.test_agents_api import admin
from tests.test_workflows import create, run, transform, workflow_input

SCHEDULE = """mutation($input: ScheduleInput!) { createSchedule(input: $input) {
    id workflowVersion } }"""
EVENTS = "query($id: ID!) { events(streamId: $id) { type data } }"


def every(key: str, seconds: int, **extra: Any) -> dict[str, Any]:
    """``createSchedule``'s variables: an INTERVAL schedule of ``key``."""
    return {"input": {"workflowKey": key, "kind": "INTERVAL", "expression": str(seconds), **extra}}


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def test_only_the_owner_or_an_admin_adds_versions(gql: GQL, db: Any) -> None:
    alice = gql.member("alice@example.com")
    mallory = gql.member("mallory@example.com")
    create(gql, alice, "payroll", [transform("a", "alice's")])

    mallorys = workflow_input("payroll", [transform("a", "mallory's")], version="9.0.0")
    hijack = gql.error(CREATE_WORKFLOW, mallorys, token=mallory)
    assert hijack["extensions"]["code"] == "FORBIDDEN"
    assert hijack["extensions"]["field"] == "key"
    # Alice's unpinned run still runs Alice's steps.
    assert run(gql, alice, "payroll")["outputs"] == {"a": "alice's"}

    create(gql, alice, "payroll", [transform("a", "alice v2")], version="2.0.0")
    boss = admin(gql, db)
    create(gql, boss, "payroll", [transform("a", "admin v3")], version="3.0.0")
    latest = gql.ok('{ workflow(key: "payroll") { version } }', token=mallory)["workflow"]
    assert latest["version"] == "3.0.0"
    # Mallory may still run it (workflows are shared), as herself.
    assert run(gql, mallory, "payroll")["outputs"] == {"a": "admin v3"}


def test_two_members_racing_for_a_new_key_one_wins(gql: GQL) -> None:
    tokens = [gql.member(f"racer{i}@example.com") for i in range(4)]
    results: list[Any] = [None] * len(tokens)

    def attempt(i: int) -> None:
        body = workflow_input("contested", [transform("a", str(i))], version=f"1.0.{i}")
        results[i] = gql.post(CREATE_WORKFLOW, body, token=tokens[i]).json()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if not r.get("errors")]
    losers = [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]
    assert len(winners) == 1, results
    assert losers == ["FORBIDDEN"] * (len(tokens) - 1)


def test_a_schedule_pins_the_version_unless_its_owner_follows_their_own_key(gql: GQL) -> None:
    alice = gql.member("alice@example.com")
    bob = gql.member("bob@example.com")
    create(gql, alice, "report", [transform("a", "v1")])

    pinned = gql.ok(
        SCHEDULE,
        every("report", 3600),
        token=bob,
    )["createSchedule"]
    assert pinned["workflowVersion"] == "1.0.0"

    refused = gql.error(
        SCHEDULE,
        every("report", 3600, followLatest=True),
        token=bob,
    )
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert refused["extensions"]["field"] == "followLatest"

    follows = gql.ok(
        SCHEDULE,
        every("report", 3600, followLatest=True),
        token=alice,
    )["createSchedule"]
    assert follows["workflowVersion"] is None


def test_bobs_pinned_schedule_keeps_running_the_version_he_chose(gql: GQL) -> None:
    alice = gql.member("alice@example.com")
    bob = gql.member("bob@example.com")
    create(gql, alice, "digest", [transform("a", "v1")])
    gql.ok(
        SCHEDULE,
        every("digest", 1),
        token=bob,
    )
    create(gql, alice, "digest", [transform("a", "v2")], version="2.0.0")
    execution = _first_execution(gql, bob, "digest")
    done = gql.wait_execution(execution, bob)
    assert done["workflow"]["version"] == "1.0.0"
    assert done["outputs"] == {"a": "v1"}


def _first_execution(gql: GQL, token: str, key: str) -> str:
    deadline = time.monotonic() + 20
    query = "query($k: String!) { executions(filter: {workflowKey: $k}) { edges { node { id } } } }"
    while time.monotonic() < deadline:
        edges = gql.ok(query, {"k": key}, token=token)["executions"]["edges"]
        if edges:
            return str(edges[-1]["node"]["id"])
        time.sleep(0.1)
    raise AssertionError("the schedule never fired")


def _wait_event(gql: GQL, token: str, stream: str, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = gql.ok(EVENTS, {"id": stream}, token=token)["events"]
        found = [e for e in events if e["type"] == kind]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event on {stream}")


@pytest.mark.parametrize(
    ("change", "reason"),
    [("status = 'SUSPENDED'", "SUSPENDED"), ("role = 'VIEWER'", "VIEWER")],
)
def test_a_schedule_does_not_fire_for_a_suspended_or_demoted_owner(
    gql: GQL, db: Any, change: str, reason: str
) -> None:
    owner = gql.member("owner@example.com")
    create(gql, owner, "nightly", [transform("a", "ran")])
    schedule = gql.ok(
        SCHEDULE,
        every("nightly", 1),
        token=owner,
    )["createSchedule"]
    fired = _wait_event(gql, owner, schedule["id"], "SCHEDULE_FIRED")
    assert fired["data"]["executionId"]

    db(f"UPDATE users SET {change} WHERE email = 'owner@example.com'")  # noqa: S608
    boss = admin(gql, db)
    refusal = _wait_event(gql, boss, schedule["id"], "SCHEDULE_FIRE_REFUSED")
    assert reason in refusal["data"]["error"]
    runs = db(
        "SELECT count(*) AS n FROM workflow_executions e JOIN users u ON u.id = e.created_by "
        "WHERE u.email = 'owner@example.com' AND e.created_at > now() - interval '1 second'"
    )
    assert runs[0]["n"] == 0
    # The refused owner's data is no one else's business.
    stranger = gql.member("stranger@example.com")
    hidden = gql.error(EVENTS, {"id": schedule["id"]}, token=stranger)
    assert hidden["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")


def test_a_step_claimed_after_its_owner_is_suspended_fails_with_the_reason(
    gql: GQL, db: Any
) -> None:
    owner = gql.member("owner@example.com")
    create(
        gql,
        owner,
        "gated",
        [
            {"key": "gate", "kind": "APPROVAL", "config": {"prompt": "go?"}},
            transform("after", "should not run", "gate"),
        ],
    )
    started = gql.ok(EXECUTE, {"input": {"workflowKey": "gated"}}, token=owner)
    execution_id = started["executeWorkflow"]["id"]
    waiting = gql.wait_step(execution_id, owner, "gate", "WAITING_APPROVAL")
    gate = next(s for s in waiting["steps"] if s["stepKey"] == "gate")

    db("UPDATE users SET status = 'SUSPENDED' WHERE email = 'owner@example.com'")
    boss = admin(gql, db)
    gql.ok(
        "mutation($id: ID!) { approveStep(stepExecutionId: $id, approved: true) { status } }",
        {"id": gate["id"]},
        token=boss,
    )
    done = gql.wait_execution(execution_id, boss)
    after = next(s for s in done["steps"] if s["stepKey"] == "after")
    assert done["status"] == "FAILED"
    assert after["status"] == "FAILED"
    assert after["output"] is None
    assert "SUSPENDED" in after["error"]
    events = gql.ok(EVENTS, {"id": execution_id}, token=boss)["events"]
    failed = [e for e in events if e["type"] == "STEP_FAILED"]
    assert failed and "SUSPENDED" in failed[0]["data"]["error"]
