"""The step-kind contract and its registry. The engine knows kinds only through this."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.services.errors import BadUserInput

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from cognitionos.services.llm import ChatResult, Router
    from cognitionos.services.memory import MemoryService
    from cognitionos.services.workflows.steps.sql_pool import SqlPool

__all__ = [
    "StepContext",
    "StepDeferred",
    "StepFailure",
    "StepKind",
    "enum_value",
    "get_kind",
    "kind_names",
    "register",
    "require_fields",
]


class StepFailure(Exception):
    """A step failed. ``retryable=False`` skips the remaining attempts (e.g. a 4xx)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class StepDeferred(Exception):
    """Not now, and not a failure (e.g. no agent is free): run the step again after
    ``delay`` seconds without using up an attempt."""

    def __init__(self, reason: str, *, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass
class StepContext:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    execution_id: uuid.UUID
    step_id: uuid.UUID
    step_key: str
    attempt: int
    actor_id: uuid.UUID | None
    inputs: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    agent_capability: str | None = None
    previous_error: str | None = None  # the last attempt's error, on a retry
    llm: Router | None = None
    memory: MemoryService | None = None
    redis: Redis | None = None
    sql: SqlPool | None = None  # SQL steps' own role and pool; never the app's sessionmaker
    # What the step's LLM calls cost; the runner stores it on the step.
    cost_usd: Decimal | None = None
    tokens: int = 0
    served_by: list[str] = field(default_factory=list)  # provider:model of each LLM call
    tokens_estimated: bool = False  # some call's provider reported no usage
    output_modes: list[str] = field(default_factory=list)  # how each JSON call asked for it
    structured_fallbacks: list[str] = field(default_factory=list)  # why not natively

    def charge(self, result: ChatResult) -> None:
        """Add an LLM call's tokens and cost (an unknown price leaves the cost unknown)."""
        self.served_by.append(f"{result.provider}:{result.model}")
        self.tokens += result.tokens
        self.tokens_estimated = self.tokens_estimated or result.tokens_estimated
        if result.output_mode is not None:
            self.output_modes.append(result.output_mode)
        if result.structured_fallback is not None:
            self.structured_fallbacks.append(result.structured_fallback)
        if result.cost_usd is not None:
            self.cost_usd = (self.cost_usd or Decimal(0)) + result.cost_usd

    def llm_notes(self) -> dict[str, Any]:
        """What the step's success event says about its LLM calls beyond ``servedBy``."""
        notes: dict[str, Any] = {}
        if self.tokens_estimated:
            notes["tokensEstimated"] = True
        if self.output_modes:
            notes["outputModes"] = self.output_modes
        if self.structured_fallbacks:
            notes["structuredOutputFallback"] = self.structured_fallbacks
        return notes

    @property
    def variables(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "steps": self.steps}


@runtime_checkable
class StepKind(Protocol):
    """What a step kind provides. ``templated`` names the config fields rendered with
    Jinja2 before ``run`` (``("*",)``: all of them). An ``inline`` kind is pure and quick
    (no I/O): it runs inside the claiming transaction, so a crash simply rolls it back."""

    name: ClassVar[str]
    templated: ClassVar[tuple[str, ...]]
    waits_for_approval: ClassVar[bool]
    inline: ClassVar[bool]

    def validate(self, config: dict[str, Any], *, field: str) -> None: ...

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any: ...


_REGISTRY: dict[str, StepKind] = {}


def register(kind: StepKind) -> StepKind:
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> StepKind | None:
    return _REGISTRY.get(name)


def kind_names() -> list[str]:
    return sorted(_REGISTRY)


def enum_value(cls: Any, value: Any, field: str) -> Any:
    """``cls(value)``, or BAD_USER_INPUT naming the field and the allowed values."""
    try:
        return cls(value)
    except ValueError:
        allowed = [m.value for m in cls]
        raise BadUserInput(f"{value!r} is not one of {allowed}", field=field) from None


def require_fields(
    config: dict[str, Any],
    field: str,
    required: dict[str, type | tuple[type, ...]],
    optional: dict[str, type | tuple[type, ...]] | None = None,
) -> None:
    """Check a config's keys and types; name the offending field."""
    allowed = {**required, **(optional or {})}
    for key in config:
        if key not in allowed:
            raise BadUserInput(
                f"unknown config field {key!r}; expected {sorted(allowed)}", field=f"{field}.{key}"
            )
    for key in required:
        if key not in config:
            raise BadUserInput(f"config needs {key!r}", field=f"{field}.{key}")
    for key, types in allowed.items():
        if key in config and config[key] is not None and not isinstance(config[key], types):
            names = (
                types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
            )
            raise BadUserInput(f"{key!r} must be {names}", field=f"{field}.{key}")
