"""Remembered documents: a document sent again skips parsing and validation, and still
gets every check that depends on the request (key scope, NUL in variables and literals,
the limits, the caller's current role)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import parse

from cognitionos.schema.documents import DocumentCache
from tests.support import GQL, LiveServer

MARK_READ = "mutation { markAllNotificationsRead }"


def read_key(gql: GQL, token: str) -> str:
    created = gql.ok(
        'mutation { createApiKey(name: "ro", scopes: ["read"]) { secret } }', token=token
    )
    return str(created["createApiKey"]["secret"])


def test_the_cache_is_bounded_by_entries_and_by_text() -> None:
    cache = DocumentCache(entries=2, chars=400)
    for text in ("{ a }", "{ b }", "{ c }"):
        cache.put(text, parse(text))
    assert len(cache) == 2
    assert cache.get("{ a }") is None  # the least recently used went first
    assert cache.get("{ c }") is not None
    long = "{ " + "x " * 60 + "}"  # 124 characters: more than a quarter of the budget
    assert cache.put(long, parse(long)).document is not None
    assert cache.get(long) is None
    assert DocumentCache(entries=0).put("{ a }", parse("{ a }")) is not None
    assert len(DocumentCache(entries=0)) == 0


def test_a_read_key_is_refused_a_mutation_the_cache_knows_as_valid(
    gql: GQL, server: LiveServer
) -> None:
    token = gql.member("cache-ro@example.com")
    key = read_key(gql, token)
    assert gql.ok(MARK_READ, token=token) is not None  # parsed, validated, remembered
    refused = gql.error(MARK_READ, token=key)
    assert refused["extensions"]["code"] == "FORBIDDEN"
    # And the refusal is not remembered as the document's validation result.
    assert gql.ok(MARK_READ, token=token) is not None
    assert server.app.state.graphql.schema.documents.get(MARK_READ) is not None


def test_a_document_refused_for_a_read_key_first_still_validates_for_others(gql: GQL) -> None:
    token = gql.member("cache-ro-first@example.com")
    key = read_key(gql, token)
    document = "mutation CacheFirst { markAllNotificationsRead }"
    assert gql.error(document, token=key)["extensions"]["code"] == "FORBIDDEN"
    assert "markAllNotificationsRead" in gql.ok(document, token=token)


def test_nul_is_refused_in_variables_and_literals_of_a_remembered_document(gql: GQL) -> None:
    token = gql.member("cache-nul@example.com")
    query = 'query($v: String) { workflow(key: "k", version: $v) { id } }'
    assert gql.ok(query, {"v": "1.0.0"}, token=token) == {"workflow": None}
    error = gql.error(query, {"v": "a\x00b"}, token=token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "v")
    literal = r'{ workflow(key: "", version: "a\u0000b") { id } }'
    for _ in range(2):
        error = gql.error(literal, token=token)
        assert error["extensions"]["field"] == "version"


def test_limits_refuse_a_document_every_time_it_is_sent(gql: GQL) -> None:
    nested = "query Deeper { " + "me { " * 12 + "id" + " }" * 12 + " }"
    for _ in range(3):
        error = gql.error(nested)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "exceeds maximum operation depth" in error["message"]
    unknown = "{ noSuchField }"
    for _ in range(2):
        assert "noSuchField" in gql.error(unknown)["message"]


def test_a_demotion_applies_to_the_next_request_of_a_remembered_document(
    gql: GQL, db: Callable[..., Any]
) -> None:
    token = gql.member("cache-demoted@example.com")
    me = "{ me { email role } }"
    assert gql.ok(me, token=token)["me"]["role"] == "MEMBER"
    db("UPDATE users SET role = 'VIEWER' WHERE email = 'cache-demoted@example.com'")
    assert gql.ok(me, token=token)["me"]["role"] == "VIEWER"
    workflow = {"key": "k", "version": "1.0.0", "name": "w", "steps": []}
    create = "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }"
    assert gql.error(create, {"i": workflow}, token=token)["extensions"]["code"] == "FORBIDDEN"
