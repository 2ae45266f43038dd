"""Workflow definitions, executions, step executions and schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cognitionos.db.base import Base, TimestampMixin, UUIDPrimaryKey
from cognitionos.db.models.auth import _enum

__all__ = [
    "ExecutionStatus",
    "Schedule",
    "ScheduleKind",
    "StepExecution",
    "StepStatus",
    "Workflow",
    "WorkflowExecution",
]


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.CANCELLED,
        )


class StepStatus(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    WAITING_APPROVAL = "WAITING_APPROVAL"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (
            StepStatus.SUCCEEDED,
            StepStatus.FAILED,
            StepStatus.SKIPPED,
            StepStatus.CANCELLED,
        )


class ScheduleKind(StrEnum):
    CRON = "CRON"
    INTERVAL = "INTERVAL"
    ONCE = "ONCE"


class Workflow(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("key", "version", name="uq_workflows_key_version"),
        Index("ix_workflows_key_semver", "key", "major", "minor", "patch"),
    )

    key: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    major: Mapped[int]
    minor: Mapped[int]
    patch: Mapped[int]
    # Pre-releases sort before the release they precede.
    is_release: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    input_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class WorkflowExecution(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "workflow_executions"
    __table_args__ = (
        Index(
            "uq_workflow_executions_idempotency",
            "created_by",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_workflow_executions_status", "status"),
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[ExecutionStatus] = mapped_column(
        _enum(ExecutionStatus, "execution_status"), default=ExecutionStatus.PENDING
    )
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    tokens: Mapped[int] = mapped_column(default=0)
    # The version of the execution's last event: the row lock makes it the stream's counter.
    event_version: Mapped[int] = mapped_column(default=0)
    # Steps QUEUED, RUNNING or RETRYING: while above 0 the execution cannot be finished.
    active_steps: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StepExecution(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "step_executions"
    __table_args__ = (
        UniqueConstraint("execution_id", "step_key", name="uq_step_executions_execution_step"),
        # The reconciler's scan: only live steps are indexed.
        Index(
            "ix_step_executions_live",
            "status",
            "lease_expires_at",
            postgresql_where=text("status IN ('QUEUED', 'RUNNING', 'RETRYING')"),
        ),
    )

    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    step_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    depends_on: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    status: Mapped[StepStatus] = mapped_column(
        _enum(StepStatus, "step_status"), default=StepStatus.PENDING
    )
    attempt: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    # Bumped on every dispatch; the arq job id carries it, so a stale job is a no-op.
    dispatch_seq: Mapped[int] = mapped_column(default=0)
    dispatched_at: Mapped[datetime | None]
    lease_losses: Mapped[int] = mapped_column(default=0)  # workers that died running it
    # W3C trace context (traceparent, tracestate) its dispatch carried: a re-dispatch by
    # the reconciler carries it again (observability/tracing.py).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    agent_id: Mapped[uuid.UUID | None]
    resolved_inputs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    output: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    tokens: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Schedule(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "next_run_at", postgresql_where=text("enabled")),)

    workflow_key: Mapped[str] = mapped_column(String(100))
    workflow_version: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[ScheduleKind] = mapped_column(_enum(ScheduleKind, "schedule_kind"))
    expression: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_execution_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
