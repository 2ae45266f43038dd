"""Step kinds. Importing this package registers the built-in ones."""

from __future__ import annotations

from cognitionos.services.workflows.steps import approval, http, python, sql, transform
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    StepKind,
    get_kind,
    kind_names,
    register,
)

__all__ = [
    "StepContext",
    "StepFailure",
    "StepKind",
    "approval",
    "get_kind",
    "http",
    "kind_names",
    "python",
    "register",
    "sql",
    "transform",
]
