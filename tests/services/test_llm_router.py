"""The router through the real OpenAI and Anthropic SDKs, against the wire-format fake."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.db.models import LLMUsage, Role, User
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BudgetExceeded, LLMUnavailable
from cognitionos.services.llm import (
    ChatRequest,
    Router,
    UsageGroup,
    UsageTag,
    set_budget,
    summarize_usage,
)
from tests.conftest import Stack
from tests.llm_fake import FakeLLM, Reply

pytestmark = pytest.mark.usefixtures("llm_fake")

ASK = ChatRequest(
    messages=[{"role": "user", "content": "Say hello"}], system="Be brief.", max_tokens=50
)


@pytest.fixture
async def sessionmaker(stack: Stack) -> AsyncIterator[Any]:
    engine = create_engine(stack.database_url, pool_size=2)
    yield create_sessionmaker(engine)
    await engine.dispose()


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_router(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any, **overrides: Any
) -> tuple[Router, Sleeps]:
    values = {
        **llm_fake.settings(),
        "llm_fallbacks": ["anthropic:claude-haiku-4-5"],
        "llm_max_retries": 2,
        **overrides,
    }
    sleeps = Sleeps()
    return Router(stack.settings(**values), sessionmaker, sleep=sleeps), sleeps


async def usage_rows(sessionmaker: Any) -> list[LLMUsage]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(LLMUsage).order_by(LLMUsage.created_at))).all())


async def test_openai_streams_tokens_and_records_usage_and_cost(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("openai", Reply("Hello there, friend.", tokens_in=1000, tokens_out=2000))
    seen: list[str] = []

    async def on_token(text: str) -> None:
        seen.append(text)

    result = await router.complete(
        ASK, tag=UsageTag("TEST"), model="gpt-4o-mini", on_token=on_token
    )
    await router.aclose()
    assert result.text == "Hello there, friend."
    assert seen == ["Hello ", "there, ", "friend."]
    assert (result.provider, result.model, result.tokens_in, result.tokens_out) == (
        "openai",
        "gpt-4o-mini",
        1000,
        2000,
    )
    # gpt-4o-mini: $0.15 in and $0.60 out per million tokens.
    assert result.cost_usd == Decimal("0.001350")
    sent = llm_fake.requests["openai"][0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_completion_tokens"] == 50
    assert llm_fake.headers["openai"][0]["authorization"] == "Bearer sk-test-openai"
    (row,) = await usage_rows(sessionmaker)
    assert (row.provider, row.model, row.tokens_in, row.tokens_out, row.success) == (
        "openai",
        "gpt-4o-mini",
        1000,
        2000,
        True,
    )
    assert row.cost_usd == Decimal("0.001350") and row.latency_ms > 0


async def test_anthropic_streams_with_usage_from_its_events(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("anthropic", Reply("Bonjour tout le monde", tokens_in=40, tokens_out=7))
    seen: list[str] = []

    async def on_token(text: str) -> None:
        seen.append(text)

    result = await router.complete(
        ASK, tag=UsageTag("TEST"), model="claude-haiku-4-5", on_token=on_token
    )
    await router.aclose()
    assert (result.text, result.provider, result.tokens_in, result.tokens_out) == (
        "Bonjour tout le monde",
        "anthropic",
        40,
        7,
    )
    assert "".join(seen) == "Bonjour tout le monde" and len(seen) == 4
    sent = llm_fake.requests["anthropic"][0]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 50 and sent["stream"] is True
    headers = llm_fake.headers["anthropic"][0]
    # The key travels as x-api-key or, in newer SDKs, a bearer token.
    assert "sk-ant-test" in headers.get("x-api-key", headers.get("authorization", ""))
    assert "anthropic-version" in headers
    # claude-haiku-4-5: $1 in, $5 out per million.
    assert result.cost_usd == Decimal("0.000075")


async def test_429_with_retry_after_is_waited_out_then_succeeds(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, sleeps = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script(
        "openai",
        Reply("slow down", status=429, headers={"retry-after": "1.5"}),
        Reply("finally"),
    )
    result = await router.complete(ASK, tag=UsageTag("TEST"), model="gpt-4o-mini")
    await router.aclose()
    assert result.text == "finally" and result.provider == "openai"
    assert sleeps == [1.5]  # the server's Retry-After, not our backoff
    assert len(result.failed_attempts) == 1 and "429" in result.failed_attempts[0]
    rows = await usage_rows(sessionmaker)
    assert [r.success for r in rows] == [False, True]
    assert rows[0].cost_usd == 0 and "429" in (rows[0].error or "")


async def test_500s_exhaust_retries_then_fall_back_to_anthropic(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, sleeps = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("openai", *[Reply("boom", status=500)] * 3)
    llm_fake.script("anthropic", Reply("from claude"))
    result = await router.complete(ASK, tag=UsageTag("TEST"), model="gpt-4o-mini")
    await router.aclose()
    assert (result.text, result.provider, result.model) == (
        "from claude",
        "anthropic",
        "claude-haiku-4-5",
    )
    assert llm_fake.calls("openai") == 3 and llm_fake.calls("anthropic") == 1
    assert len(sleeps) == 2 and all(0 < s <= 2.0 for s in sleeps)  # backoff with jitter
    rows = await usage_rows(sessionmaker)
    assert [(r.provider, r.success) for r in rows] == [
        ("openai", False),
        ("openai", False),
        ("openai", False),
        ("anthropic", True),
    ]


async def test_a_400_is_not_retried_and_a_long_retry_after_moves_on(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, sleeps = make_router(stack, llm_fake, sessionmaker, llm_retry_max_seconds=5)
    llm_fake.script("openai", Reply("bad request", status=400))
    assert (await router.complete(ASK, tag=UsageTag("T"), model="gpt-4o")).provider == "anthropic"
    llm_fake.script("openai", Reply("later", status=429, headers={"retry-after": "600"}))
    assert (await router.complete(ASK, tag=UsageTag("T"), model="gpt-4o")).provider == "anthropic"
    await router.aclose()
    assert llm_fake.calls("openai") == 2 and sleeps == []


async def test_every_provider_failing_is_a_transient_llm_unavailable(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker, llm_max_retries=0)
    llm_fake.script("openai", Reply("down", status=503))
    llm_fake.script("anthropic", Reply("overloaded", status=529))
    with pytest.raises(LLMUnavailable) as caught:
        await router.complete(ASK, tag=UsageTag("T"), model="gpt-4o-mini")
    await router.aclose()
    assert caught.value.transient
    assert "openai:gpt-4o-mini" in caught.value.message and "529" in caught.value.message


async def test_no_provider_configured_names_the_settings(stack: Stack, sessionmaker: Any) -> None:
    router = Router(stack.settings(), sessionmaker)
    with pytest.raises(LLMUnavailable) as caught:
        await router.complete(ASK, tag=UsageTag("T"))
    assert not caught.value.transient
    for setting in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "COGNITIONOS_LLM_COMPATIBLE_BASE_URL"):
        assert setting in caught.value.message


async def test_compatible_server_unknown_price_is_null_not_zero_unless_configured(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker)
    result = await router.complete(ASK, tag=UsageTag("T"), model="compatible:llama3.1:8b")
    assert (result.provider, result.model, result.cost_usd) == ("compatible", "llama3.1:8b", None)
    assert llm_fake.requests["compatible"][0]["max_tokens"] == 50  # the field such servers read
    await router.aclose()
    priced, _ = make_router(stack, llm_fake, sessionmaker, llm_prices={"llama3.1": [1.0, 2.0]})
    llm_fake.script("compatible", Reply("x y", tokens_in=1_000_000, tokens_out=500_000))
    result = await priced.complete(ASK, tag=UsageTag("T"), model="compatible:llama3.1:8b")
    await priced.aclose()
    assert result.cost_usd == Decimal("2.000000")
    rows = await usage_rows(sessionmaker)
    assert [r.cost_usd for r in rows] == [None, Decimal("2.000000")]


async def test_budget_blocks_the_call_before_any_request(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user_id = uuid.uuid4()
    admin = Principal(user_id=uuid.uuid4(), role=Role.ADMIN)
    async with sessionmaker() as session:
        session.add(User(id=user_id, email="b@x.io", password_hash="x", full_name="B"))
        await session.commit()
        await set_budget(session, principal=admin, user_id=user_id, monthly_usd=Decimal("0.001"))
    router, _ = make_router(stack, llm_fake, sessionmaker)
    tag = UsageTag("T", user_id=user_id)
    llm_fake.script("openai", Reply("a b", tokens_in=10_000, tokens_out=0))  # $0.0015
    await router.complete(ASK, tag=tag, model="gpt-4o-mini")  # starts under budget: allowed
    with pytest.raises(BudgetExceeded) as caught:
        await router.complete(ASK, tag=tag, model="gpt-4o-mini")
    await router.aclose()
    assert llm_fake.calls("openai") == 1  # nothing was sent for the refused call
    assert "budget" in caught.value.message
    async with sessionmaker() as session:
        (mine,) = await summarize_usage(
            session,
            principal=admin,
            since=None,
            until=None,
            group_by=[UsageGroup.USER, UsageGroup.MODEL],
        )
    assert mine.key == {"USER": str(user_id), "MODEL": "gpt-4o-mini"}
    assert (mine.calls, mine.tokens_in, mine.cost_usd) == (1, 10_000, Decimal("0.0015"))


CITY = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
ASK_JSON = ChatRequest(
    messages=[{"role": "user", "content": "Where is the Louvre?"}],
    system="Be brief.",
    max_tokens=50,
    output_schema=CITY,
    schema_name="place",
)
PROSE = "It is in Paris, of course."
JSON_ANSWER = '{"city": "Paris"}'


async def test_a_server_without_a_usage_block_gets_estimated_counts_marked_so(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    """llama.cpp's server streams no usage: the counts are estimated, never 0, and an
    unpriced model's cost stays unknown in every summary."""
    llm_fake.usage = False
    router, _ = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("compatible", Reply("Hello there, friend."))  # 20 bytes: 5 tokens
    result = await router.complete(ASK, tag=UsageTag("T"), model="compatible:gemma-3-270m")
    await router.aclose()
    assert llm_fake.requests["compatible"][0]["stream_options"] == {"include_usage": True}
    assert result.tokens_estimated and result.tokens_out == 5
    # "Be brief." (3) and "Say hello" (3), each with 4 for the chat framing.
    assert result.tokens_in == 14 and result.cost_usd is None
    (row,) = await usage_rows(sessionmaker)
    assert (row.tokens_in, row.tokens_out, row.tokens_estimated, row.cost_usd) == (
        14,
        5,
        True,
        None,
    )
    async with sessionmaker() as session:
        (total,) = await summarize_usage(
            session,
            principal=Principal(user_id=uuid.uuid4(), role=Role.ADMIN),
            since=None,
            until=None,
            group_by=[],
        )
    assert (total.calls, total.tokens_in, total.tokens_out) == (1, 14, 5)
    assert (total.cost_usd, total.unpriced_calls, total.estimated_calls) == (None, 1, 1)


async def test_a_zero_price_makes_a_local_model_cost_zero_not_unknown(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    llm_fake.usage = False
    router, _ = make_router(stack, llm_fake, sessionmaker, llm_prices={"gemma": [0, 0]})
    result = await router.complete(ASK, tag=UsageTag("T"), model="compatible:gemma-3-270m")
    await router.aclose()
    assert result.cost_usd == Decimal(0) and result.tokens_estimated
    async with sessionmaker() as session:
        (total,) = await summarize_usage(
            session,
            principal=Principal(user_id=uuid.uuid4(), role=Role.ADMIN),
            since=None,
            until=None,
            group_by=[UsageGroup.MODEL],
        )
    assert (total.cost_usd, total.unpriced_calls, total.estimated_calls) == (0, 0, 1)


async def test_openai_gets_the_schema_as_response_format_json_schema(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("openai", Reply(PROSE, structured=JSON_ANSWER))
    result = await router.complete(ASK_JSON, tag=UsageTag("T"), model="gpt-4o-mini")
    await router.aclose()
    assert result.text == JSON_ANSWER
    assert (result.output_mode, result.structured_fallback) == ("json_schema", None)
    sent = llm_fake.requests["openai"][0]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": CITY},
    }
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}  # no schema text
    (row,) = await usage_rows(sessionmaker)
    assert (row.output_mode, row.tokens_estimated) == ("json_schema", False)


async def test_a_schema_that_is_not_an_object_travels_wrapped_and_comes_back_bare(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker)
    names = {"type": "array", "items": {"type": "string"}}
    llm_fake.script("openai", Reply(PROSE, structured='{"value": ["Ada", "Grace"]}'))
    request = ChatRequest(messages=[{"role": "user", "content": "Two names"}], output_schema=names)
    result = await router.complete(request, tag=UsageTag("T"), model="gpt-4o-mini")
    await router.aclose()
    assert result.text == '["Ada", "Grace"]'
    sent = llm_fake.requests["openai"][0]["response_format"]["json_schema"]["schema"]
    assert sent["properties"] == {"value": names} and sent["required"] == ["value"]


async def test_anthropic_structured_output_is_a_forced_tool_streamed_as_input_json(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("anthropic", Reply(PROSE, structured='{"city": "Paris", "country": "FR"}'))
    seen: list[str] = []

    async def on_token(text: str) -> None:
        seen.append(text)

    result = await router.complete(
        ASK_JSON, tag=UsageTag("T"), model="claude-haiku-4-5", on_token=on_token
    )
    await router.aclose()
    assert result.text == '{"city": "Paris", "country": "FR"}'
    assert "".join(seen) == result.text and len(seen) == 4  # the tool input as it streamed
    assert (result.output_mode, result.tokens_estimated) == ("tool", False)
    sent = llm_fake.requests["anthropic"][0]
    assert sent["tools"] == [
        {
            "name": "place",
            "description": "Give your answer as this tool's input.",
            "input_schema": CITY,
        }
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "place"}


async def test_a_server_refusing_json_schema_gets_json_object_with_the_schema(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    """llama-cpp-python's server takes response_format json_object with a schema only."""
    llm_fake.refuse = {"json_schema"}
    router, sleeps = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("compatible", Reply(PROSE, structured=JSON_ANSWER))
    llm_fake.script("compatible", Reply(PROSE, structured=JSON_ANSWER))
    model = "compatible:llama-cpp-python"
    first = await router.complete(ASK_JSON, tag=UsageTag("T"), model=model)
    second = await router.complete(ASK_JSON, tag=UsageTag("T"), model=model)
    await router.aclose()
    assert first.text == second.text == JSON_ANSWER and sleeps == []
    assert first.output_mode == second.output_mode == "json_object"
    formats = [r["response_format"]["type"] for r in llm_fake.requests["compatible"]]
    assert formats == ["json_schema", "json_object", "json_object"]  # the refusal is known
    assert llm_fake.requests["compatible"][1]["response_format"]["schema"] == CITY
    rows = await usage_rows(sessionmaker)
    assert [(r.output_mode, r.success) for r in rows] == [
        ("json_schema", False),
        ("json_object", True),
        ("json_object", True),
    ]
    assert "response_format type 'json_schema' is not supported" in (rows[0].error or "")


async def test_a_model_refusing_every_native_way_is_asked_in_the_prompt_and_says_so(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    llm_fake.refuse = {"json_schema", "json_object", "tool"}
    router, _ = make_router(stack, llm_fake, sessionmaker)
    llm_fake.script("compatible", Reply(JSON_ANSWER))
    result = await router.complete(ASK_JSON, tag=UsageTag("T"), model="compatible:tiny")
    llm_fake.script("anthropic", Reply(JSON_ANSWER))
    claude = await router.complete(ASK_JSON, tag=UsageTag("T"), model="claude-haiku-4-5")
    await router.aclose()
    assert result.text == claude.text == JSON_ANSWER
    assert result.output_mode == claude.output_mode == "prompt"
    assert "compatible:tiny refused json_object" in (result.structured_fallback or "")
    assert "anthropic:claude-haiku-4-5 refused tool" in (claude.structured_fallback or "")
    last = llm_fake.requests["compatible"][-1]
    assert "response_format" not in last
    system = last["messages"][0]["content"]
    assert system.startswith("Be brief.\n\nAnswer with one JSON value that matches")
    assert '"required":["city"]' in system
    assert "tools" not in llm_fake.requests["anthropic"][-1]
    rows = await usage_rows(sessionmaker)
    assert [r.output_mode for r in rows if r.success] == ["prompt", "prompt"]


async def test_structured_output_turned_off_describes_the_schema_in_the_prompt(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    router, _ = make_router(stack, llm_fake, sessionmaker, llm_structured_output=False)
    llm_fake.script("openai", Reply(JSON_ANSWER, structured="never sent"))
    result = await router.complete(ASK_JSON, tag=UsageTag("T"), model="gpt-4o-mini")
    await router.aclose()
    assert (result.text, result.output_mode) == (JSON_ANSWER, "prompt")
    assert "COGNITIONOS_LLM_STRUCTURED_OUTPUT" in (result.structured_fallback or "")
    (sent,) = llm_fake.requests["openai"]
    assert "response_format" not in sent and "JSON Schema" in sent["messages"][0]["content"]
