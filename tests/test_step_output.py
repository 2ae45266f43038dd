"""stepOutput and stepOutputChunks over real websockets, with LLM steps on the fake."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.llm_fake import FakeLLM, Reply
from tests.support import EXECUTE, GQL, LiveServer
from tests.test_agent_steps import llm_step
from tests.test_workflows import create, run
from tests.ws_support import WS

OUTPUT = "subscription($id: ID!) { stepOutput(stepExecutionId: $id) }"
CHUNKS = """subscription($id: ID!) { stepOutputChunks(stepExecutionId: $id) {
    attempt text done status } }"""
APPROVE = """mutation($id: ID!) { approveStep(stepExecutionId: $id, approved: true) { status } }"""


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def gated(gql: GQL, token: str, key: str, **step: Any) -> tuple[str, str, str]:
    """An LLM step behind an approval gate, started: (execution, gate, LLM step) ids.
    Nothing streams until the gate is approved, so a subscriber can be there first."""
    gate = {"key": "gate", "kind": "APPROVAL", "config": {"prompt": "Go?"}}
    create(gql, token, key, [gate, {**llm_step(**step), "dependsOn": ["gate"]}])
    started = gql.ok(EXECUTE, {"input": {"workflowKey": key, "inputs": {"name": "x"}}}, token=token)
    execution_id = started["executeWorkflow"]["id"]
    waiting = gql.wait_execution(execution_id, token)
    ids = {s["stepKey"]: s["id"] for s in waiting["steps"]}
    return execution_id, ids["gate"], ids["ask"]


def texts(payloads: list[dict[str, Any]]) -> list[str]:
    return [p["data"]["stepOutput"] for p in payloads]


async def test_a_late_subscriber_gets_the_text_so_far_then_the_rest(
    engine_server: LiveServer, gql: GQL, llm_fake: FakeLLM
) -> None:
    token = await asyncio.to_thread(gql.member)
    execution_id, gate, step_id = gated(gql, token, "late")
    text = "one two three four five six seven eight nine ten"
    llm_fake.script("openai", Reply(text, delay=0.2))
    async with WS(engine_server.url) as early, WS(engine_server.url) as late:
        await early.init(token)
        await late.init(token)
        await early.subscribe("s", OUTPUT, {"id": step_id})
        await asyncio.sleep(0.3)  # subscribed before anything streams
        gql.ok(APPROVE, {"id": gate}, token=token)
        head = texts(await early.collect("s", limit=3))
        await late.subscribe("s", OUTPUT, {"id": step_id})  # three tokens in
        from_late = texts(await late.collect("s"))  # completes when the attempt ends
        from_early = head + texts(await early.collect("s"))
    done = await asyncio.to_thread(gql.wait_execution, execution_id, token)
    output = next(s for s in done["steps"] if s["stepKey"] == "ask")["output"]
    assert output == text
    assert "".join(from_early) == text
    assert "".join(from_late) == text  # no gap, no duplicate
    assert from_late[0].startswith("".join(head))  # what was said so far comes first
    assert len(from_late) > 1  # then the rest, as it streamed


async def test_a_finished_step_gives_its_output_and_completes(
    engine_server: LiveServer, gql: GQL, llm_fake: FakeLLM
) -> None:
    token = await asyncio.to_thread(gql.member)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    geo = {**llm_step("geo", outputSchema=schema), "dependsOn": ["ask"]}
    create(gql, token, "over", [llm_step(), geo])
    llm_fake.script("openai", Reply("All done here."), Reply('{"city": "Oslo"}'))
    done = await asyncio.to_thread(run, gql, token, "over", {"name": "x"})
    ids = {s["stepKey"]: s["id"] for s in done["steps"]}
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("text", OUTPUT, {"id": ids["ask"]})
        assert texts(await ws.collect("text")) == ["All done here."]
        await ws.subscribe("json", OUTPUT, {"id": ids["geo"]})
        (whole,) = texts(await ws.collect("json"))
        assert json.loads(whole) == {"city": "Oslo"}
        await ws.subscribe("chunks", CHUNKS, {"id": ids["ask"]})
        chunks = [p["data"]["stepOutputChunks"] for p in await ws.collect("chunks")]
    assert chunks == [{"attempt": 1, "text": "All done here.", "done": True, "status": "SUCCEEDED"}]


async def test_a_retry_is_a_new_attempt_the_client_can_tell_apart(
    engine_server: LiveServer, gql: GQL, llm_fake: FakeLLM
) -> None:
    token = await asyncio.to_thread(gql.member)
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    execution_id, gate, step_id = gated(
        gql,
        token,
        "again",
        outputSchema=schema,
        retry={"maxAttempts": 2, "initialDelaySeconds": 0.2},
    )
    first, second = '{"town": "Paris"}', '{"city": "Paris"}'
    llm_fake.script("openai", Reply(first, delay=0.05), Reply(second, delay=0.05))
    async with WS(engine_server.url) as chunked, WS(engine_server.url) as plain:
        await chunked.init(token)
        await plain.init(token)
        await chunked.subscribe("c", CHUNKS, {"id": step_id})
        await plain.subscribe("o", OUTPUT, {"id": step_id})
        await asyncio.sleep(0.3)  # both subscribed while the step waits for the gate
        gql.ok(APPROVE, {"id": gate}, token=token)
        chunks = [p["data"]["stepOutputChunks"] for p in await chunked.collect("c")]
        one_attempt = texts(await plain.collect("o"))
    by_attempt: dict[int, str] = {}
    for chunk in chunks:
        if not chunk["done"]:
            by_attempt[chunk["attempt"]] = by_attempt.get(chunk["attempt"], "") + chunk["text"]
    assert by_attempt == {1: first, 2: second}
    ends = [(c["attempt"], c["status"]) for c in chunks if c["done"]]
    assert ends == [(1, "RETRYING"), (2, "SUCCEEDED")]
    assert chunks[-1]["done"]  # the subscription ended with the step
    # Attempt 1's chunks all come before its end, attempt 2's after it.
    boundary = next(i for i, c in enumerate(chunks) if c["done"])
    assert {c["attempt"] for c in chunks[:boundary]} == {1}
    assert {c["attempt"] for c in chunks[boundary + 1 :]} == {2}
    # stepOutput follows one attempt: it completed when the first one ended.
    assert "".join(one_attempt) == first
    done = await asyncio.to_thread(gql.wait_execution, execution_id, token)
    assert next(s for s in done["steps"] if s["stepKey"] == "ask")["output"] == {"city": "Paris"}


async def first_message(ws: WS, op_id: str) -> dict[str, Any]:
    while True:
        message = await ws.recv()
        if message.get("id") == op_id:
            return message


@pytest.mark.parametrize("document", [OUTPUT, CHUNKS], ids=["stepOutput", "stepOutputChunks"])
async def test_another_members_step_output_is_refused_and_bad_ids_are_clear(
    engine_server: LiveServer, gql: GQL, document: str
) -> None:
    owner = await asyncio.to_thread(gql.member, "owner@example.com")
    nosy = await asyncio.to_thread(gql.member, "nosy@example.com")
    _, _, step_id = await asyncio.to_thread(gated, gql, owner, "private")
    async with WS(engine_server.url) as ws:
        await ws.init(nosy)
        cases = {
            "theirs": (step_id, {"FORBIDDEN", "NOT_FOUND"}),
            "unknown": ("00000000-0000-0000-0000-000000000007", {"NOT_FOUND"}),
            "malformed": ("not-an-id", {"BAD_USER_INPUT"}),
        }
        for op_id, (target, codes) in cases.items():
            await ws.subscribe(op_id, document, {"id": target})
            message = await first_message(ws, op_id)
            errors = (
                message["payload"]
                if message["type"] == "error"
                else message["payload"].get("errors") or []
            )
            assert errors, message  # no data for someone else's step, ever
            assert errors[0]["extensions"]["code"] in codes, message
            assert "data" not in message["payload"] or not message["payload"]["data"]
