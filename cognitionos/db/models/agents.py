"""Agents, versioned prompts, LLM usage and budgets."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint, false, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from cognitionos.db.base import Base, TimestampMixin, UUIDPrimaryKey
from cognitionos.db.models.auth import _enum

__all__ = ["Agent", "AgentRole", "AgentStatus", "Budget", "BudgetReservation", "LLMUsage", "Prompt"]


class AgentRole(StrEnum):
    PLANNER = "PLANNER"
    EXECUTOR = "EXECUTOR"
    CRITIC = "CRITIC"
    SUMMARIZER = "SUMMARIZER"


class AgentStatus(StrEnum):
    IDLE = "IDLE"
    BUSY = "BUSY"
    ERROR = "ERROR"
    OFFLINE = "OFFLINE"


class Agent(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[AgentRole] = mapped_column(_enum(AgentRole, "agent_role"))
    description: Mapped[str | None] = mapped_column(Text)
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    provider: Mapped[str | None] = mapped_column(String(32))  # None: inferred from the model
    model: Mapped[str] = mapped_column(String(100))
    prompt_version: Mapped[int | None]  # None: the role's active prompt
    temperature: Mapped[float] = mapped_column(default=0.2)
    max_tokens: Mapped[int | None]
    max_concurrency: Mapped[int] = mapped_column(default=4)
    current_load: Mapped[int] = mapped_column(default=0)
    status: Mapped[AgentStatus] = mapped_column(
        _enum(AgentStatus, "agent_status"), default=AgentStatus.IDLE
    )
    # Circuit breaker: consecutive failed calls; in ERROR, one probe is allowed after probe_at.
    failures: Mapped[int] = mapped_column(default=0)
    probe_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_assigned_at: Mapped[datetime | None]


class Prompt(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("role", "version", name="uq_prompts_role_version"),
        Index("uq_prompts_active", "role", unique=True, postgresql_where=text("active")),
    )

    role: Mapped[AgentRole] = mapped_column(_enum(AgentRole, "agent_role"))
    version: Mapped[int]
    template: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class LLMUsage(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_user_created", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    execution_id: Mapped[uuid.UUID | None]
    step_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    purpose: Mapped[str] = mapped_column(String(32))  # LLM_STEP, AGENT_STEP, CRITIC, PLANNER…
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100))
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    # The provider sent no usage block: the counts were estimated from the text.
    tokens_estimated: Mapped[bool] = mapped_column(default=False, server_default=false())
    # How JSON was asked for: json_schema, json_object, tool or prompt (None: it was not).
    output_mode: Mapped[str | None] = mapped_column(String(16))
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))  # None: price unknown
    latency_ms: Mapped[float]
    success: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)


class Budget(TimestampMixin, Base):
    __tablename__ = "budgets"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    monthly_usd: Mapped[Decimal] = mapped_column(Numeric(12, 4))


class BudgetReservation(UUIDPrimaryKey, Base):
    """What an LLM call in flight may still cost, held against its user's budget until the
    call settles. ``expires_at`` bounds the call's run time, so a crashed worker's
    reservation stops counting on its own."""

    __tablename__ = "budget_reservations"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    expires_at: Mapped[datetime]
