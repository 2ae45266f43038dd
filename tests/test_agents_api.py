"""Agents, prompts, budgets, usage and the planner over GraphQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.llm_fake import FakeLLM, Reply, default_plan
from tests.support import GQL, LiveServer
from tests.ws_support import WS

AGENT_FIELDS = (
    "id name role capabilities provider model promptVersion maxConcurrency currentLoad status"
)
AGENTS = f"query($f: AgentFilter) {{ agents(filter: $f) {{ {AGENT_FIELDS} }} }}"
REGISTER = f"mutation($i: AgentInput!) {{ registerAgent(input: $i) {{ {AGENT_FIELDS} }} }}"
UPDATE = f"""mutation($id: ID!, $i: UpdateAgentInput!) {{ updateAgent(id: $id, input: $i) {{
    {AGENT_FIELDS} lastError }} }}"""
PROMPTS = "query($r: AgentRole) { prompts(role: $r) { role version active template } }"
NEW_PROMPT = """mutation($r: AgentRole!, $t: String!, $a: Boolean!) {
    createPromptVersion(role: $r, template: $t, activate: $a) { role version active } }"""
PLAN = """mutation($g: String!, $k: String, $x: Boolean) {
    planWorkflow(goal: $g, key: $k, execute: $x) {
        key version name tags metadata steps { key kind agentCapability dependsOn }
        executions { id status } } }"""


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def admin(gql: GQL, db: Any, email: str = "admin@example.com") -> str:
    gql.register(email)
    db("UPDATE users SET role = 'ADMIN' WHERE email = $1", email)
    return str(gql.login(email).json()["data"]["login"]["accessToken"])


def test_first_start_has_the_four_default_agents_on_the_default_model(gql: GQL) -> None:
    token = gql.member()
    agents = gql.ok(AGENTS, token=token)["agents"]
    assert {(a["name"], a["role"]) for a in agents} == {
        ("planner", "PLANNER"),
        ("executor", "EXECUTOR"),
        ("critic", "CRITIC"),
        ("summarizer", "SUMMARIZER"),
    }
    assert {a["model"] for a in agents} == {"gpt-4o-mini"}
    assert all(a["status"] == "IDLE" and a["currentLoad"] == 0 for a in agents)
    critics = gql.ok(AGENTS, {"f": {"role": "CRITIC"}}, token=token)["agents"]
    assert [a["name"] for a in critics] == ["critic"]
    writers = gql.ok(AGENTS, {"f": {"capability": "writing"}}, token=token)["agents"]
    assert [a["name"] for a in writers] == ["executor"]
    assert gql.ok(AGENTS, {"f": {"status": "ERROR"}}, token=token)["agents"] == []


def test_register_and_update_agents_is_for_admins_with_clear_errors(gql: GQL, db: Any) -> None:
    token = admin(gql, db)
    spec = {
        "name": "translator",
        "role": "EXECUTOR",
        "capabilities": ["translation", " french "],
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "maxConcurrency": 2,
    }
    made = gql.ok(REGISTER, {"i": spec}, token=token)["registerAgent"]
    assert made["capabilities"] == ["french", "translation"]
    assert (made["provider"], made["model"], made["maxConcurrency"]) == (
        "anthropic",
        "claude-haiku-4-5",
        2,
    )
    assert gql.error(REGISTER, {"i": spec}, token=token)["extensions"]["code"] == "CONFLICT"
    bad = gql.error(REGISTER, {"i": {**spec, "name": "x", "temperature": 3.5}}, token=token)
    assert (bad["extensions"]["code"], bad["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "temperature",
    )
    bad = gql.error(REGISTER, {"i": {**spec, "name": "y", "provider": "acme"}}, token=token)
    assert bad["extensions"]["field"] == "provider"
    member = gql.member("m@example.com")
    denied = gql.error(REGISTER, {"i": {**spec, "name": "z"}}, token=member)
    assert denied["extensions"]["code"] == "FORBIDDEN"

    updated = gql.ok(
        UPDATE, {"id": made["id"], "i": {"status": "OFFLINE", "promptVersion": 1}}, token=token
    )["updateAgent"]
    assert (updated["status"], updated["promptVersion"]) == ("OFFLINE", 1)
    bad = gql.error(UPDATE, {"id": made["id"], "i": {"status": "BUSY"}}, token=token)
    assert bad["extensions"]["field"] == "status"


async def test_agent_status_changes_reach_subscribers(
    engine_server: LiveServer, gql: GQL, db: Any
) -> None:
    token = await asyncio.to_thread(admin, gql, db)
    executor = gql.ok(AGENTS, {"f": {"role": "EXECUTOR"}}, token=token)["agents"][0]
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("a", "subscription { agentStatusChanged { name status } }", {})
        await asyncio.sleep(0.3)
        await asyncio.to_thread(
            gql.ok, UPDATE, {"id": executor["id"], "i": {"status": "OFFLINE"}}, token=token
        )
        (seen,) = await ws.collect("a", limit=1)
    assert seen["data"]["agentStatusChanged"] == {"name": "executor", "status": "OFFLINE"}


def test_prompts_are_versioned_per_role(gql: GQL, db: Any) -> None:
    token = admin(gql, db)
    prompts = gql.ok(PROMPTS, token=token)["prompts"]
    assert {(p["role"], p["version"], p["active"]) for p in prompts} == {
        (role, 1, True) for role in ("PLANNER", "EXECUTOR", "CRITIC", "SUMMARIZER")
    }
    planner_v1 = next(p for p in prompts if p["role"] == "PLANNER")["template"]
    assert "JSON" in planner_v1 and "dependsOn" in planner_v1
    v2 = gql.ok(
        NEW_PROMPT, {"r": "CRITIC", "t": "Score it, {{ agent.name }}.", "a": False}, token=token
    )
    assert v2["createPromptVersion"] == {"role": "CRITIC", "version": 2, "active": False}
    v3 = gql.ok(NEW_PROMPT, {"r": "CRITIC", "t": "Score it again.", "a": True}, token=token)
    assert v3["createPromptVersion"]["version"] == 3
    critic = gql.ok(PROMPTS, {"r": "CRITIC"}, token=token)["prompts"]
    assert [(p["version"], p["active"]) for p in critic] == [(3, True), (2, False), (1, False)]
    broken = gql.error(NEW_PROMPT, {"r": "CRITIC", "t": "{{ unclosed", "a": True}, token=token)
    assert (broken["extensions"]["code"], broken["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "template",
    )
    member = gql.member("m2@example.com")
    denied = gql.error(NEW_PROMPT, {"r": "CRITIC", "t": "x", "a": True}, token=member)
    assert denied["extensions"]["code"] == "FORBIDDEN"


def test_plan_workflow_repairs_invalid_plans_and_records_its_origin(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    token = gql.member()
    cyclic = default_plan()
    cyclic["steps"][0]["dependsOn"] = ["write"]
    llm_fake.script(
        "openai",
        Reply("Sure! Here is a plan: research, then write."),  # not JSON
        Reply(json.dumps(cyclic)),  # a cycle
        Reply("```json\n" + json.dumps(default_plan()) + "\n```"),
    )
    workflow = gql.ok(PLAN, {"g": "Explain tides to a child", "k": "tides"}, token=token)[
        "planWorkflow"
    ]
    assert (workflow["key"], workflow["version"], workflow["tags"]) == (
        "tides",
        "1.0.0",
        ["planned"],
    )
    assert [s["key"] for s in workflow["steps"]] == ["research", "write"]
    plan = workflow["metadata"]["plan"]
    assert plan["goal"] == "Explain tides to a child"
    assert (plan["agent"], plan["promptVersion"], plan["repairs"]) == ("planner", 1, 2)
    assert (plan["provider"], plan["model"]) == ("openai", "gpt-4o-mini")
    assert workflow["executions"] == []
    first, second, third = llm_fake.requests["openai"]
    assert "the planner of CognitionOS" in first["messages"][0]["content"]
    assert "research" in first["messages"][0]["content"]  # capabilities are listed
    assert "not JSON" in second["messages"][-1]["content"]
    assert "dependency cycle" in third["messages"][-1]["content"]
    again = gql.ok(PLAN, {"g": "Explain tides to a child", "k": "tides"}, token=token)
    assert again["planWorkflow"]["version"] == "1.1.0"  # a new version, never an overwrite


def test_plan_workflow_gives_up_after_two_repairs_with_the_errors(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    token = gql.member()
    unknown = {"steps": [{"key": "a", "kind": "TELEPORT", "config": {}}]}
    llm_fake.script("openai", *[Reply(json.dumps(unknown))] * 3)
    error = gql.error(PLAN, {"g": "Go to Mars"}, token=token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(error["extensions"]["errors"]) == 3
    assert "unknown kind 'TELEPORT'" in error["message"]
    assert llm_fake.calls("openai") == 3


def planner_on(gql: GQL, db: Any, provider: str, model: str) -> None:
    """Put the planner agent on another model (a model of its own keeps what the router
    learns about it, e.g. a refusal of structured output, to this test)."""
    root = admin(gql, db, "planner-admin@example.com")
    (planner,) = gql.ok(AGENTS, {"f": {"role": "PLANNER"}}, token=root)["agents"]
    gql.ok(UPDATE, {"id": planner["id"], "i": {"provider": provider, "model": model}}, token=root)


def test_plan_workflow_with_a_small_model_succeeds_because_the_schema_is_sent(
    gql: GQL, llm_fake: FakeLLM
) -> None:
    """The fake answers like a small model: prose, unless the schema is sent natively."""
    llm_fake.small_model = True
    token = gql.member()
    workflow = gql.ok(PLAN, {"g": "Explain tides", "k": "tides-small"}, token=token)["planWorkflow"]
    assert [s["key"] for s in workflow["steps"]] == ["research", "write"]
    plan = workflow["metadata"]["plan"]
    assert (plan["repairs"], plan["outputMode"]) == (0, "json_schema")
    assert "structuredOutputFallback" not in plan
    (sent,) = llm_fake.requests["openai"]
    assert sent["max_completion_tokens"] == 1024  # COGNITIONOS_PLANNER_MAX_TOKENS
    answer_format = sent["response_format"]
    assert (answer_format["type"], answer_format["json_schema"]["name"]) == (
        "json_schema",
        "workflow",
    )
    schema = answer_format["json_schema"]["schema"]
    assert schema["required"] == ["name", "description", "steps"]
    kinds = schema["properties"]["steps"]["items"]["anyOf"]
    agent = kinds[0]["properties"]
    assert agent["kind"] == {"type": "string", "enum": ["AGENT"]}
    assert {"research", "writing"} <= set(agent["agentCapability"]["enum"])  # the real ones


def test_plan_workflow_whose_model_refuses_the_schema_falls_back_and_fails_clearly(
    gql: GQL, db: Any, llm_fake: FakeLLM
) -> None:
    """The same small model behind a server that refuses response_format: the schema goes
    in the prompt, the model answers prose, and planWorkflow lists why each answer failed."""
    planner_on(gql, db, "openai", "gpt-4o-mini-refuses")
    llm_fake.small_model = True
    llm_fake.refuse = {"json_schema"}
    token = gql.member()
    error = gql.error(PLAN, {"g": "Explain tides"}, token=token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    problems = error["extensions"]["errors"]
    assert len(problems) == 3 and all("the answer is not JSON" in p for p in problems)
    formats = [r.get("response_format", {}).get("type") for r in llm_fake.requests["openai"]]
    assert formats == ["json_schema", None, None, None]  # refused once, then remembered
    assert (
        "Answer with one JSON value that matches"
        in llm_fake.requests["openai"][1]["messages"][0]["content"]
    )
    rows = db(
        "SELECT output_mode, success, error FROM llm_usage WHERE purpose = 'PLANNER' "
        "ORDER BY created_at"
    )
    assert [(r["output_mode"], r["success"]) for r in rows] == [
        ("json_schema", False),
        ("prompt", True),
        ("prompt", True),
        ("prompt", True),
    ]
    assert "response_format type 'json_schema' is not supported" in rows[0]["error"]


def test_plan_workflow_on_a_local_server_like_llama_cpp(
    gql: GQL, db: Any, llm_fake: FakeLLM
) -> None:
    """llama-cpp-python's server: no usage block, json_object with a schema only (another
    type is a 500), a model without a price: the plan is valid at once (no retry of the
    500), its tokens estimated, its cost unknown (not 0)."""
    planner_on(gql, db, "compatible", "gemma-3-270m-it")
    llm_fake.small_model, llm_fake.usage, llm_fake.refuse = True, False, {"json_schema"}
    llm_fake.refusal_status = 500  # what llama-cpp-python answers to a json_schema type
    token = gql.member()
    workflow = gql.ok(PLAN, {"g": "Explain tides", "k": "tides-local"}, token=token)["planWorkflow"]
    plan = workflow["metadata"]["plan"]
    assert (plan["provider"], plan["model"], plan["outputMode"]) == (
        "compatible",
        "gemma-3-270m-it",
        "json_object",
    )
    assert "refused json_schema" in plan["structuredOutputFallback"]
    assert [s["key"] for s in workflow["steps"]] == ["research", "write"]
    assert llm_fake.requests["compatible"][-1]["max_tokens"] == 1024
    usage = gql.ok(
        """{ llmUsage(groupBy: [MODEL]) { model calls failures tokensIn tokensOut costUsd
            unpricedCalls estimatedCalls } }""",
        token=token,
    )["llmUsage"]
    (row,) = usage
    assert (row["model"], row["calls"], row["failures"]) == ("gemma-3-270m-it", 2, 1)
    assert row["tokensIn"] > 100 and row["tokensOut"] > 50  # estimated, never 0
    assert (row["costUsd"], row["unpricedCalls"], row["estimatedCalls"]) == (None, 1, 1)
    budget = gql.ok("{ budget { spentUsd unpricedCalls } }", token=token)["budget"]
    assert budget == {"spentUsd": None, "unpricedCalls": 1}


def test_plan_workflow_without_a_provider_names_the_settings(server: LiveServer) -> None:
    token = server.gql.member()
    error = server.gql.error(PLAN, {"g": "Anything"}, token=token)
    assert error["extensions"]["code"] == "LLM_UNAVAILABLE"
    assert "OPENAI_API_KEY" in error["message"]


def test_budgets_and_usage_summaries(gql: GQL, db: Any, llm_fake: FakeLLM) -> None:
    token = admin(gql, db)
    member = gql.register("spender@example.com")
    member_token, member_id = member["accessToken"], member["user"]["id"]
    budget = gql.ok(
        """mutation($u: ID!, $m: Decimal) {
            setBudget(userId: $u, monthlyUsd: $m) { userId monthlyUsd spentUsd } }""",
        {"u": member_id, "m": "0.02"},
        token=token,
    )["setBudget"]
    assert budget == {"userId": member_id, "monthlyUsd": 0.02, "spentUsd": 0.0}
    # A plan reserves about a cent (its prompt, the plan's schema and the answer limit at
    # the fallback's price); this one costs $0.01206, after which another no longer fits.
    llm_fake.script("openai", Reply(json.dumps(default_plan()), tokens_in=80000, tokens_out=100))
    gql.ok(PLAN, {"g": "First plan"}, token=member_token)
    refused = gql.error(PLAN, {"g": "Second plan"}, token=member_token)
    assert refused["extensions"]["code"] == "BUDGET_EXCEEDED"
    mine = gql.ok("{ budget { monthlyUsd spentUsd unpricedCalls } }", token=member_token)
    assert mine["budget"] == {"monthlyUsd": 0.02, "spentUsd": 0.01206, "unpricedCalls": 0}
    usage = gql.ok(
        """{ llmUsage(groupBy: [PROVIDER, MODEL, PURPOSE]) {
            provider model purpose calls tokensIn tokensOut costUsd unpricedCalls } }""",
        token=member_token,
    )["llmUsage"]
    assert usage == [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "purpose": "PLANNER",
            "calls": 1,
            "tokensIn": 80000,
            "tokensOut": 100,
            "costUsd": 0.01206,
            "unpricedCalls": 0,
        }
    ]
    assert gql.ok("{ llmUsage { calls } }", token=gql.member("other@example.com"))["llmUsage"] == []
    denied = gql.error(
        "mutation($u: ID!) { setBudget(userId: $u, monthlyUsd: 5) { userId } }",
        {"u": member_id},
        token=member_token,
    )
    assert denied["extensions"]["code"] == "FORBIDDEN"
