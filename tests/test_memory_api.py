"""Memories over GraphQL: storing, merging, expiry, hybrid search, filters, rights."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import GQL

FIELDS = """id content type scope scopeId importance confidence accessCount metadata expiresAt
    storeOutcome"""
STORE = f"mutation($i: StoreMemoryInput!) {{ storeMemory(input: $i) {{ {FIELDS} }} }}"
GET = f"query($id: ID!) {{ memory(id: $id) {{ {FIELDS} }} }}"
SEARCH = """query($q: String!, $l: Int, $f: MemoryFilter) {
    searchMemories(query: $q, limit: $l, filter: $f) {
    score similarity rank vectorRank textRank recency memory { id content metadata } } }"""
LIST = """query($f: MemoryFilter, $first: Int, $after: String) {
    memories(filter: $f, first: $first, after: $after) {
    edges { node { content } } pageInfo { hasNextPage endCursor } } }"""


def store(gql: GQL, token: str, content: str, **extra: Any) -> Any:
    return gql.ok(STORE, {"i": {"content": content, **extra}}, token=token)["storeMemory"]


def search(gql: GQL, token: str, query: str, **variables: Any) -> list[Any]:
    return gql.ok(SEARCH, {"q": query, **variables}, token=token)["searchMemories"]  # type: ignore[no-any-return]


@pytest.fixture
def token(gql: GQL) -> str:
    return gql.member()


def test_store_then_a_near_duplicate_merges_instead_of_copying(gql: GQL, token: str) -> None:
    first = store(
        gql,
        token,
        "The user prefers green tea in the morning.",
        confidence=0.6,
        metadata={"source": "chat"},
    )
    assert first["storeOutcome"] == "CREATED" and first["type"] == "LONG_TERM"
    again = store(
        gql,
        token,
        "The user prefers green tea in the morning!",
        confidence=0.5,
        metadata={"lang": "en"},
    )
    assert again["storeOutcome"] == "MERGED" and again["id"] == first["id"]
    assert again["confidence"] == pytest.approx(0.7)  # bumped
    assert again["accessCount"] == 1
    assert again["metadata"] == {"source": "chat", "lang": "en"}
    other_scope = store(
        gql, token, "The user prefers green tea in the morning.", scope="SESSION", scopeId="s1"
    )
    assert other_scope["storeOutcome"] == "CREATED"
    different = store(gql, token, "The user's dog is called Biscuit.")
    assert different["storeOutcome"] == "CREATED"
    listed = gql.ok(LIST, {"f": {"scope": "USER"}}, token=token)["memories"]["edges"]
    assert len(listed) == 2


def test_ttls_expire_memories_which_are_never_returned_and_get_purged(
    gql: GQL, token: str, db: Any
) -> None:
    working = store(gql, token, "Currently editing the quarterly report.", type="WORKING")
    assert working["expiresAt"] is not None  # the default WORKING TTL applies
    long_term = store(gql, token, "Born in Lisbon.")
    assert long_term["expiresAt"] is None
    db(
        "UPDATE memories SET expires_at = now() - interval '1 second' WHERE id = $1",
        __import__("uuid").UUID(working["id"]),
    )
    missing = gql.error(GET, {"id": working["id"]}, token=token)
    assert missing["extensions"]["code"] == "NOT_FOUND"
    assert [h["memory"]["id"] for h in search(gql, token, "quarterly report editing")] == [
        long_term["id"]
    ]
    listed = gql.ok(LIST, {}, token=token)["memories"]["edges"]
    assert [e["node"]["content"] for e in listed] == ["Born in Lisbon."]


def test_hybrid_search_ranks_by_meaning_and_words_and_says_why(gql: GQL, token: str) -> None:
    for content in [
        "The user is allergic to peanuts and tree nuts.",
        "The user's favourite programming language is Rust.",
        "The user runs a marathon every spring.",
        "Quarterly revenue grew eight percent.",
        "The project codename is Zephyrine.",
    ]:
        store(gql, token, content)
    hits = search(gql, token, "allergic to nuts", l=3)
    assert hits[0]["memory"]["content"].startswith("The user is allergic")
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["vectorRank"] == 1 and hits[0]["textRank"] == 1
    assert hits[0]["score"] > hits[1]["score"] and 0 < hits[0]["similarity"] <= 1
    (word,) = [h for h in search(gql, token, "Zephyrine", l=5) if h["textRank"] is not None]
    assert word["memory"]["content"] == "The project codename is Zephyrine." and word["rank"] == 1


def test_metadata_filters(gql: GQL, token: str) -> None:
    rows = [
        (
            "Met Alice at the conference.",
            {"person": "alice", "tags": ["work", "travel"], "score": 3, "on": "2026-01-10"},
        ),
        (
            "Alice sent the contract.",
            {"person": "alice", "tags": ["work"], "score": 8, "on": "2026-03-02"},
        ),
        (
            "Bob likes sailing on weekends.",
            {
                "person": "bob",
                "tags": ["hobby"],
                "score": 5,
                "on": "2026-02-20",
                "note": "Sailing club",
            },
        ),
    ]
    for content, metadata in rows:
        store(gql, token, content, metadata=metadata)

    def found(*conditions: dict[str, Any]) -> list[str]:
        hits = search(
            gql,
            token,
            "Alice Bob contract sailing conference",
            l=10,
            f={"metadata": list(conditions)},
        )
        return sorted(h["memory"]["content"] for h in hits)

    alice = ["Alice sent the contract.", "Met Alice at the conference."]
    assert found({"key": "person", "eq": "alice"}) == alice
    assert found({"key": "person", "in": ["bob", "carol"]}) == ["Bob likes sailing on weekends."]
    assert found({"key": "tags", "contains": "travel"}) == ["Met Alice at the conference."]
    assert found({"key": "note", "contains": "sailing"}) == ["Bob likes sailing on weekends."]
    assert found({"key": "score", "gte": 5}) == [
        "Alice sent the contract.",
        "Bob likes sailing on weekends.",
    ]
    assert found({"key": "on", "gt": "2026-02-01", "lt": "2026-03-01"}) == [
        "Bob likes sailing on weekends."
    ]
    assert found({"key": "person", "eq": "alice"}, {"key": "score", "lt": 5}) == [
        "Met Alice at the conference."
    ]
    bad = gql.error(SEARCH, {"q": "x", "f": {"metadata": [{"key": "score"}]}}, token=token)
    assert bad["extensions"]["field"] == "filter.metadata[0]"


def test_owners_globals_and_admins(gql: GQL, token: str, db: Any) -> None:
    mine = store(gql, token, "My bank is Northwind Savings.")
    intruder = gql.member("intruder@example.com")
    assert gql.error(GET, {"id": mine["id"]}, token=intruder)["extensions"]["code"] == "FORBIDDEN"
    assert search(gql, intruder, "bank Northwind Savings") == []
    denied = gql.error(
        STORE, {"i": {"content": "Office opens at nine.", "scope": "GLOBAL"}}, token=token
    )
    assert denied["extensions"]["code"] == "FORBIDDEN"
    gql.register("root@example.com")
    db("UPDATE users SET role = 'ADMIN' WHERE email = 'root@example.com'")
    root = gql.login("root@example.com").json()["data"]["login"]["accessToken"]
    shared = store(gql, root, "The office opens at nine.", scope="GLOBAL")
    assert [h["memory"]["id"] for h in search(gql, intruder, "office opening hours")] == [
        shared["id"]
    ]
    assert gql.ok(GET, {"id": mine["id"]}, token=root)["memory"]["content"].startswith("My bank")
    forget = "mutation($id: ID!) { forgetMemory(id: $id) }"
    assert (
        gql.error(forget, {"id": shared["id"]}, token=intruder)["extensions"]["code"] == "FORBIDDEN"
    )
    assert gql.ok(forget, {"id": mine["id"]}, token=token)["forgetMemory"] is True
    assert gql.error(GET, {"id": mine["id"]}, token=token)["extensions"]["code"] == "NOT_FOUND"


def test_update_reembeds_and_access_is_counted_after_searches(gql: GQL, token: str) -> None:
    memory = store(gql, token, "The user drives a red bicycle.")
    gql.ok(
        "mutation($id: ID!, $i: UpdateMemoryInput!) { updateMemory(id: $id, input: $i) { id } }",
        {
            "id": memory["id"],
            "i": {"content": "The user drives a blue electric car.", "importance": 0.9},
        },
        token=token,
    )
    hits = search(gql, token, "electric car", l=1)
    assert hits[0]["memory"]["content"] == "The user drives a blue electric car."
    search(gql, token, "what vehicle", l=1)
    deadline = time.monotonic() + 10
    while gql.ok(GET, {"id": memory["id"]}, token=token)["memory"]["accessCount"] < 2:
        assert time.monotonic() < deadline, "access counts were never written"
        time.sleep(0.1)
    fetched = gql.ok(GET, {"id": memory["id"]}, token=token)["memory"]
    assert fetched["importance"] == 0.9


def test_bad_input_is_named(gql: GQL, token: str) -> None:
    assert (
        gql.error(STORE, {"i": {"content": "  "}}, token=token)["extensions"]["field"] == "content"
    )
    assert (
        gql.error(STORE, {"i": {"content": "x", "importance": 2}}, token=token)["extensions"][
            "field"
        ]
        == "importance"
    )
    assert gql.error(SEARCH, {"q": "x", "l": 0}, token=token)["extensions"]["field"] == "limit"
