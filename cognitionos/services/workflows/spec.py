"""A step as written in a workflow definition: what ``createWorkflow`` takes, what the
``workflows.steps`` column stores (its ``dump``) and what ``Workflow.steps`` shows. Its
config is checked against the step kind's own model (``steps/base.py``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from cognitionos.services.backoff import backoff
from cognitionos.services.specs import Number, Spec, spec_error

__all__ = ["KEY", "RetryPolicy", "StepSpec"]

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")  # a step's key, a workflow's key
_DAY = 86400


class RetryPolicy(Spec):
    max_attempts: StrictInt = Field(1, ge=1, le=50)
    initial_delay_seconds: Number = Field(1.0, ge=0, le=_DAY)
    backoff_factor: Number = Field(2.0, ge=1, le=10)
    max_delay_seconds: Number = Field(60.0, ge=0, le=_DAY)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1 for the first)."""
        return backoff(
            self.initial_delay_seconds,
            attempt - 1,
            factor=self.backoff_factor,
            most=self.max_delay_seconds,
        )


def _key(value: str) -> str:
    if not KEY.match(value):
        raise spec_error("step key must start with a letter or _ and use letters, digits, _ or -")
    return value


def _capability(value: str) -> str:
    if not value.strip():
        raise spec_error("agentCapability must be a non-empty string")
    return value


class StepSpec(Spec):
    key: Annotated[StrictStr, AfterValidator(_key)]
    name: StrictStr | None = None
    kind: StrictStr
    agent_capability: Annotated[StrictStr, AfterValidator(_capability)] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[StrictStr, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: Number = Field(300.0, gt=0, le=_DAY)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StepSpec:
        """A stored step. Keys a later version no longer knows are passed over."""
        return cls.model_validate(raw, extra="ignore")
