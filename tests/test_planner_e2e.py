"""A goal becomes a workflow and runs to the end on real worker processes, watched live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cognitionos.db import migrate
from cognitionos.embedded import EmbeddedRedis
from tests.conftest import LLM_SETTINGS, Stack
from tests.isolated import Isolated
from tests.llm_fake import FakeLLM
from tests.support import LiveServer
from tests.test_agents_api import PLAN
from tests.ws_support import WS

DATABASE = "cognitionos_planner"
UPDATES = """subscription($id: ID!) { executionUpdated(id: $id, after: 0) {
    position type execution { status } step { stepKey status output } } }"""


@pytest.fixture(scope="module")
def isolated(
    stack: Stack, llm_fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Isolated]:
    stack.postgres.ensure_database(DATABASE)
    migrate(stack.postgres.url(DATABASE))
    cache = EmbeddedRedis(tmp_path_factory.mktemp("planner-redis"))
    cache.start()
    engine = {
        "dispatch_grace_seconds": 1.0,
        "reconcile_interval_seconds": 0.3,
        **LLM_SETTINGS,
        **llm_fake.settings(),
    }
    yield Isolated(stack, cache, DATABASE, engine)
    cache.stop()


async def test_plan_workflow_execute_runs_on_worker_processes_and_streams_live(
    isolated: Isolated,
    make_server: Any,
    workers: list[Any],
    llm_fake: FakeLLM,
    tmp_path: Path,
) -> None:
    web: LiveServer = make_server(**isolated.settings())
    workers.append(isolated.worker(tmp_path / "worker-a.log"))
    workers.append(isolated.worker(tmp_path / "worker-b.log"))
    token = await asyncio.to_thread(web.gql.member, "planner-e2e@example.com")
    planned = await asyncio.to_thread(
        web.gql.ok, PLAN, {"g": "Explain why the sky is blue", "x": True}, token=token
    )
    workflow = planned["planWorkflow"]
    assert workflow["key"] == "plan-explain-why-the-sky-is-blue"
    assert [s["key"] for s in workflow["steps"]] == ["research", "write"]
    (execution,) = workflow["executions"]

    async with WS(web.url) as ws:
        await ws.init(token)
        await ws.subscribe("run", UPDATES, {"id": execution["id"]})
        payloads = await asyncio.wait_for(ws.collect("run"), 60)
    updates = [p["data"]["executionUpdated"] for p in payloads]
    positions = [u["position"] for u in updates]
    assert positions == sorted(set(positions))  # in order, no duplicates
    assert updates[-1]["type"] == "EXECUTION_SUCCEEDED"
    assert updates[-1]["execution"]["status"] == "SUCCEEDED"
    succeeded = {
        u["step"]["stepKey"]: u["step"]["output"] for u in updates if u["type"] == "STEP_SUCCEEDED"
    }
    assert succeeded == {
        "research": "done: List three facts about the goal.",
        "write": "done: Write a paragraph from the facts.",
    }
    planner_call, research_call, write_call = llm_fake.requests["openai"]
    assert "the planner of CognitionOS" in planner_call["messages"][0]["content"]
    assert "List three facts about the goal." in research_call["messages"][1]["content"]
    assert "Output of step 'research'" in write_call["messages"][1]["content"]
    assert "done: List three facts" in write_call["messages"][1]["content"]
