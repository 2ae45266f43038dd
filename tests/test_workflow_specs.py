"""A step's specification: what a definition may say (unknown config keys are refused,
naming the step and the field) and what a stored definition keeps meaning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import CREATE_WORKFLOW, GQL, LiveServer
from tests.test_workflows import create, run, workflow_input

Member = tuple[GQL, str]


@pytest.fixture
def member(engine_server: LiveServer) -> Member:
    """The API of a server with a worker, and a member's token."""
    return engine_server.gql, engine_server.gql.member()


@pytest.mark.parametrize(
    ("step", "field", "words"),
    [
        (
            {"key": "fetch", "kind": "HTTP", "config": {"url": "https://x.test", "verb": "GET"}},
            "steps[0].config.verb",
            ["step 'fetch'", "unknown config field 'verb'", "'method'"],
        ),
        (
            {
                "key": "think",
                "kind": "AGENT",
                "agentCapability": "analysis",
                "config": {"instruction": "Think.", "critic": {"treshold": 0.9}},
            },
            "steps[0].config.critic.treshold",
            ["step 'think'", "unknown critic field 'treshold'", "'threshold'"],
        ),
        (
            {
                "key": "recall",
                "kind": "MEMORY_SEARCH",
                "config": {"query": "x", "filter": {"metadata": [{"key": "k", "equals": 1}]}},
            },
            "steps[0].config.filter.metadata[0].equals",
            ["step 'recall'", "unknown field 'equals'", "'eq'"],
        ),
    ],
)
def test_an_unknown_config_key_is_refused_naming_the_step_and_field(
    member: Member, step: dict[str, Any], field: str, words: list[str]
) -> None:
    gql, token = member
    error = gql.error(CREATE_WORKFLOW, workflow_input("typo", [step]), token=token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert error["extensions"]["step"] == step["key"]
    for word in words:
        assert word in error["message"]


def test_omitted_and_null_fields_take_the_defaults_workflow_steps_shows(member: Member) -> None:
    gql, token = member
    step = {"key": "a", "kind": "TRANSFORM", "config": {"template": "x"}}
    create(gql, token, "defaults", [step, {**step, "key": "b", "retry": None, "dependsOn": None}])
    shown = gql.ok(
        """{ workflow(key: "defaults") { steps { key name agentCapability config dependsOn
            timeoutSeconds retry { maxAttempts initialDelaySeconds backoffFactor
            maxDelaySeconds } } } }""",
        token=token,
    )["workflow"]["steps"]
    defaults = {
        "name": None,
        "agentCapability": None,
        "config": {"template": "x"},
        "dependsOn": [],
        "timeoutSeconds": 300.0,
        "retry": {
            "maxAttempts": 1,
            "initialDelaySeconds": 1.0,
            "backoffFactor": 2.0,
            "maxDelaySeconds": 60.0,
        },
    }
    assert shown == [{"key": "a", **defaults}, {"key": "b", **defaults}]


def test_a_definition_stored_by_an_earlier_version_still_runs(member: Member, db: Any) -> None:
    gql, token = member
    create(gql, token, "old", [{"key": "a", "kind": "TRANSFORM", "config": {"template": "x"}}])
    # As rows were written before: nulls for what was not given, optional keys missing,
    # and keys this version does not know, at the top and inside a config.
    stored = [
        {
            "key": "greet",
            "kind": "TRANSFORM",
            "config": {"template": "hello {{ inputs.who }}"},
            "dependsOn": None,
            "retry": None,
            "timeoutSeconds": None,
        },
        {
            "key": "shout",
            "name": None,
            "kind": "TRANSFORM",
            "agentCapability": None,
            "config": {"template": "{{ steps.greet.output | upper }}", "cache": True},
            "dependsOn": ["greet"],
            "retry": {"maxAttempts": 2, "initialDelaySeconds": 0.5, "jitter": True},
            "timeoutSeconds": 30,
            "priority": 5,
        },
    ]
    db("UPDATE workflows SET steps = $1::jsonb WHERE key = 'old'", json.dumps(stored))

    done = run(gql, token, "old", {"who": "ada"})
    assert done["status"] == "SUCCEEDED", done
    assert {s["stepKey"]: s["output"] for s in done["steps"]} == {
        "greet": "hello ada",
        "shout": "HELLO ADA",
    }
    shown = gql.ok(
        '{ workflow(key: "old") { steps { key dependsOn timeoutSeconds retry { maxAttempts } } } }',
        token=token,
    )["workflow"]["steps"]
    assert shown == [
        {"key": "greet", "dependsOn": [], "timeoutSeconds": 300.0, "retry": {"maxAttempts": 1}},
        {
            "key": "shout",
            "dependsOn": ["greet"],
            "timeoutSeconds": 30.0,
            "retry": {"maxAttempts": 2},
        },
    ]
