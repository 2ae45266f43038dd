"""Budgets hold: each call reserves its most possible cost before it is sent, so parallel
calls cannot overspend, and the reservation is given back however the call ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.db.base import utcnow
from cognitionos.db.models import BudgetReservation, LLMUsage, Role, User
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BudgetExceeded, LLMUnavailable
from cognitionos.services.llm import ChatRequest, ChatResult, Router, UsageTag, set_budget
from tests.conftest import Stack
from tests.llm_fake import FakeLLM, Reply

pytestmark = pytest.mark.usefixtures("llm_fake")

# Input is free and an answer token costs a cent, so a call that may answer 100 tokens
# reserves exactly $1.00, and a call that uses all 100 costs exactly that.
PRICES = {"gpt-4o-mini": [0.0, 10_000.0]}
ASK = ChatRequest(messages=[{"role": "user", "content": "Say hello"}], max_tokens=100)
FULL = Reply("every token used", tokens_in=10, tokens_out=100)
ADMIN = Principal(user_id=uuid.uuid4(), role=Role.ADMIN)


@pytest.fixture
async def sessionmaker(stack: Stack) -> AsyncIterator[Any]:
    engine = create_engine(stack.database_url, pool_size=4)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def router(stack: Stack, llm_fake: FakeLLM, sessionmaker: Any) -> AsyncIterator[Router]:
    built = Router(
        stack.settings(
            **llm_fake.settings(),
            llm_fallbacks=["anthropic:claude-haiku-4-5"],
            llm_max_retries=0,
            llm_prices=PRICES,
        ),
        sessionmaker,
    )
    yield built
    await built.aclose()


async def make_user(sessionmaker: Any, budget: str | None) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with sessionmaker() as session:
        session.add(User(id=user_id, email=f"{user_id.hex[:8]}@x.io", password_hash="x"))
        await session.commit()
        if budget is not None:
            await set_budget(session, principal=ADMIN, user_id=user_id, monthly_usd=Decimal(budget))
    return user_id


async def spent(sessionmaker: Any, user_id: uuid.UUID) -> Decimal:
    async with sessionmaker() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(LLMUsage.cost_usd), 0)).where(LLMUsage.user_id == user_id)
        )
    return Decimal(total)


async def reservations(sessionmaker: Any) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(BudgetReservation)) or 0)


async def test_ten_parallel_calls_against_a_budget_for_two_cannot_overspend(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "2.50")
    # Slow answers keep the admitted calls in flight while the others ask.
    llm_fake.script(
        "openai", *[Reply(FULL.text, tokens_in=10, tokens_out=100, first_delay=0.3)] * 10
    )
    outcomes = await asyncio.gather(
        *(
            router.complete(ASK, tag=UsageTag("T", user_id=user), model="gpt-4o-mini")
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    answered = [o for o in outcomes if isinstance(o, ChatResult)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    assert (len(answered), len(refused)) == (2, 8), outcomes
    assert llm_fake.calls("openai") == 2  # the refused ones never reached the provider
    assert all(r.code == "BUDGET_EXCEEDED" and "$2.50" in r.message for r in refused)
    assert await spent(sessionmaker, user) == Decimal("2.00")  # never past the budget
    assert await reservations(sessionmaker) == 0
    # Spend is settled at the real cost: what is left ($0.50) is too little for another call.
    with pytest.raises(BudgetExceeded) as caught:
        await router.complete(ASK, tag=UsageTag("T", user_id=user), model="gpt-4o-mini")
    assert caught.value.extensions["spentUsd"] == "2.000000"
    assert caught.value.extensions["requestedUsd"] == "1.000000"


async def test_the_real_cost_is_settled_so_cheap_answers_leave_room(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "1.50")
    tag = UsageTag("T", user_id=user)
    llm_fake.script("openai", *[Reply("short", tokens_in=10, tokens_out=10)] * 5)
    for _ in range(5):  # each reserves $1.00 but costs $0.10
        await router.complete(ASK, tag=tag, model="gpt-4o-mini")
    assert await spent(sessionmaker, user) == Decimal("0.50")
    llm_fake.script("openai", FULL)
    await router.complete(ASK, tag=tag, model="gpt-4o-mini")  # 0.50 + 1.00 fits exactly
    with pytest.raises(BudgetExceeded):
        await router.complete(ASK, tag=tag, model="gpt-4o-mini")
    assert await spent(sessionmaker, user) == Decimal("1.50")


async def test_the_prompt_is_reserved_too(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "1.00")
    router = Router(
        stack.settings(**llm_fake.settings(), llm_prices={"gpt-4o-mini": [10_000.0, 0.0]}),
        sessionmaker,
    )
    long = ChatRequest(messages=[{"role": "user", "content": "word " * 40}], max_tokens=10)
    with pytest.raises(BudgetExceeded, match="prompt") as caught:
        await router.complete(long, tag=UsageTag("T", user_id=user), model="gpt-4o-mini")
    await router.aclose()
    assert Decimal(caught.value.extensions["requestedUsd"]) > Decimal("1.00")
    assert llm_fake.calls("openai") == 0


async def test_an_unpriced_model_is_refused_with_a_budget_and_allowed_without(
    stack: Stack, router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    budgeted = await make_user(sessionmaker, "100")
    free = await make_user(sessionmaker, None)
    model = "compatible:llama3.1:8b"
    with pytest.raises(BudgetExceeded) as caught:
        await router.complete(ASK, tag=UsageTag("T", user_id=budgeted), model=model)
    assert "llama3.1:8b" in caught.value.message
    assert "COGNITIONOS_LLM_PRICES" in caught.value.message
    assert llm_fake.calls("compatible") == 0
    result = await router.complete(ASK, tag=UsageTag("T", user_id=free), model=model)
    assert result.provider == "compatible" and result.cost_usd is None
    assert await reservations(sessionmaker) == 0
    priced = Router(
        stack.settings(**llm_fake.settings(), llm_prices={"llama3.1": [0.1, 0.1]}), sessionmaker
    )
    result = await priced.complete(ASK, tag=UsageTag("T", user_id=budgeted), model=model)
    await priced.aclose()
    assert result.cost_usd is not None


async def test_an_unpriced_fallback_is_skipped_for_a_budgeted_user(
    stack: Stack, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    budgeted = await make_user(sessionmaker, "100")
    router = Router(
        stack.settings(
            **llm_fake.settings(), llm_fallbacks=["compatible:llama3.1:8b"], llm_max_retries=0
        ),
        sessionmaker,
    )
    llm_fake.script("openai", Reply("down", status=503))
    with pytest.raises(LLMUnavailable):
        await router.complete(ASK, tag=UsageTag("T", user_id=budgeted), model="gpt-4o-mini")
    await router.aclose()
    assert llm_fake.calls("compatible") == 0


async def test_a_failed_call_gives_its_reservation_back(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "1.50")
    tag = UsageTag("T", user_id=user)
    llm_fake.script("openai", Reply("bad", status=400))
    llm_fake.script("anthropic", Reply("overloaded", status=529))
    with pytest.raises(LLMUnavailable):
        await router.complete(ASK, tag=tag, model="gpt-4o-mini")
    assert await reservations(sessionmaker) == 0
    # Had the failed call kept its $1.00, this one ($1.00 more of $1.50) would be refused.
    llm_fake.script("openai", FULL)
    assert (await router.complete(ASK, tag=tag, model="gpt-4o-mini")).cost_usd == Decimal("1")


async def test_a_call_cancelled_mid_stream_gives_its_reservation_back(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "1.50")
    tag = UsageTag("T", user_id=user)
    llm_fake.script("openai", Reply("never finished", first_delay=30))
    call = asyncio.create_task(router.complete(ASK, tag=tag, model="gpt-4o-mini"))
    for _ in range(1000):  # until the call is reserved and in flight
        if await reservations(sessionmaker) and llm_fake.calls("openai"):
            break
        await asyncio.sleep(0.02)
    assert await reservations(sessionmaker) == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await reservations(sessionmaker) == 0
    llm_fake.script("openai", FULL)
    await router.complete(ASK, tag=tag, model="gpt-4o-mini")


async def test_a_dead_workers_reservation_stops_counting_when_it_expires(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "1.50")
    tag = UsageTag("T", user_id=user)
    async with sessionmaker() as session:
        # What a worker killed mid-call leaves behind: one past its expiry, one not yet.
        for expires in (timedelta(seconds=-1), timedelta(minutes=10)):
            await session.execute(
                insert(BudgetReservation).values(
                    id=uuid.uuid4(), user_id=user, amount_usd=1, expires_at=utcnow() + expires
                )
            )
        await session.commit()
    with pytest.raises(BudgetExceeded) as caught:
        await router.complete(ASK, tag=tag, model="gpt-4o-mini")
    assert caught.value.extensions["reservedUsd"] == "1.000000"  # only the live one counts
    async with sessionmaker() as session:
        await session.execute(
            update(BudgetReservation).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    llm_fake.script("openai", FULL)
    await router.complete(ASK, tag=tag, model="gpt-4o-mini")
    assert await reservations(sessionmaker) == 0  # settling also swept the expired ones


async def test_a_budget_as_large_as_the_column_allows_admits_calls(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, "99999999.9999")
    llm_fake.script("openai", FULL)
    result = await router.complete(ASK, tag=UsageTag("T", user_id=user), model="gpt-4o-mini")
    assert result.cost_usd == Decimal("1")


async def test_users_without_a_budget_are_not_reserved_for(
    router: Router, llm_fake: FakeLLM, sessionmaker: Any
) -> None:
    user = await make_user(sessionmaker, None)
    llm_fake.script("openai", *[FULL] * 3)
    for _ in range(3):
        await router.complete(ASK, tag=UsageTag("T", user_id=user), model="gpt-4o-mini")
    assert await spent(sessionmaker, user) == Decimal("3.00")
    assert await reservations(sessionmaker) == 0
