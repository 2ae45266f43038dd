"""A NUL character (which PostgreSQL cannot store) in any argument is BAD_USER_INPUT
naming where it was, never an internal error, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import GQL

WORKFLOWS = "{ workflows(first: 10) { edges { node { key } } } }"


def refused(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field
    assert "NUL" in error["message"]


def test_a_literal_argument(gql: GQL) -> None:
    token = gql.member()
    error = gql.error(r'{ workflow(key: "", version: "a\u0000b") { id } }', token=token)
    refused(error, "version")
    # The variable-width escape spells the same character.
    refused(gql.error(r'{ workflow(key: "a\u{0}", version: "1") { id } }', token=token), "key")


def test_a_variable(gql: GQL) -> None:
    token = gql.member()
    error = gql.error(
        'query($v: String) { workflow(key: "k", version: $v) { id } }',
        {"v": "a\x00b"},
        token=token,
    )
    refused(error, "v")


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"key": "a", "kind": "TRANSFORM", "name": "n\x00"}, "input.steps[1].name"),
        ({"key": "a", "kind": "TRANSFORM", "dependsOn": ["\x00"]}, "input.steps[1].dependsOn[0]"),
        (
            {"key": "a", "kind": "TRANSFORM", "config": {"template": {"deep": ["ok", "x\x00"]}}},
            "input.steps[1].config.template.deep[1]",
        ),
        ({"key": "a", "kind": "TRANSFORM", "config": {"k\x00": 1}}, "input.steps[1].config.k\x00"),
    ],
)
def test_nested_input_objects_lists_and_json(gql: GQL, step: dict[str, Any], field: str) -> None:
    token = gql.member()
    ok_step = {"key": "first", "kind": "TRANSFORM", "config": {"template": "fine"}}
    error = gql.error(
        """mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }""",
        {"input": {"key": "k", "version": "1.0.0", "name": "w", "steps": [ok_step, step]}},
        token=token,
    )
    refused(error, field)
    assert gql.ok(WORKFLOWS, token=token)["workflows"]["edges"] == []


def test_a_nested_literal(gql: GQL) -> None:
    token = gql.member()
    error = gql.error(
        r"""mutation { createWorkflow(input: {key: "k", version: "1.0.0", name: "w",
            steps: [{key: "a", kind: "TRANSFORM", config: {template: "x\u0000"}}]}) { id } }""",
        token=token,
    )
    refused(error, "input.steps.config.template")
    assert gql.ok(WORKFLOWS, token=token)["workflows"]["edges"] == []
