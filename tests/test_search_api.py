"""Search over GraphQL: rights in SQL, ranking, typos, facets, pages, suggestions, input."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import time
import uuid
from typing import Any

import asyncpg
import pytest

from cognitionos.db.rows import numbered
from cognitionos.services.search._sql import BOTH, Shard, match_statement
from cognitionos.services.search._types import SearchFilter
from cognitionos.services.search._types import SearchType as T
from tests.conftest import Stack
from tests.search_support import admin, workflow
from tests.support import EXECUTE, GQL, LiveServer

SEARCH = """query($q: String!, $types: [SearchType!], $f: SearchFilter, $first: Int,
    $after: String) {
    search(query: $q, types: $types, filter: $f, first: $first, after: $after) {
        total didYouMean
        hits { type id title snippet score highlights { field text } }
        facets { field values { value count } }
        pageInfo { hasNextPage endCursor } } }"""
SUGGEST = """query($p: String!, $types: [SearchType!], $limit: Int) {
    suggest(prefix: $p, types: $types, limit: $limit) { text type id } }"""
STORE = "mutation($i: StoreMemoryInput!) { storeMemory(input: $i) { id } }"
SEND = "mutation($i: SendNotificationInput!) { sendNotification(input: $i) { id } }"
ME = "{ me { id } }"


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def search(gql: GQL, token: str, query: str, **variables: Any) -> Any:
    return gql.ok(SEARCH, {"q": query, **variables}, token=token)["search"]


def facet(result: Any, field: str) -> dict[str, int]:
    found = next(f for f in result["facets"] if f["field"] == field)
    return {v["value"]: v["count"] for v in found["values"]}


def test_a_member_never_finds_another_members_execution_errors_or_memories(
    gql: GQL, db: Any
) -> None:
    alice = gql.member("alice@example.com")
    bob = gql.member("bob@example.com")
    boom = {
        "key": "boom",
        "kind": "PYTHON",
        "config": {"code": "raise ValueError('quokka vault unreachable')"},
    }
    workflow(gql, alice, "ledger-sync", "Ledger sync", steps=[boom])
    started = gql.ok(EXECUTE, {"input": {"workflowKey": "ledger-sync"}}, token=alice)
    failed = gql.wait_execution(started["executeWorkflow"]["id"], alice)
    assert failed["status"] == "FAILED" and "quokka" in failed["error"]
    gql.ok(STORE, {"i": {"content": "The locker code is zebrafinch forty"}}, token=alice)
    alice_id = gql.ok(ME, token=alice)["me"]["id"]
    gql.ok(SEND, {"i": {"userId": alice_id, "subject": "Quokka alert", "body": "x"}}, token=alice)

    # Alice finds her own, with the match marked.
    mine = search(gql, alice, "quokka")
    assert {h["type"] for h in mine["hits"]} == {"EXECUTION", "NOTIFICATION"}
    execution = next(h for h in mine["hits"] if h["type"] == "EXECUTION")
    assert execution["id"] == failed["id"] and "<mark>quokka</mark>" in execution["snippet"]
    # The failure notified her too, with the error in the body.
    assert facet(mine, "type") == {"EXECUTION": 1, "NOTIFICATION": 2}
    assert facet(mine, "status")["FAILED"] == 1
    assert search(gql, alice, "zebrafinch")["total"] == 1

    # Bob finds the shared workflow, but nothing of Alice's: no hit, no count, no correction.
    for query in ("quokka", "zebrafinch", "quokka vault", "locker code", "zebrafinh", "quoka"):
        raw = gql.post(SEARCH, {"q": query}, token=bob).text
        found = json.loads(raw)["data"]["search"]
        assert found["total"] == 0 and found["hits"] == [], (query, found)
        assert found["didYouMean"] is None, query
        assert all(f["values"] == [] for f in found["facets"]), query
        assert "quokka" not in raw.lower() and "zebrafinch" not in raw.lower()
    ledger = search(gql, bob, "ledger")
    assert [h["type"] for h in ledger["hits"]] == ["WORKFLOW"]
    assert facet(ledger, "type") == {"WORKFLOW": 1} and facet(ledger, "status") == {}
    failures = search(gql, bob, "failed", types=["EXECUTION"])
    assert failures["total"] == 0
    for prefix in ("zebra", "quok"):
        assert gql.ok(SUGGEST, {"p": prefix}, token=bob)["suggest"] == []

    # An admin sees everything.
    root = admin(gql, db)
    assert {h["type"] for h in search(gql, root, "quokka")["hits"]} == {
        "EXECUTION",
        "NOTIFICATION",
    }
    assert search(gql, root, "zebrafinch")["total"] == 1


def test_titles_outrank_tags_outrank_bodies_phrases_and_prefixes_win_then_the_newest(
    gql: GQL,
) -> None:
    token = gql.member()
    body = workflow(
        gql, token, "month-close", "Month close", description="invoice reconciliation totals"
    )
    tagged = workflow(gql, token, "ledger-export", "Ledger export", tags=["invoice"])
    title = workflow(gql, token, "invoice-check", "Invoice check")
    scattered = workflow(
        gql, token, "audit", "Reconciliation audit", description="every invoice is read"
    )
    phrase = workflow(gql, token, "recon", "Invoice reconciliation")

    invoice = [h["id"] for h in search(gql, token, "invoice")["hits"]]
    assert invoice.index(title) < invoice.index(tagged) < invoice.index(body)
    both = [h["id"] for h in search(gql, token, "invoice reconciliation")["hits"]]
    assert both[0] == phrase  # the exact title, as a phrase
    assert set(both) == {phrase, scattered, body}

    older = workflow(gql, token, "twin-one", "Twin pipeline")
    time.sleep(0.01)
    newer = workflow(gql, token, "twin-two", "Twin pipeline")
    hits = search(gql, token, "twin pipeline")["hits"]
    assert [h["id"] for h in hits] == [newer, older]
    assert hits[0]["score"] == hits[1]["score"]


def test_typos_are_corrected_and_offered_as_did_you_mean(gql: GQL) -> None:
    token = gql.member()
    wid = workflow(gql, token, "notes", "Summarize meeting notes", description="A workflow.")
    typo = search(gql, token, "sumarize meeting")
    assert typo["didYouMean"] == "summarize meeting"
    assert [h["id"] for h in typo["hits"]] == [wid] and typo["total"] == 1
    assert "<mark>Summarize</mark>" in typo["hits"][0]["highlights"][0]["text"]
    workfow = search(gql, token, "workfow", types=["WORKFLOW"])
    assert workfow["didYouMean"] == "workflow" and workfow["total"] == 1
    exact = search(gql, token, "summarize")
    assert exact["didYouMean"] is None and exact["total"] >= 1
    nothing = search(gql, token, "xqzvjk")
    assert nothing == {**nothing, "total": 0, "hits": [], "didYouMean": None}


def test_facets_count_the_whole_match_pages_follow_the_cursor_and_filters_narrow(
    gql: GQL,
) -> None:
    token = gql.member()
    ids = set()
    for i in range(7):
        tags = ["etl", "nightly"] if i % 2 else ["etl"]
        ids.add(workflow(gql, token, f"etl-{i}", f"Warehouse load {i}", tags=tags))

    first = search(gql, token, "warehouse", first=3)
    assert first["total"] == 7 and len(first["hits"]) == 3
    assert facet(first, "type") == {"WORKFLOW": 7}
    assert facet(first, "tag") == {"etl": 7, "nightly": 3}
    seen = [h["id"] for h in first["hits"]]
    page = first
    while page["pageInfo"]["hasNextPage"]:
        page = search(gql, token, "warehouse", first=3, after=page["pageInfo"]["endCursor"])
        assert page["total"] == 7
        seen += [h["id"] for h in page["hits"]]
    assert len(seen) == 7 and set(seen) == ids

    nightly = search(gql, token, "warehouse", f={"tags": ["nightly"]})
    assert nightly["total"] == 3 and facet(nightly, "tag") == {"etl": 3, "nightly": 3}
    assert search(gql, token, "warehouse", f={"status": ["FAILED"]})["total"] == 0
    assert search(gql, token, "warehouse", types=["AGENT", "MEMORY"])["total"] == 0
    future = search(gql, token, "warehouse", f={"createdAfter": "2999-01-01T00:00:00Z"})
    assert future["total"] == 0
    agents = search(gql, token, "summarization", types=["AGENT"], f={"status": ["IDLE"]})
    assert [h["title"] for h in agents["hits"]] == ["summarizer"]
    assert facet(agents, "status") == {"IDLE": 1}


def test_counts_pages_and_the_tag_facet_are_exact_across_the_workflows_two_shards(
    gql: GQL, db: Any
) -> None:
    # A member's two statements each match one shard of the workflows (migration 0012):
    # the shard is the key's, so keys for both are picked before any workflow is made.
    token = gql.member()
    keys = [f"moraine-{i}" for i in range(80)]
    placed = db(
        f"SELECT key, {Shard.FIRST.value} AS first FROM unnest($1::text[]) AS w(key)",  # noqa: S608
        keys,
    )
    picked = [r["key"] for r in placed if r["first"]][:3] + [
        r["key"] for r in placed if not r["first"]
    ][:2]
    assert len(picked) == 5, placed
    made = [workflow(gql, token, key, f"Moraine survey {key}", tags=["moraine"]) for key in picked]
    first, rest = made[:3], made[3:]
    everyone = first + rest
    # "split" is on two workflows of each shard (4 in all); twenty "solo" tags on three
    # workflows of the first shard only (3 each). Counted apart and cut at 20 each,
    # "split" would come out at 2 and be left out.
    solo = [f"solo-{n:02}" for n in range(20)]
    tags = {wid: ["moraine"] for wid in everyone}
    for wid in first[:2] + rest[:2]:
        tags[wid].append("split")
    for wid in first[:3]:
        tags[wid] += solo
    for wid, its in tags.items():
        db("UPDATE workflows SET tags = $2 WHERE id = $1", uuid.UUID(wid), its)
    expected = {"moraine": len(everyone), "split": 4} | {t: 3 for t in solo[:18]}

    boss = admin(gql, db, "moraine-admin@example.com")
    for who in (token, boss):
        found = search(gql, who, "moraine survey", first=2)
        assert found["total"] == len(everyone)
        assert facet(found, "type") == {"WORKFLOW": len(everyone)}
        assert facet(found, "tag") == expected
        assert list(facet(found, "tag")) == ["moraine", "split", *solo[:18]]
        seen, scores, page = [], [], found
        while True:
            seen += [h["id"] for h in page["hits"]]
            scores += [h["score"] for h in page["hits"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            page = search(gql, who, "moraine survey", first=2, after=after)
        assert sorted(seen) == sorted(everyone) and scores == sorted(scores, reverse=True)
    only = search(gql, token, "moraine", types=["WORKFLOW"], f={"tags": ["split"]})
    assert only["total"] == 4 and facet(only, "tag")["split"] == 4


async def _generic_plan(dsn: str, sql: str) -> str:
    """EXPLAIN of ``sql`` as the search runs it: prepared, on its generic plan (no value
    known), with scans of a whole table ruled out wherever an index can serve."""
    statement = numbered(sql)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute(f"PREPARE shard_plan AS {statement.sql}")
            nulls = ", ".join("NULL" for _ in statement.names)
            rows = await conn.fetch(f"EXPLAIN EXECUTE shard_plan({nulls})")
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(
    ("types", "shards", "admin_", "indexes"),
    [
        ((T.WORKFLOW, T.AGENT), (Shard.FIRST,), False, {"ix_workflows_search_first"}),
        ((T.WORKFLOW, T.EXECUTION), (Shard.REST,), False, {"ix_workflows_search_rest"}),
        (
            (T.WORKFLOW, T.AGENT),
            BOTH,
            True,
            {"ix_workflows_search_first", "ix_workflows_search_rest"},
        ),
    ],
)
def test_each_shard_is_read_through_its_own_partial_index(
    stack: Stack, types: tuple[T, ...], shards: tuple[Shard, ...], admin_: bool, indexes: set[str]
) -> None:
    # The statements' shard predicates are the indexes' (migration 0012): were they to
    # drift apart, the workflows would be read by a scan of the whole table.
    sql = match_statement(
        types, SearchFilter(), admin=admin_, id_range=False, cursor=False, shards=shards
    )
    assert sql is not None
    plan = asyncio.run(_generic_plan(stack.dsn, sql))
    used = set(re.findall(r"Bitmap Index Scan on (ix_workflows_search_\w+)", plan))
    assert used == indexes and "Seq Scan on workflows" not in plan, plan


@pytest.mark.parametrize("admin_", [False, True])
def test_memories_are_matched_and_ranked_from_their_one_stored_vector(
    stack: Stack, admin_: bool
) -> None:
    # Migration 0013: one vector for content and metadata, read through its own index,
    # not two indexes and a vector built again for every matching row.
    sql = match_statement((T.MEMORY,), SearchFilter(), admin=admin_, id_range=False, cursor=False)
    assert sql is not None and "search_meta" not in sql
    plan = asyncio.run(_generic_plan(stack.dsn, sql))
    used = set(re.findall(r"Bitmap Index Scan on (ix_memories_\w+)", plan))
    assert "ix_memories_search" in used and "ix_memories_tsv" not in used, plan
    assert "Seq Scan on memories" not in plan, plan


def test_every_workflow_key_is_in_exactly_one_shard(db: Any) -> None:
    # What the indexes cover is what the statements ask for, and the two shards part
    # every key: none in both, none in neither.
    migration = importlib.import_module(
        "cognitionos.db.migrations.versions.0012_search_workflow_shards"
    )
    for shard, index in zip(BOTH, migration.INDEXES, strict=True):
        assert index.endswith("WHERE " + shard.value.replace("w.key", "key"))
    (row,) = db(
        f"""SELECT count(*) FILTER (WHERE {Shard.FIRST.value}) AS first,
                   count(*) FILTER (WHERE {Shard.REST.value}) AS rest,
                   count(*) FILTER (WHERE ({Shard.FIRST.value}) = ({Shard.REST.value})) AS both
            FROM (SELECT md5(g::text) AS key FROM generate_series(1, 10000) AS g) AS w"""  # noqa: S608
    )
    assert row["both"] == 0 and row["first"] + row["rest"] == 10_000
    assert 7_600 < row["first"] < 8_400  # about four in five


def test_pages_across_shared_and_own_rows_are_merged_in_one_order(gql: GQL, db: Any) -> None:
    token = gql.member()
    me = gql.ok(ME, token=token)["me"]["id"]
    ids = {workflow(gql, token, f"quasar-{i}", f"Quasar {i}") for i in range(3)}
    for i in range(3):
        note = {"userId": me, "subject": f"Quasar {i}", "body": "x"}
        ids.add(gql.ok(SEND, {"i": note}, token=token)["sendNotification"]["id"])
    for content in ("The quasar is bright tonight", "Lunch with the quasar team on Friday"):
        stored = gql.ok(STORE, {"i": {"content": content}}, token=token)
        ids.add(stored["storeMemory"]["id"])
    started = gql.ok(EXECUTE, {"input": {"workflowKey": "quasar-0"}}, token=token)
    ids.add(started["executeWorkflow"]["id"])
    gql.wait_execution(started["executeWorkflow"]["id"], token)  # and notifies "Quasar 0"
    # A member's statements and an admin's split the types differently (the admin's:
    # workflows, agents and notifications apart from executions and memories).
    for who in (token, admin(gql, db)):
        seen, scores, after = [], [], None
        while True:
            page = search(gql, who, "quasar", first=3, after=after)
            assert page["total"] == 10
            assert facet(page, "type") == {
                "WORKFLOW": 3,
                "NOTIFICATION": 4,
                "MEMORY": 2,
                "EXECUTION": 1,
            }
            seen += [h["id"] for h in page["hits"]]
            scores += [h["score"] for h in page["hits"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == 10 and ids < set(seen)
        assert scores == sorted(scores, reverse=True)


def test_memories_are_found_by_metadata_values_which_outrank_their_content(gql: GQL) -> None:
    token = gql.member()
    in_content = gql.ok(STORE, {"i": {"content": "The heron nests by the weir"}}, token=token)[
        "storeMemory"
    ]["id"]
    in_metadata = gql.ok(
        STORE,
        {"i": {"content": "Notes from the river walk", "metadata": {"bird": "heron", "n": 3}}},
        token=token,
    )["storeMemory"]["id"]
    heron = search(gql, token, "heron")
    # A metadata value weighs as a tag (B), twice the content (a body).
    assert [h["id"] for h in heron["hits"]] == [in_metadata, in_content]
    assert heron["hits"][0]["highlights"] == [
        {"field": "metadata", "text": '{"n": 3, "bird": "<mark>heron</mark>"}'}
    ]
    # The vector is the row's: a changed value is found, the old one no more, at once.
    patch = "mutation($id: ID!, $i: UpdateMemoryInput!) { updateMemory(id: $id, input: $i) { id } }"
    gql.ok(patch, {"id": in_metadata, "i": {"metadata": {"bird": "kingfisher"}}}, token=token)
    assert [h["id"] for h in search(gql, token, "heron")["hits"]] == [in_content]
    assert [h["id"] for h in search(gql, token, "kingfisher")["hits"]] == [in_metadata]


def test_one_hit_per_workflow_key_its_newest_matching_version(gql: GQL, db: Any) -> None:
    token = gql.member()
    first = workflow(gql, token, "kiln", "Kiln report", description="fires pots")
    second = workflow(gql, token, "kiln", "Kiln summary", version="2.0.0")
    patch = workflow(gql, token, "kiln", "Kiln summary", version="1.5.0")
    kiln = search(gql, token, "kiln")
    assert [h["id"] for h in kiln["hits"]] == [second] and kiln["total"] == 1
    # The newest version does not say "report": the newest one that does is the hit.
    report = search(gql, token, "report")
    assert [h["id"] for h in report["hits"]] == [first] and report["total"] == 1
    assert facet(search(gql, token, "summary"), "type") == {"WORKFLOW": 1}
    db("DELETE FROM workflows WHERE id = $1", uuid.UUID(second))
    assert [h["id"] for h in search(gql, token, "kiln")["hits"]] == [patch]
    db("DELETE FROM workflows WHERE id = $1", uuid.UUID(patch))
    assert [h["id"] for h in search(gql, token, "kiln pots")["hits"]] == [first]


def test_executions_are_found_by_status_workflow_and_id_prefix_as_they_change(
    gql: GQL,
) -> None:
    token = gql.member()
    workflow(gql, token, "nightly-digest", "Nightly digest")
    started = gql.ok(EXECUTE, {"input": {"workflowKey": "nightly-digest"}}, token=token)
    execution_id = started["executeWorkflow"]["id"]
    assert gql.wait_execution(execution_id, token)["status"] == "SUCCEEDED"
    found = search(gql, token, "digest succeeded", types=["EXECUTION"])
    assert [h["id"] for h in found["hits"]] == [execution_id]
    assert found["hits"][0]["title"] == "Nightly digest · SUCCEEDED"
    assert facet(found, "status") == {"SUCCEEDED": 1}
    by_id = search(gql, token, execution_id[:8], types=["EXECUTION"])
    assert [h["id"] for h in by_id["hits"]] == [execution_id]


def test_suggestions_complete_names_keys_tags_and_capabilities(gql: GQL) -> None:
    token = gql.member()
    wid = workflow(gql, token, "churn-model", "Churn forecast", tags=["forecasting"])
    # The key and the name are completions of their own, the shortest first.
    assert gql.ok(SUGGEST, {"p": "chu"}, token=token)["suggest"] == [
        {"text": "churn-model", "type": "WORKFLOW", "id": wid},
        {"text": "Churn forecast", "type": "WORKFLOW", "id": wid},
    ]
    assert gql.ok(SUGGEST, {"p": "churn fore"}, token=token)["suggest"] == [
        {"text": "Churn forecast", "type": "WORKFLOW", "id": wid}
    ]
    tags = gql.ok(SUGGEST, {"p": "forecasti"}, token=token)["suggest"]
    assert tags == [{"text": "forecasting", "type": "WORKFLOW", "id": wid}]
    # The default summarizer agent: its name and its capability.
    caps = gql.ok(SUGGEST, {"p": "summariz", "types": ["AGENT"]}, token=token)["suggest"]
    assert [s["text"] for s in caps] == ["summarizer", "summarization"]
    assert len(gql.ok(SUGGEST, {"p": "e", "limit": 2}, token=token)["suggest"]) <= 2


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"q": ""}, "query"),
        ({"q": "   "}, "query"),
        ({"q": "x" * 10_000}, "query"),
        ({"q": "?!… ---"}, "query"),
        ({"q": "ok", "first": 1000}, "first"),
        ({"q": "ok", "first": 0}, "first"),
        ({"q": "ok", "after": "not-a-cursor"}, "after"),
        ({"q": "ok", "types": []}, "types"),
        ({"q": "ok", "f": {"status": ["BROKEN"]}}, "filter.status"),
        ({"q": "ok", "f": {"tags": [""]}}, "filter.tags"),
    ],
)
def test_bad_input_is_refused_clearly(gql: GQL, variables: dict[str, Any], field: str) -> None:
    token = gql.member()
    error = gql.error(SEARCH, variables, token=token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field


def test_bad_suggest_input_and_metrics(gql: GQL, engine_server: LiveServer) -> None:
    token = gql.member()
    for variables, field in (({"p": ""}, "prefix"), ({"p": "a", "limit": 500}, "limit")):
        error = gql.error(SUGGEST, variables, token=token)
        assert error["extensions"] == {**error["extensions"], "code": "BAD_USER_INPUT"}
        assert error["extensions"]["field"] == field
    search(gql, token, "summarizer")
    search(gql, token, "xqzvjk", types=["MEMORY", "AGENT"])
    metrics = gql.client.get(f"{engine_server.url}/metrics").text
    assert 'search_requests_total{operation="search",outcome="hits",types="ALL"}' in metrics
    assert '{operation="search",outcome="empty",types="AGENT,MEMORY"}' in metrics
    assert '{operation="suggest",outcome="bad_input",types="ALL"}' in metrics
    assert gql.error(SEARCH, {"q": "summary"})["extensions"]["code"] == "UNAUTHENTICATED"
