"""Suggestions: every name, key, tag, capability, execution key and subject is a completion
of its own, seen only by who may see its row, and current as soon as the row is written."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import Stack
from tests.search_support import admin, workflow
from tests.support import EXECUTE, GQL, LiveServer

SUGGEST = """query($p: String!, $types: [SearchType!], $limit: Int) {
    suggest(prefix: $p, types: $types, limit: $limit) { text type id field } }"""
SEND = "mutation($i: SendNotificationInput!) { sendNotification(input: $i) { id } }"
REGISTER = "mutation($i: AgentInput!) { registerAgent(input: $i) { id } }"
UPDATE = "mutation($id: ID!, $i: UpdateAgentInput!) { updateAgent(id: $id, input: $i) { id } }"
ME = "{ me { id } }"


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def suggest(gql: GQL, token: str, prefix: str, **variables: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = gql.ok(SUGGEST, {"p": prefix, **variables}, token=token)[
        "suggest"
    ]
    return found


def texts(gql: GQL, token: str, prefix: str, **variables: Any) -> list[tuple[str, str, str]]:
    return [(s["type"], s["field"], s["text"]) for s in suggest(gql, token, prefix, **variables)]


def test_tags_capabilities_keys_and_your_executions_are_completions_of_their_own(
    gql: GQL, db: Any
) -> None:
    token = gql.member()
    older = workflow(gql, token, "ledger-close", "Month end", tags=["ledgering"])
    newer = workflow(gql, token, "ledger-audit", "Audit trail", tags=["ledgering", "audit"])
    # A tag is offered once, naming the newest workflow that carries it.
    assert suggest(gql, token, "ledgeri") == [
        {"text": "ledgering", "type": "WORKFLOW", "id": newer, "field": "tag"}
    ]
    assert texts(gql, token, "ledger") == [
        ("WORKFLOW", "tag", "ledgering"),
        ("WORKFLOW", "key", "ledger-audit"),
        ("WORKFLOW", "key", "ledger-close"),
    ]
    # Any word of a name, key or tag, the words typed in order, the last one cut.
    assert texts(gql, token, "end") == [("WORKFLOW", "name", "Month end")]
    assert texts(gql, token, "ledger clo") == [("WORKFLOW", "key", "ledger-close")]
    assert texts(gql, token, "close ledger") == []
    assert suggest(gql, token, "month e")[0]["id"] == older

    # Capabilities, beside the agent's name.
    root = admin(gql, db)
    spec = {"name": "cartographer", "role": "EXECUTOR", "capabilities": ["cartography"]}
    agent = gql.ok(REGISTER, {"i": spec}, token=root)["registerAgent"]["id"]
    assert suggest(gql, token, "carto", types=["AGENT"]) == [
        {"text": "cartography", "type": "AGENT", "id": agent, "field": "capability"},
        {"text": "cartographer", "type": "AGENT", "id": agent, "field": "name"},
    ]

    # An execution's workflow key, for whoever ran it.
    started = gql.ok(EXECUTE, {"input": {"workflowKey": "ledger-close"}}, token=token)
    run = started["executeWorkflow"]["id"]
    assert suggest(gql, token, "ledger cl", types=["EXECUTION"]) == [
        {"text": "ledger-close", "type": "EXECUTION", "id": run, "field": "key"}
    ]
    assert suggest(gql, gql.member("other@example.com"), "ledger cl", types=["EXECUTION"]) == []
    assert [s["id"] for s in suggest(gql, root, "ledger cl", types=["EXECUTION"])] == [run]
    assert suggest(gql, token, "ledger", types=["MEMORY"]) == []


def test_a_member_never_gets_another_members_subjects_or_runs(gql: GQL, db: Any) -> None:
    alice = gql.member("alice@example.com")
    bob = gql.member("bob@example.com")
    alice_id = gql.ok(ME, token=alice)["me"]["id"]
    bob_id = gql.ok(ME, token=bob)["me"]["id"]
    workflow(gql, alice, "okapi-sync", "Okapi sync")
    run = gql.ok(EXECUTE, {"input": {"workflowKey": "okapi-sync"}}, token=alice)
    gql.wait_execution(run["executeWorkflow"]["id"], alice)
    gql.ok(
        SEND,
        {"i": {"userId": alice_id, "subject": "Okapi vault code 4417", "body": "x"}},
        token=alice,
    )
    gql.ok(SEND, {"i": {"userId": bob_id, "subject": "Okapi lunch", "body": "x"}}, token=bob)

    mine = texts(gql, alice, "okapi")
    assert ("NOTIFICATION", "subject", "Okapi vault code 4417") in mine
    assert ("EXECUTION", "key", "okapi-sync") in mine
    for prefix in ("okapi", "okapi v", "vault", "code 44", "4417", "o"):
        for types in (None, ["NOTIFICATION", "EXECUTION"]):
            raw = gql.post(SUGGEST, {"p": prefix, "types": types, "limit": 20}, token=bob).text
            assert "vault" not in raw.lower() and "4417" not in raw, (prefix, raw)
            assert '"EXECUTION"' not in raw, (prefix, raw)
    # "Okapi sync" and "okapi-sync" say the same: offered once.
    assert texts(gql, bob, "okapi") == [
        ("WORKFLOW", "name", "Okapi sync"),
        ("NOTIFICATION", "subject", "Okapi lunch"),
    ]
    # An admin gets every member's, each subject once.
    root = admin(gql, db)
    subjects = [s["text"] for s in suggest(gql, root, "okapi", types=["NOTIFICATION"])]
    # (Words further in come after: Alice was told her run succeeded.)
    assert subjects == ["Okapi lunch", "Okapi vault code 4417", "Workflow okapi-sync succeeded"]

    # A deleted member's runs stay for admins only.
    db("DELETE FROM users WHERE id = $1", uuid.UUID(alice_id))
    assert [s["type"] for s in suggest(gql, root, "okapi", types=["EXECUTION"])] == ["EXECUTION"]
    assert texts(gql, bob, "okapi", types=["EXECUTION", "NOTIFICATION"]) == [
        ("NOTIFICATION", "subject", "Okapi lunch")
    ]


class _Rollback(Exception):
    pass


async def _in_one_transaction(dsn: str, owner: uuid.UUID) -> tuple[list[str], list[str]]:
    conn = await asyncpg.connect(dsn)
    labels = "SELECT label FROM search_suggestions WHERE term LIKE 'zanzibar%' ORDER BY label"
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO notifications (id, user_id, channel, subject, body, data, priority,"
                " status, attempts) VALUES ($1, $2, 'IN_APP', 'Zanzibar spice run', '', '{}',"
                " 'NORMAL', 'DELIVERED', 0)",
                uuid.uuid4(),
                owner,
            )
            inside = [r["label"] for r in await conn.fetch(labels)]
            raise _Rollback
    except _Rollback:
        pass
    try:
        after = [r["label"] for r in await conn.fetch(labels)]
    finally:
        await conn.close()
    return inside, after


def test_completions_follow_every_write_in_its_own_transaction(
    gql: GQL, db: Any, stack: Stack
) -> None:
    token = gql.member()
    me = uuid.UUID(gql.ok(ME, token=token)["me"]["id"])
    # Written with the row, in its transaction: seen inside it, gone with its rollback.
    inside, after = asyncio.run(_in_one_transaction(stack.dsn, me))
    assert (inside, after) == (["Zanzibar spice run"], [])

    # Two rows offer one tag; the newest is named, and when it goes the other one is.
    first = workflow(gql, token, "kiln-a", "Kiln one", tags=["pottery"])
    second = workflow(gql, token, "kiln-b", "Kiln two", tags=["pottery"])
    assert [s["id"] for s in suggest(gql, token, "potter")] == [second]
    db("DELETE FROM workflows WHERE id = $1", uuid.UUID(second))
    assert [s["id"] for s in suggest(gql, token, "potter")] == [first]
    assert texts(gql, token, "kiln") == [
        ("WORKFLOW", "key", "kiln-a"),
        ("WORKFLOW", "name", "Kiln one"),
    ]
    db("DELETE FROM workflows WHERE id = $1", uuid.UUID(first))
    assert suggest(gql, token, "potter") == [] and suggest(gql, token, "kiln") == []

    # A workflow that goes takes its runs' completions; its other versions' runs stay.
    v1 = workflow(gql, token, "glaze-run", "Glaze run")
    workflow(gql, token, "glaze-run", "Glaze run", version="2.0.0")
    runs = []
    for version in ("1.0.0", "2.0.0"):
        started = gql.ok(
            EXECUTE, {"input": {"workflowKey": "glaze-run", "version": version}}, token=token
        )
        runs.append(started["executeWorkflow"]["id"])
        gql.wait_execution(runs[-1], token)
    old_run, new_run = runs
    assert [s["id"] for s in suggest(gql, token, "glaze", types=["EXECUTION"])] == [new_run]
    db("DELETE FROM workflow_executions WHERE id = $1", uuid.UUID(new_run))
    assert [s["id"] for s in suggest(gql, token, "glaze", types=["EXECUTION"])] == [old_run]
    db("DELETE FROM workflows WHERE id = $1", uuid.UUID(v1))
    assert suggest(gql, token, "glaze", types=["EXECUTION"]) == []
    left = "SELECT count(*) AS n FROM search_suggestions WHERE type = 'EXECUTION'"
    assert db(left)[0]["n"] == 0

    # A renamed agent: the old name is no longer offered, the new one is.
    root = admin(gql, db)
    spec = {"name": "glassblower", "role": "EXECUTOR", "capabilities": ["glasswork"]}
    agent = gql.ok(REGISTER, {"i": spec}, token=root)["registerAgent"]["id"]
    renamed = {"name": "furnace", "capabilities": ["smelting"]}
    gql.ok(UPDATE, {"id": agent, "i": renamed}, token=root)
    assert suggest(gql, token, "glass") == []
    assert texts(gql, token, "furn") == [("AGENT", "name", "furnace")]
    assert texts(gql, token, "smelt") == [("AGENT", "capability", "smelting")]
    # Status and load change on every step an agent takes: no completion is rewritten.
    before = db("SELECT xmin::text AS x FROM search_suggestions WHERE label = 'furnace'")
    busy = "UPDATE agents SET current_load = current_load + 1, status = 'BUSY' WHERE id = $1"
    db(busy, uuid.UUID(agent))
    assert db("SELECT xmin::text AS x FROM search_suggestions WHERE label = 'furnace'") == before
