"""The ``llm_usage`` ledger and its summaries (budgets: ``budget.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models import LLMUsage
from cognitionos.services.auth import Principal

__all__ = [
    "UsageGroup",
    "UsageRow",
    "month_spend",
    "month_start",
    "spent_this_month",
    "summarize_usage",
]


def month_start(at: datetime | None = None) -> datetime:
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(user_id: uuid.UUID) -> Select[Any]:
    """This month's recorded cost of the user's calls (unpriced ones count 0)."""
    return select(func.coalesce(func.sum(LLMUsage.cost_usd), 0)).where(
        LLMUsage.user_id == user_id, LLMUsage.created_at >= month_start()
    )


async def spent_this_month(session: AsyncSession, user_id: uuid.UUID) -> Decimal:
    return Decimal(await session.scalar(month_spend(user_id)) or 0)


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
