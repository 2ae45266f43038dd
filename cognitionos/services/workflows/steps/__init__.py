"""Step kinds. Importing this package registers the built-in ones."""

from __future__ import annotations

from cognitionos.services.workflows.steps import (
    agent,
    approval,
    http,
    llm,
    memory,
    notify,
    python,
    sql,
    transform,
)
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepDeferred,
    StepDeps,
    StepFailure,
    StepKind,
    get_kind,
    kind_names,
    register,
)
from cognitionos.services.workflows.steps.sql_pool import SqlPool, UnsafeSqlRole

__all__ = [
    "SqlPool",
    "StepContext",
    "StepDeferred",
    "StepDeps",
    "StepFailure",
    "StepKind",
    "UnsafeSqlRole",
    "agent",
    "approval",
    "get_kind",
    "http",
    "kind_names",
    "llm",
    "memory",
    "notify",
    "python",
    "register",
    "sql",
    "transform",
]
