"""Per-user monthly budgets, enforced by reserving a call's cost before it is sent.

A budgeted user's call first reserves what it may cost at most: its prompt (and output
schema) counted at one token per UTF-8 byte (a token covers at least one byte, so this
bounds the count) plus per-message overhead, and its full ``max_tokens`` answer, at the
dearest price along the fallback chain. Reserving is one statement (the
``reserve_llm_budget`` function of migration 0006) that locks the user's budget row, so
concurrent calls queue there and each sees the others' reservations: a call is refused
(``BUDGET_EXCEEDED``) when this month's recorded spend, the reservations of calls in
flight and its own would pass the budget. When the call answers, the statement that writes
its real cost to ``llm_usage`` drops the reservation; when it fails or is cancelled, a
``finally`` drops it. A reservation expires once the call cannot be running any more
(every attempt timed out), so one left by a worker that died mid-call stops counting on
its own.

A model without a price cannot be charged to a budget, so it is refused for budgeted users
(``COGNITIONOS_LLM_PRICES`` gives it one); users without a budget are not affected.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Delete, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cognitionos.db.base import utcnow
from cognitionos.db.models import Budget, BudgetReservation, User
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, BudgetExceeded, Forbidden, NotFound
from cognitionos.services.llm.pricing import cost_of
from cognitionos.services.llm.structured import prompt_instruction
from cognitionos.services.llm.types import ChatRequest
from cognitionos.services.llm.usage import month_start, month_usage

__all__ = [
    "Estimate",
    "estimate",
    "get_budget",
    "release",
    "released",
    "reserve",
    "set_budget",
]

_MESSAGE_OVERHEAD = 8  # role markers and separators a provider adds per message


def _usd(amount: Decimal) -> str:
    """$2.50, $0.0001: cents at least, no trailing zeros beyond."""
    text = f"{amount:.6f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.partition(".")[2]))


def prompt_tokens_bound(request: ChatRequest) -> int:
    """At most this many input tokens: one per byte, plus framing per message. An output
    schema counts too: sent natively, providers bill it as prompt; else it is in the
    system prompt (with a sentence around it)."""
    texts = [request.system or "", *(m.get("content") or "" for m in request.messages)]
    if request.output_schema is not None:
        texts.append(prompt_instruction(request.output_schema))
    return sum(len(t.encode()) for t in texts) + _MESSAGE_OVERHEAD * len(texts)


@dataclass(frozen=True)
class Estimate:
    """The most a call may cost: ``usd`` for ``tokens_in`` + ``tokens_out`` at ``model``
    (None: ``model``, the one asked for, has no price)."""

    usd: Decimal | None
    model: str
    tokens_in: int
    tokens_out: int


def estimate(
    request: ChatRequest,
    models: Sequence[str],
    *,
    max_tokens: int,
    prices: dict[str, list[float]],
) -> Estimate:
    """The dearest of ``models`` (the call's chain, the one asked for first) for this
    request; fallbacks without a price are the caller's to leave out."""
    tokens_in = prompt_tokens_bound(request)
    worst = Estimate(None, models[0], tokens_in, max_tokens)
    for model in models:
        usd = cost_of(model, tokens_in, max_tokens, prices)
        if usd is None:
            if model == models[0]:
                return worst
            continue
        if worst.usd is None or usd > worst.usd:
            worst = Estimate(usd, model, tokens_in, max_tokens)
    return worst


async def reserve(
    conn: AsyncConnection, user_id: uuid.UUID, cost: Estimate, *, ttl_seconds: float
) -> uuid.UUID | None:
    """Hold ``cost`` against the user's budget in one statement (``reserve_llm_budget``,
    migration 0006), or raise ``BUDGET_EXCEEDED``. Returns the reservation to settle or
    ``release``; None when the user has no budget."""
    row = (
        await conn.execute(
            select(
                func.reserve_llm_budget(
                    user_id,
                    cost.usd,
                    utcnow() + timedelta(seconds=ttl_seconds),
                    month_start(),
                    type_=None,
                ).table_valued("reservation", "monthly_usd", "spent_usd", "reserved_usd")
            )
        )
    ).first()
    if row is None:
        return None
    reservation, limit, spent, reserved = row
    if reservation is not None:
        return uuid.UUID(str(reservation))
    if cost.usd is None:
        raise BudgetExceeded(
            f"model {cost.model!r} has no price, so its calls cannot be counted against your "
            "monthly LLM budget: give it one in COGNITIONOS_LLM_PRICES "
            '(e.g. {"' + cost.model + '": [0.5, 1.5]}, USD per million tokens in and out)',
            model=cost.model,
        )
    limit, spent, reserved = Decimal(limit), Decimal(spent), Decimal(reserved)
    raise BudgetExceeded(
        f"monthly LLM budget of ${_usd(limit)} would be exceeded: this call may cost up to "
        f"${_usd(cost.usd)} ({cost.tokens_in} prompt and {cost.tokens_out} answer tokens at "
        f"{cost.model}'s price), with ${_usd(spent)} spent this month and ${_usd(reserved)} "
        "held by calls in progress",
        budgetUsd=str(limit),
        spentUsd=f"{spent:.6f}",
        reservedUsd=f"{reserved:.6f}",
        requestedUsd=str(cost.usd),
    )


def released(user_id: uuid.UUID, reservation: uuid.UUID) -> Delete:
    """Drop the reservation, and the user's expired ones with it. Run on its own
    (``release``), or as a CTE of the statement that records the call's real cost."""
    return delete(BudgetReservation).where(
        or_(
            BudgetReservation.id == reservation,
            (BudgetReservation.user_id == user_id) & (BudgetReservation.expires_at <= func.now()),
        )
    )


async def release(conn: AsyncConnection, user_id: uuid.UUID, reservation: uuid.UUID) -> None:
    """Give the reservation back without recording anything (the call did not answer)."""
    await conn.execute(released(user_id, reservation))


_MAX_BUDGET = Decimal(10**8)


async def set_budget(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, monthly_usd: Decimal | None
) -> Decimal | None:
    """Set (or with None, remove) a user's monthly budget. Admins only; commits."""
    if not principal.is_admin:
        raise Forbidden("only admins set budgets")
    if monthly_usd is None:
        await session.execute(delete(Budget).where(Budget.user_id == user_id))
    else:
        if monthly_usd < 0:
            raise BadUserInput("a budget cannot be negative", field="monthlyUsd")
        if monthly_usd >= _MAX_BUDGET:  # the column's range: numeric(12, 4)
            raise BadUserInput(
                f"a budget must be below {_MAX_BUDGET:,} USD a month", field="monthlyUsd"
            )
        if await session.get(User, user_id) is None:
            raise NotFound(f"user {user_id} not found")
        stmt = pg_insert(Budget).values(user_id=user_id, monthly_usd=monthly_usd)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Budget.user_id], set_={"monthly_usd": monthly_usd}
            )
        )
    await session.commit()
    return monthly_usd


async def get_budget(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[Decimal | None, Decimal | None, int]:
    """The user's monthly budget (None: unlimited), this month's spend (None: every call
    was of a model without a price) and how many of this month's calls had no price."""
    monthly = await session.scalar(select(Budget.monthly_usd).where(Budget.user_id == user_id))
    spent, unpriced = await month_usage(session, user_id)
    return (Decimal(monthly) if monthly is not None else None), spent, unpriced
