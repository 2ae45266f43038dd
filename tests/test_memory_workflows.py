"""Memory with the LLM and the engine: conversations, consolidation, memory steps, and
agents that recall."""

from __future__ import annotations

import json

import pytest

from tests.llm_fake import FakeLLM, Reply
from tests.support import GQL, LiveServer
from tests.test_memory_api import LIST, search, store
from tests.test_workflows import create, run

REMEMBER = """mutation($m: [ConversationMessage!]!) { rememberConversation(messages: $m) {
    event previousContent memory { id content type } } }"""
OSLO = "The user plans to fly to Oslo in March and prefers window seats."
CONSOLIDATE = """mutation { consolidateMemories { folded created { content type importance } } }"""


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def test_remember_conversation_adds_updates_and_deletes(gql: GQL, llm_fake: FakeLLM) -> None:
    token = gql.member()
    paris = store(gql, token, "The user lives in Paris.")
    store(gql, token, "The user is vegetarian.")
    llm_fake.script(
        "openai",
        Reply(json.dumps({"facts": ["The user lives in Berlin.", "The user plays the cello."]})),
        Reply(
            json.dumps(
                {
                    "memory": [
                        {"id": "0", "text": "The user lives in Berlin.", "event": "UPDATE"},
                        {"text": "The user plays the cello.", "event": "ADD"},
                        {"id": "1", "event": "NOOP"},
                    ]
                }
            )
        ),
    )
    events = gql.ok(
        REMEMBER,
        {
            "m": [
                {"role": "user", "content": "I moved to Berlin last month, and I play cello now."},
                {"role": "assistant", "content": "Congratulations on the move!"},
            ]
        },
        token=token,
    )["rememberConversation"]
    assert [e["event"] for e in events] == ["UPDATE", "ADD", "NOOP"]
    assert events[0]["memory"]["id"] == paris["id"]
    assert events[0]["previousContent"] == "The user lives in Paris."
    extract, decide = llm_fake.requests["openai"]
    assert "I moved to Berlin" in extract["messages"][1]["content"]
    assert "0: The user lives in Paris." in decide["messages"][1]["content"]  # numbered, not ids
    contents = {e["node"]["content"] for e in gql.ok(LIST, {}, token=token)["memories"]["edges"]}
    assert contents == {
        "The user lives in Berlin.",
        "The user plays the cello.",
        "The user is vegetarian.",
    }


def test_consolidation_folds_short_term_into_long_term(gql: GQL, llm_fake: FakeLLM) -> None:
    token = gql.member()
    for note in ["Asked about flights to Oslo.", "Prefers window seats.", "Flying in March."]:
        store(gql, token, note, type="SHORT_TERM")
    llm_fake.script(
        "openai",
        Reply(
            json.dumps(
                {
                    "facts": [
                        {
                            "text": OSLO,
                            "importance": 0.8,
                        }
                    ]
                }
            )
        ),
    )
    result = gql.ok(CONSOLIDATE, token=token)["consolidateMemories"]
    assert result["folded"] == 3
    assert result["created"] == [
        {
            "content": OSLO,
            "type": "LONG_TERM",
            "importance": 0.8,
        }
    ]
    left = gql.ok(LIST, {}, token=token)["memories"]["edges"]
    assert [e["node"]["content"] for e in left] == [result["created"][0]["content"]]


def test_without_an_llm_extraction_says_what_to_configure(server: LiveServer) -> None:
    token = server.gql.member()
    error = server.gql.error(REMEMBER, {"m": [{"role": "user", "content": "hi"}]}, token=token)
    assert error["extensions"]["code"] == "LLM_UNAVAILABLE"
    assert "OPENAI_API_KEY" in error["message"]


def test_memory_steps_and_agents_that_recall(gql: GQL, llm_fake: FakeLLM) -> None:
    token = gql.member()
    store(gql, token, "The user's cat is named Miso and is afraid of thunder.")
    create(
        gql,
        token,
        "recall",
        [
            {
                "key": "save",
                "kind": "MEMORY_STORE",
                "config": {
                    "content": "The user's favourite colour is {{ inputs.colour }}.",
                    "metadata": {"source": "workflow"},
                },
            },
            {
                "key": "find",
                "kind": "MEMORY_SEARCH",
                "config": {"query": "favourite colour", "limit": 1},
                "dependsOn": ["save"],
            },
            {
                "key": "advise",
                "kind": "AGENT",
                "agentCapability": "writing",
                "config": {"instruction": "Suggest how to calm the cat during a thunderstorm."},
                "dependsOn": ["find"],
            },
        ],
    )
    done = run(gql, token, "recall", {"colour": "teal"})
    assert done["status"] == "SUCCEEDED", done
    outputs = {s["stepKey"]: s["output"] for s in done["steps"]}
    saved, found = outputs["save"], outputs["find"]
    assert (
        saved["outcome"] == "CREATED" and saved["content"] == "The user's favourite colour is teal."
    )
    assert found[0]["content"] == saved["content"] and found[0]["rank"] == 1
    (agent_call,) = llm_fake.requests["openai"]
    prompt = agent_call["messages"][1]["content"]
    assert "## Relevant memories" in prompt and "Miso" in prompt
    hits = search(gql, token, "favourite colour", l=1)
    assert hits[0]["memory"]["metadata"] == {"source": "workflow"}


def test_memory_step_rights_are_the_owners(gql: GQL) -> None:
    token = gql.member()
    create(
        gql,
        token,
        "sneaky",
        [{"key": "g", "kind": "MEMORY_STORE", "config": {"content": "x", "scope": "GLOBAL"}}],
    )
    done = run(gql, token, "sneaky")
    assert done["status"] == "FAILED" and "FORBIDDEN" in done["steps"][0]["error"]
    bad = gql.error(
        "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
        {
            "i": {
                "key": "k",
                "version": "1.0.0",
                "name": "k",
                "steps": [
                    {
                        "key": "s",
                        "kind": "MEMORY_STORE",
                        "config": {"content": "x", "type": "FOREVER"},
                    }
                ],
            }
        },
        token=token,
    )
    assert bad["extensions"]["field"] == "steps[0].config.type"
