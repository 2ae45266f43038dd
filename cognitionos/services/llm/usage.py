"""The ``llm_usage`` ledger, its summaries, and per-user monthly budgets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cognitionos.db.models import Budget, LLMUsage
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, BudgetExceeded, Forbidden

__all__ = [
    "Budget",
    "UsageGroup",
    "UsageRow",
    "check_budget",
    "get_budget",
    "month_start",
    "set_budget",
    "spent_this_month",
    "summarize_usage",
]


def month_start(at: datetime | None = None) -> datetime:
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _month_spend(user_id: uuid.UUID) -> Select[Any]:
    return select(func.coalesce(func.sum(LLMUsage.cost_usd), 0)).where(
        LLMUsage.user_id == user_id, LLMUsage.created_at >= month_start()
    )


async def spent_this_month(session: AsyncSession, user_id: uuid.UUID) -> Decimal:
    return Decimal(await session.scalar(_month_spend(user_id)) or 0)


async def check_budget(session: AsyncSession | AsyncConnection, user_id: uuid.UUID) -> None:
    """BUDGET_EXCEEDED when this month's spend has reached the user's budget."""
    row = (
        await session.execute(
            select(Budget.monthly_usd, _month_spend(user_id).scalar_subquery()).where(
                Budget.user_id == user_id
            )
        )
    ).first()
    if row is None:
        return
    limit, spent = Decimal(row[0]), Decimal(row[1] or 0)
    if spent >= limit:
        raise BudgetExceeded(
            f"monthly LLM budget of ${limit} is used up (${spent:.4f} spent this month)",
            budgetUsd=str(limit),
            spentUsd=f"{spent:.6f}",
        )


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
        stmt = insert(Budget).values(user_id=user_id, monthly_usd=monthly_usd)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Budget.user_id], set_={"monthly_usd": monthly_usd}
            )
        )
    await session.commit()
    return monthly_usd


class UsageGroup(StrEnum):
    PROVIDER = "PROVIDER"
    MODEL = "MODEL"
    USER = "USER"
    PURPOSE = "PURPOSE"
    DAY = "DAY"


_COLUMNS: dict[UsageGroup, Any] = {
    UsageGroup.PROVIDER: LLMUsage.provider,
    UsageGroup.MODEL: LLMUsage.model,
    UsageGroup.USER: LLMUsage.user_id,
    UsageGroup.PURPOSE: LLMUsage.purpose,
    UsageGroup.DAY: func.to_char(func.timezone("UTC", LLMUsage.created_at), "YYYY-MM-DD"),
}


@dataclass(frozen=True)
class UsageRow:
    key: dict[str, str | None]
    calls: int
    failures: int
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    unpriced_calls: int  # successful calls whose model has no known price


async def summarize_usage(
    session: AsyncSession,
    *,
    principal: Principal,
    since: datetime | None,
    until: datetime | None,
    group_by: list[UsageGroup],
) -> list[UsageRow]:
    """Totals per group; members see their own calls, admins everyone's."""
    groups = list(dict.fromkeys(group_by))
    columns = [_COLUMNS[g].label(g.value.lower()) for g in groups]
    stmt = select(
        *columns,
        func.count().label("calls"),
        func.count().filter(LLMUsage.success.is_(False)).label("failures"),
        func.coalesce(func.sum(LLMUsage.tokens_in), 0),
        func.coalesce(func.sum(LLMUsage.tokens_out), 0),
        func.coalesce(func.sum(LLMUsage.cost_usd), 0),
        func.count().filter(LLMUsage.success.is_(True), LLMUsage.cost_usd.is_(None)),
    )
    if not principal.is_admin:
        stmt = stmt.where(LLMUsage.user_id == principal.user_id)
    if since is not None:
        stmt = stmt.where(LLMUsage.created_at >= since)
    if until is not None:
        stmt = stmt.where(LLMUsage.created_at < until)
    if columns:
        stmt = stmt.group_by(*columns).order_by(*columns)
    rows = (await session.execute(stmt)).all()
    out = []
    for row in rows:
        key = {g.value: (None if row[i] is None else str(row[i])) for i, g in enumerate(groups)}
        n = len(groups)
        calls, failures, tin, tout, cost, unpriced = row[n:]
        if not calls and not columns:
            continue
        out.append(
            UsageRow(
                key=key,
                calls=calls,
                failures=failures,
                tokens_in=int(tin),
                tokens_out=int(tout),
                cost_usd=Decimal(cost),
                unpriced_calls=unpriced,
            )
        )
    return out


async def get_budget(session: AsyncSession, user_id: uuid.UUID) -> tuple[Decimal | None, Decimal]:
    """The user's monthly budget (None: unlimited) and this month's spend."""
    monthly = await session.scalar(select(Budget.monthly_usd).where(Budget.user_id == user_id))
    return (Decimal(monthly) if monthly is not None else None), await spent_this_month(
        session, user_id
    )
