"""The ``llm_usage`` ledger and its summaries (budgets: ``budget.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models import LLMUsage
from cognitionos.services.auth import Principal

__all__ = [
    "UsageGroup",
    "UsageRow",
    "month_start",
    "month_usage",
    "summarize_usage",
]


def month_start(at: datetime | None = None) -> datetime:
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


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
    cost_usd: Decimal | None  # None: no call of the group has a known price
    unpriced_calls: int  # successful calls whose model has no known price
    estimated_calls: int  # successful calls whose token counts were estimated


async def month_usage(session: AsyncSession, user_id: uuid.UUID) -> tuple[Decimal | None, int]:
    """This month's cost of the user's calls (None: they were all of models without a
    price) and how many successful calls had no price."""
    row = (
        await session.execute(
            select(
                func.sum(LLMUsage.cost_usd).filter(LLMUsage.success.is_(True)),
                func.count().filter(LLMUsage.success.is_(True), LLMUsage.cost_usd.is_(None)),
            ).where(LLMUsage.user_id == user_id, LLMUsage.created_at >= month_start())
        )
    ).one()
    cost, unpriced = row
    if cost is None and not unpriced:
        cost = Decimal(0)
    return (None if cost is None else Decimal(cost)), int(unpriced)


async def summarize_usage(
    session: AsyncSession,
    *,
    principal: Principal,
    since: datetime | None,
    until: datetime | None,
    group_by: list[UsageGroup],
) -> list[UsageRow]:
    """Totals per group; members see their own calls, admins everyone's. A group's cost
    covers its priced calls; it is None (unknown, never 0) when every call that
    answered was of a model without a price."""
    groups = list(dict.fromkeys(group_by))
    columns = [_COLUMNS[g].label(g.value.lower()) for g in groups]
    stmt = select(
        *columns,
        func.count().label("calls"),
        func.count().filter(LLMUsage.success.is_(False)).label("failures"),
        func.coalesce(func.sum(LLMUsage.tokens_in), 0),
        func.coalesce(func.sum(LLMUsage.tokens_out), 0),
        func.sum(LLMUsage.cost_usd).filter(LLMUsage.success.is_(True)),
        func.count().filter(LLMUsage.success.is_(True), LLMUsage.cost_usd.is_(None)),
        func.count().filter(LLMUsage.success.is_(True), LLMUsage.tokens_estimated.is_(True)),
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
        calls, failures, tin, tout, cost, unpriced, estimated = row[n:]
        if not calls and not columns:
            continue
        if cost is None and not unpriced:
            cost = Decimal(0)  # only failed calls: nothing was charged
        out.append(
            UsageRow(
                key=key,
                calls=calls,
                failures=failures,
                tokens_in=int(tin),
                tokens_out=int(tout),
                cost_usd=None if cost is None else Decimal(cost),
                unpriced_calls=unpriced,
                estimated_calls=estimated,
            )
        )
    return out
