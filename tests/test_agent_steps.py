"""LLM and AGENT steps run by the engine against the fake providers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.llm_fake import FakeLLM, Reply
from tests.support import EXECUTE, GQL, LiveServer
from tests.test_agents_api import AGENTS, NEW_PROMPT, UPDATE, admin
from tests.test_workflows import create, run
from tests.ws_support import WS

STEP = """query($id: ID!) { execution(id: $id) { status costUsd tokens
    steps { id stepKey status attempt agent output error costUsd tokens } } }"""


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def events(gql: GQL, token: str, execution_id: str) -> list[dict[str, Any]]:
    return gql.ok(  # type: ignore[no-any-return]
        "query($id: ID!) { events(streamId: $id) { type data } }",
        {"id": execution_id},
        token=token,
    )["events"]


def llm_step(key: str = "ask", retry: Any = None, **config: Any) -> dict[str, Any]:
    step = {"key": key, "kind": "LLM", "config": {"prompt": "Hi {{ inputs.name }}", **config}}
    return {**step, "retry": retry} if retry else step


def agent_step(key: str, capability: str, instruction: str, *deps: str, **extra: Any) -> Any:
    return {
        "key": key,
        "kind": "AGENT",
        "agentCapability": capability,
        "config": {"instruction": instruction, **extra.pop("config", {})},
        "dependsOn": list(deps),
        **extra,
    }


def test_llm_step_validates_json_output_retries_and_costs(gql: GQL, llm_fake: FakeLLM) -> None:
    token = gql.member()
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    create(
        gql,
        token,
        "geo",
        [llm_step(outputSchema=schema, retry={"maxAttempts": 2, "initialDelaySeconds": 0.1})],
    )
    llm_fake.script(
        "openai",
        Reply('{"town": "Paris"}', tokens_in=100, tokens_out=10),
        Reply('{"city": "Paris"}', tokens_in=100_000, tokens_out=10_000),
    )
    done = run(gql, token, "geo", {"name": "Ada"})
    assert done["status"] == "SUCCEEDED", done
    (step,) = done["steps"]
    assert step["output"] == {"city": "Paris"} and step["attempt"] == 2
    first, second = llm_fake.requests["openai"]
    assert first["messages"] == [{"role": "user", "content": "Hi Ada"}]
    assert "'city' is a required property" in second["messages"][0]["content"]
    retrying = [e for e in events(gql, token, done["id"]) if e["type"] == "STEP_RETRYING"]
    assert "does not match the output schema" in retrying[0]["data"]["error"]
    costs = gql.ok(STEP, {"id": done["id"]}, token=token)["execution"]
    # gpt-4o-mini: 100k in at $0.15/M + 10k out at $0.60/M.
    assert costs["steps"][0]["costUsd"] == pytest.approx(0.021)
    assert costs["steps"][0]["tokens"] == 110_000
    assert (costs["costUsd"], costs["tokens"]) == (pytest.approx(0.021), 110_000)


CITY = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}


def test_llm_step_on_a_local_server_sends_its_schema_and_marks_estimated_tokens(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    """A server without a usage block and a model without a price: the schema is sent,
    the tokens are estimated (and say so), the cost is unknown, not 0."""
    llm_fake.usage = False
    token = gql.member()
    create(gql, token, "local", [llm_step(model="compatible:qwen-local", outputSchema=CITY)])
    llm_fake.script("compatible", Reply("Paris, I would say.", structured='{"city": "Paris"}'))
    done = run(gql, token, "local", {"name": "Ada"})
    assert done["status"] == "SUCCEEDED", done
    assert done["steps"][0]["output"] == {"city": "Paris"}
    (sent,) = llm_fake.requests["compatible"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "ask_output", "schema": CITY},
    }
    (succeeded,) = [e for e in events(gql, token, done["id"]) if e["type"] == "STEP_SUCCEEDED"]
    data = succeeded["data"]
    assert data["servedBy"] == ["compatible:qwen-local"]
    assert (data["outputModes"], data["tokensEstimated"]) == (["json_schema"], True)
    assert "structuredOutputFallback" not in data
    costs = gql.ok(STEP, {"id": done["id"]}, token=token)["execution"]
    # About 4 bytes a token: "Hi Ada" (2) and the schema's 84 bytes (21), each with 4 for
    # the chat framing, then '{"city": "Paris"}' (5).
    assert costs["steps"][0]["tokens"] == 36 and costs["tokens"] == 36
    assert costs["steps"][0]["costUsd"] is None and costs["costUsd"] is None


def test_llm_step_whose_server_refuses_structured_output_asks_in_the_prompt_and_says_so(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    llm_fake.refuse = {"json_schema", "json_object"}
    token = gql.member()
    create(gql, token, "old-server", [llm_step(model="compatible:old", outputSchema=CITY)])
    llm_fake.script("compatible", Reply('{"city": "Paris"}'))
    done = run(gql, token, "old-server", {"name": "Ada"})
    assert done["status"] == "SUCCEEDED", done
    assert done["steps"][0]["output"] == {"city": "Paris"}
    asked = llm_fake.requests["compatible"]
    assert [r.get("response_format", {}).get("type") for r in asked] == [
        "json_schema",
        "json_object",
        None,
    ]
    system = asked[-1]["messages"][0]
    assert system["role"] == "system" and '"required":["city"]' in system["content"]
    (succeeded,) = [e for e in events(gql, token, done["id"]) if e["type"] == "STEP_SUCCEEDED"]
    assert succeeded["data"]["outputModes"] == ["prompt"]
    (fallback,) = succeeded["data"]["structuredOutputFallback"]
    assert "compatible:old refused json_object" in fallback and "400" in fallback


def test_llm_step_on_anthropic_with_a_system_prompt(gql: GQL, llm_fake: FakeLLM) -> None:
    token = gql.member()
    create(gql, token, "claude", [llm_step(model="claude-haiku-4-5", system="Terse.")])
    llm_fake.script("anthropic", Reply("Hello Ada."))
    done = run(gql, token, "claude", {"name": "Ada"})
    assert done["steps"][0]["output"] == "Hello Ada."
    assert llm_fake.requests["anthropic"][0]["system"] == "Terse."
    assert llm_fake.calls("openai") == 0
    (succeeded,) = [e for e in events(gql, token, done["id"]) if e["type"] == "STEP_SUCCEEDED"]
    assert succeeded["data"]["servedBy"] == ["anthropic:claude-haiku-4-5"]


def test_llm_step_falls_back_and_the_event_log_says_who_answered(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    token = gql.member()
    create(gql, token, "fallback", [llm_step()])
    llm_fake.script("openai", Reply("down", status=500), Reply("still down", status=502))
    llm_fake.script("anthropic", Reply("Claude here."))
    done = run(gql, token, "fallback", {"name": "x"})
    assert done["steps"][0]["output"] == "Claude here."
    (succeeded,) = [e for e in events(gql, token, done["id"]) if e["type"] == "STEP_SUCCEEDED"]
    assert succeeded["data"]["servedBy"] == ["anthropic:claude-haiku-4-5"]


def test_an_agent_step_can_pin_a_prompt_version(gql: GQL, db: Any, llm_fake: FakeLLM) -> None:
    root = admin(gql, db)
    gql.ok(
        NEW_PROMPT,
        {"r": "EXECUTOR", "t": "You are {{ agent.name }}, speaking as pirate v2.", "a": False},
        token=root,
    )
    create(
        gql,
        root,
        "pinned",
        [
            agent_step("v1", "writing", "Greet.", config={}),
            agent_step("v2", "writing", "Greet.", "v1", config={"promptVersion": 2}),
        ],
    )
    assert run(gql, root, "pinned")["status"] == "SUCCEEDED"
    first, second = llm_fake.requests["openai"]
    assert "executor agent of CognitionOS" in first["messages"][0]["content"]
    assert second["messages"][0]["content"] == "You are executor, speaking as pirate v2."


async def test_agent_load_and_status_are_published_as_steps_run(
    engine_server: LiveServer, gql: GQL, llm_fake: FakeLLM
) -> None:
    token = await asyncio.to_thread(gql.member)
    create(gql, token, "busy", [agent_step("x", "analysis", "Think.")])
    llm_fake.responder = lambda provider, body: Reply("thought", first_delay=0.3)
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe(
            "a", "subscription { agentStatusChanged { name status currentLoad } }", {}
        )
        await asyncio.sleep(0.3)
        done = await asyncio.to_thread(run, gql, token, "busy")
        seen = await ws.collect("a", limit=2)
    assert done["status"] == "SUCCEEDED"
    assert [m["data"]["agentStatusChanged"] for m in seen] == [
        {"name": "executor", "status": "BUSY", "currentLoad": 1},
        {"name": "executor", "status": "IDLE", "currentLoad": 0},
    ]


async def test_tokens_stream_to_step_output_while_the_call_runs(
    engine_server: LiveServer, gql: GQL, llm_fake: FakeLLM
) -> None:
    token = await asyncio.to_thread(gql.member)
    create(gql, token, "stream", [llm_step()])
    text = "one two three four five six"
    llm_fake.script("openai", Reply(text, first_delay=1.0, delay=0.05))
    started = gql.ok(
        EXECUTE, {"input": {"workflowKey": "stream", "inputs": {"name": "x"}}}, token=token
    )
    execution_id = started["executeWorkflow"]["id"]
    running = await asyncio.to_thread(gql.wait_step, execution_id, token, "ask", "RUNNING")
    step_id = running["steps"][0]["id"]
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe(
            "s", "subscription($id: ID!) { stepOutput(stepExecutionId: $id) }", {"id": step_id}
        )
        seen = await ws.collect("s", limit=6)
    assert "".join(m["data"]["stepOutput"] for m in seen) == text
    done = await asyncio.to_thread(gql.wait_execution, execution_id, token)
    assert done["steps"][0]["output"] == text


def test_agent_step_gets_an_agent_the_context_and_releases_it(gql: GQL, llm_fake: FakeLLM) -> None:
    token = gql.member()
    create(
        gql,
        token,
        "brief",
        [
            {"key": "facts", "kind": "TRANSFORM", "config": {"template": '{"sky": "blue"}'}},
            agent_step("write", "writing", "Write one line about {{ inputs.topic }}.", "facts"),
        ],
    )
    llm_fake.script("openai", Reply("The sky is blue."))
    done = run(gql, token, "brief", {"topic": "the sky"})
    assert done["status"] == "SUCCEEDED", done
    outputs = {s["stepKey"]: s["output"] for s in done["steps"]}
    assert outputs["write"] == "The sky is blue."
    (sent,) = llm_fake.requests["openai"]
    system, user = sent["messages"]
    assert system["role"] == "system" and "You are executor" in system["content"]
    assert "Write one line about the sky." in user["content"]
    assert '"sky": "blue"' in user["content"] and "Output of step 'facts'" in user["content"]
    steps = gql.ok(STEP, {"id": done["id"]}, token=token)["execution"]["steps"]
    executor = gql.ok(AGENTS, {"f": {"role": "EXECUTOR"}}, token=token)["agents"][0]
    assert next(s for s in steps if s["stepKey"] == "write")["agent"] == executor["id"]
    assert (executor["status"], executor["currentLoad"]) == ("IDLE", 0)


def test_agent_steps_wait_for_a_free_agent_instead_of_failing(
    gql: GQL, db: Any, llm_fake: FakeLLM
) -> None:
    root = admin(gql, db)
    executor = gql.ok(AGENTS, {"f": {"role": "EXECUTOR"}}, token=root)["agents"][0]
    gql.ok(UPDATE, {"id": executor["id"], "i": {"maxConcurrency": 1}}, token=root)
    llm_fake.responder = lambda provider, body: Reply("written", first_delay=0.5)
    create(
        gql,
        root,
        "pair",
        [agent_step("a", "writing", "First."), agent_step("b", "writing", "Second.")],
    )
    done = run(gql, root, "pair")
    assert done["status"] == "SUCCEEDED", done
    assert [s["attempt"] for s in done["steps"]] == [1, 1]  # waiting used no attempt
    deferred = [e for e in events(gql, root, done["id"]) if e["type"] == "STEP_DEFERRED"]
    assert (
        deferred
        and "waiting for a free agent with capability 'writing'" in (deferred[0]["data"]["reason"])
    )
    after = gql.ok(AGENTS, {"f": {"role": "EXECUTOR"}}, token=root)["agents"][0]
    assert (after["status"], after["currentLoad"]) == ("IDLE", 0)


def test_agent_step_without_any_capable_agent_fails_at_once(gql: GQL) -> None:
    token = gql.member()
    create(
        gql,
        token,
        "lonely",
        [agent_step("x", "astrology", "Read the stars.", retry={"maxAttempts": 3})],
    )
    done = run(gql, token, "lonely")
    assert done["status"] == "FAILED"
    assert done["steps"][0]["attempt"] == 1
    assert "no agent has capability 'astrology'" in done["steps"][0]["error"]


def test_agent_step_without_capability_is_rejected_at_creation(gql: GQL) -> None:
    token = gql.member()
    error = gql.error(
        "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
        {
            "i": {
                "key": "k",
                "version": "1.0.0",
                "name": "k",
                "steps": [{"key": "x", "kind": "AGENT", "config": {"instruction": "Do."}}],
            }
        },
        token=token,
    )
    assert error["extensions"]["field"] == "steps[0].agentCapability"


def test_critic_below_threshold_makes_the_step_retry_with_the_critique(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    token = gql.member()
    create(
        gql,
        token,
        "reviewed",
        [
            agent_step(
                "essay",
                "writing",
                "Write a haiku about rain.",
                config={"critic": {"threshold": 0.8}},
                retry={"maxAttempts": 2, "initialDelaySeconds": 0.1},
            )
        ],
    )
    llm_fake.script(
        "openai",
        Reply("Rain falls."),
        Reply(json.dumps({"score": 0.3, "critique": "Not 5-7-5 syllables."})),
        Reply("Soft rain on the roof / whispers to the sleeping town / puddles hold the sky"),
        Reply(json.dumps({"score": 0.95, "critique": ""})),
    )
    done = run(gql, token, "reviewed")
    assert done["status"] == "SUCCEEDED", done
    assert done["steps"][0]["output"].startswith("Soft rain") and done["steps"][0]["attempt"] == 2
    requests = llm_fake.requests["openai"]
    assert "the critic of CognitionOS" in requests[1]["messages"][0]["content"]
    review = requests[1]["response_format"]["json_schema"]
    assert review["name"] == "review" and review["schema"]["required"] == ["score", "critique"]
    assert "response_format" not in requests[0]  # the agent's own answer is free text
    assert "Rain falls." in requests[1]["messages"][1]["content"]
    assert "Not 5-7-5 syllables." in requests[2]["messages"][1]["content"]  # the retry sees it


def test_repeated_provider_failures_trip_the_breaker_until_a_probe_succeeds(
    gql: GQL, db: Any, llm_fake: FakeLLM
) -> None:
    root = admin(gql, db)
    llm_fake.responder = lambda provider, body: Reply("down", status=503)
    create(
        gql,
        root,
        "doomed",
        [
            agent_step(
                "x", "analysis", "Analyse.", retry={"maxAttempts": 2, "initialDelaySeconds": 0.1}
            )
        ],
    )
    failed = run(gql, root, "doomed")
    assert failed["status"] == "FAILED"
    assert "every LLM provider failed" in failed["steps"][0]["error"]
    executor = gql.ok(AGENTS, {"f": {"role": "EXECUTOR"}}, token=root)["agents"][0]
    assert executor["status"] == "ERROR"  # two failed calls in a row (the threshold)

    llm_fake.responder = lambda provider, body: Reply("recovered")
    done = run(gql, root, "doomed")  # waits for the probe (1 s), which succeeds
    assert done["status"] == "SUCCEEDED" and done["steps"][0]["output"] == "recovered"
    executor = gql.ok(AGENTS, {"f": {"role": "EXECUTOR"}}, token=root)["agents"][0]
    assert executor["status"] == "IDLE"
