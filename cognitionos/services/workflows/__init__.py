"""Workflows: definitions, the durable engine, schedules, and reads."""

from __future__ import annotations

from cognitionos.services.workflows.definitions import (
    create_workflow,
    get_workflow,
    list_workflows,
    require_workflow,
    validate_steps,
)
from cognitionos.services.workflows.engine import ClaimedStep, Dispatcher, Engine
from cognitionos.services.workflows.executions import (
    executions_by_workflow,
    get_execution,
    get_step,
    list_executions,
    steps_by_execution,
    workflows_by_id,
)
from cognitionos.services.workflows.reconciler import reconcile
from cognitionos.services.workflows.runner import StepRunner
from cognitionos.services.workflows.schedules import (
    create_schedule,
    delete_schedule,
    list_schedules,
    owns_schedule,
    tick,
    update_schedule,
)
from cognitionos.services.workflows.spec import RetryPolicy, StepSpec
from cognitionos.services.workflows.steps import SqlPool, StepDeps, UnsafeSqlRole
from cognitionos.services.workflows.transitions import Dispatch

__all__ = [
    "ClaimedStep",
    "Dispatch",
    "Dispatcher",
    "Engine",
    "RetryPolicy",
    "SqlPool",
    "StepDeps",
    "StepRunner",
    "StepSpec",
    "UnsafeSqlRole",
    "create_schedule",
    "create_workflow",
    "delete_schedule",
    "executions_by_workflow",
    "get_execution",
    "get_step",
    "get_workflow",
    "list_executions",
    "list_schedules",
    "list_workflows",
    "owns_schedule",
    "reconcile",
    "require_workflow",
    "steps_by_execution",
    "tick",
    "update_schedule",
    "validate_steps",
    "workflows_by_id",
]
