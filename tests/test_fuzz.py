"""Queries and mutations generated from the live schema, sent as a MEMBER: whatever they
ask, the answer is never a 5xx nor a masked internal error. Bounded and repeatable: a
fixed seed and a fixed number of examples.

IDs and strings are drawn partly from things that exist (the member's workflow, its
execution and steps, a memory, a schedule, an API key, the agents), so operations get past
"not found" into the code behind it; the rest is arbitrary."""

from __future__ import annotations

import string
import uuid
from datetime import UTC
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes

from tests.support import CREATE_WORKFLOW, EXECUTE, GQL

EXAMPLES = 150
INTERNAL = "Internal server error"

_names = st.text(string.ascii_letters, min_size=1, max_size=8)
_json: st.SearchStrategy[graphql.ValueNode] = st.recursive(
    st.one_of(
        st.integers(-(2**40), 2**40).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.text(max_size=20).map(nodes.String),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(nodes.List),
        st.lists(
            st.builds(
                lambda key, value: graphql.ObjectFieldNode(
                    name=graphql.NameNode(value=key), value=value
                ),
                _names,
                inner,
            ),
            max_size=3,
            unique_by=lambda field: field.name.value,
        ).map(nodes.Object),
    ),
    max_leaves=6,
)


def scalars(ids: list[str], words: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Mostly well-formed values, sometimes not: both must be answered properly."""
    return {
        "ID": st.one_of(st.sampled_from(ids), st.uuids().map(str), st.text(max_size=10)).map(
            nodes.String
        ),
        "String": st.one_of(st.sampled_from(words), st.text(max_size=30)).map(nodes.String),
        "JSON": _json,
        "DateTime": st.one_of(
            st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()),
            st.text(max_size=12),
        ).map(nodes.String),
        "Decimal": st.one_of(
            st.decimals(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=8)
        ).map(nodes.String),
        "Time": st.one_of(st.times().map(lambda t: t.isoformat()), st.text(max_size=8)).map(
            nodes.String
        ),
    }


def seed_objects(gql: GQL, token: str) -> tuple[list[str], list[str]]:
    """A workflow, its (waiting) execution, a memory, a schedule, a key: their ids and names."""
    steps = [
        {"key": "draft", "kind": "TRANSFORM", "config": {"template": "{{ inputs.topic }}"}},
        {"key": "review", "kind": "APPROVAL", "dependsOn": ["draft"], "config": {"prompt": "ok?"}},
    ]
    workflow = gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": "fuzz-flow", "version": "1.0.0", "name": "Fuzz", "steps": steps}},
        token=token,
    )["createWorkflow"]
    execution = gql.ok(
        EXECUTE, {"input": {"workflowKey": "fuzz-flow", "inputs": {"topic": "x"}}}, token=token
    )["executeWorkflow"]
    found = gql.ok(
        "query($id: ID!) { me { id } execution(id: $id) { steps { id } } agents { id name } }",
        {"id": execution["id"]},
        token=token,
    )
    memory = gql.ok(
        'mutation { storeMemory(input: {content: "The user likes sailing."}) { id } }', token=token
    )["storeMemory"]
    schedule = gql.ok(
        """mutation { createSchedule(input: {workflowKey: "fuzz-flow", kind: INTERVAL,
            expression: "3600"}) { id } }""",
        token=token,
    )["createSchedule"]
    key = gql.ok('mutation { createApiKey(name: "fuzz") { apiKey { id } } }', token=token)
    ids = [
        workflow["id"],
        execution["id"],
        found["me"]["id"],
        memory["id"],
        schedule["id"],
        key["createApiKey"]["apiKey"]["id"],
        *(s["id"] for s in found["execution"]["steps"]),
        *(a["id"] for a in found["agents"]),
    ]
    words = ["fuzz-flow", "1.0.0", "draft", "review", "sailing", "UTC", "Europe/Paris"]
    words += [a["name"] for a in found["agents"]]
    return ids, words


def test_generated_operations_never_fail_internally(gql: GQL) -> None:
    token = gql.member("fuzz@example.com")
    ids, words = seed_objects(gql, token)
    ids.append(str(uuid.UUID(int=0)))
    schema = graphql.build_client_schema(gql.ok(graphql.get_introspection_query(), token=token))

    @seed(20261123)
    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the query is printed
        suppress_health_check=list(HealthCheck),
    )
    @given(
        document=from_schema(
            schema, custom_scalars=scalars(ids, words), allow_x00=False, codec="utf-8"
        )
    )
    def run(document: str) -> None:
        response = gql.post(document, token=token)
        assert response.status_code < 500, f"{response.status_code} for:\n{document}"
        payload: dict[str, Any] = response.json()
        internal = [e for e in payload.get("errors") or [] if e.get("message") == INTERNAL]
        assert not internal, f"internal error {internal[0]['extensions']} for:\n{document}"

    run()


# What the fuzzing found, each once an "Internal server error": (role, document, field).
FOUND = [
    # An empty text embedded to a zero vector, normalized to NaN, refused by pgvector.
    ("MEMBER", '{ searchMemories(query: "") { rank } }', "query"),
    # NaN and infinities are not amounts; a non-number was masked as an internal error.
    ("ADMIN", 'mutation { setBudget(userId: "{me}", monthlyUsd: "NaN") { spentUsd } }', None),
    ("ADMIN", 'mutation { setBudget(userId: "{me}", monthlyUsd: "-Infinity") { spentUsd } }', None),
    ("ADMIN", 'mutation { setBudget(userId: "{me}", monthlyUsd: "ten") { spentUsd } }', None),
    # Beyond the column's numeric(12, 4): an overflow in the database.
    (
        "ADMIN",
        'mutation { setBudget(userId: "{me}", monthlyUsd: "1e30") { spentUsd } }',
        "monthlyUsd",
    ),
]


def test_a_budget_for_nobody_is_not_found(gql: GQL, db: Any) -> None:
    registered = gql.register("found@example.com")
    db("UPDATE users SET role = 'ADMIN'")
    error = gql.error(
        f'mutation {{ setBudget(userId: "{uuid.UUID(int=7)}", monthlyUsd: "5") {{ spentUsd }} }}',
        token=registered["accessToken"],
    )
    assert error["extensions"]["code"] == "NOT_FOUND", error


@pytest.mark.parametrize(("role", "document", "field"), FOUND)
def test_what_fuzzing_found_is_bad_user_input(
    gql: GQL, db: Any, role: str, document: str, field: str | None
) -> None:
    registered = gql.register("found@example.com")
    db("UPDATE users SET role = $1", role)
    error = gql.error(
        document.replace("{me}", registered["user"]["id"]), token=registered["accessToken"]
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    if field is not None:
        assert error["extensions"]["field"] == field
