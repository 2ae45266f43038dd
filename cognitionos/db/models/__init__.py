"""ORM models, one module per domain."""

from __future__ import annotations

from cognitionos.db.models.agents import (
    Agent,
    AgentRole,
    AgentStatus,
    Budget,
    BudgetReservation,
    LLMUsage,
    Prompt,
)
from cognitionos.db.models.auth import ApiKey, AuditEvent, RefreshToken, Role, User, UserStatus
from cognitionos.db.models.events import Event
from cognitionos.db.models.memory import Memory, MemoryScope, MemoryType
from cognitionos.db.models.notifications import (
    Channel,
    Notification,
    NotificationPreference,
    NotificationStatus,
    NotificationTemplate,
    Priority,
)
from cognitionos.db.models.workflows import (
    ExecutionStatus,
    Schedule,
    ScheduleKind,
    StepExecution,
    StepStatus,
    Workflow,
    WorkflowExecution,
)

__all__ = [
    "Agent",
    "AgentRole",
    "AgentStatus",
    "ApiKey",
    "AuditEvent",
    "Budget",
    "BudgetReservation",
    "Channel",
    "Event",
    "ExecutionStatus",
    "LLMUsage",
    "Memory",
    "MemoryScope",
    "MemoryType",
    "Notification",
    "NotificationPreference",
    "NotificationStatus",
    "NotificationTemplate",
    "Priority",
    "Prompt",
    "RefreshToken",
    "Role",
    "Schedule",
    "ScheduleKind",
    "StepExecution",
    "StepStatus",
    "User",
    "UserStatus",
    "Workflow",
    "WorkflowExecution",
]
