"""The step-kind contract and its registry. The engine knows kinds only through this."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.services.specs import UNRENDERED, Spec, invalid
from cognitionos.services.templating import TemplateRenderer

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from cognitionos.services.llm import ChatResult
    from cognitionos.services.workflows.ports import LLM, Agents, Memories, Notifications
    from cognitionos.services.workflows.steps.sql_pool import SqlPool

__all__ = [
    "Kind",
    "StepConfig",
    "StepContext",
    "StepDeferred",
    "StepDeps",
    "StepFailure",
    "StepKind",
    "get_kind",
    "kind_names",
    "register",
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


@dataclass(frozen=True)
class StepDeps:
    """What every step of a process may use, built once by the runtime. The services
    are the engine's ports (``ports.py``), not the packages that implement them. A
    service a process does not have (an LLM provider, the SQL-step pool) is None: the
    kind that needs it fails the step saying so."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    renderer: TemplateRenderer  # step configs render in its processes
    redis: Redis | None = None
    llm: LLM | None = None
    memory: Memories | None = None
    agents: Agents | None = None
    notifications: Notifications | None = None
    sql: SqlPool | None = None  # SQL steps' own role and pool; never the app's sessionmaker


@dataclass
class StepContext:
    """One attempt of one step: the process's ``deps`` and what this attempt reads."""

    deps: StepDeps
    execution_id: uuid.UUID
    step_id: uuid.UUID
    step_key: str
    attempt: int
    actor_id: uuid.UUID | None
    inputs: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    agent_capability: str | None = None
    previous_error: str | None = None  # the last attempt's error, on a retry
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

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.deps.sessionmaker

    @property
    def redis(self) -> Redis | None:
        return self.deps.redis

    @property
    def llm(self) -> LLM | None:
        return self.deps.llm

    @property
    def memory(self) -> Memories | None:
        return self.deps.memory

    @property
    def agents(self) -> Agents | None:
        return self.deps.agents

    @property
    def notifications(self) -> Notifications | None:
        return self.deps.notifications

    @property
    def sql(self) -> SqlPool | None:
        return self.deps.sql


class StepConfig(Spec):
    """A step kind's config: unknown keys are refused. It is checked as written when the
    workflow is created, and read again as rendered when the step runs."""

    @classmethod
    def check(cls, config: Any, *, field: str, step: str | None = None) -> None:
        """BAD_USER_INPUT naming the step and the field; a template passes where a
        rendered value would be checked (``WhenRendered``)."""
        cls.parse(config, field=field, step=step, context=UNRENDERED)

    @classmethod
    def read(cls, config: dict[str, Any]) -> Self:
        """The config as rendered for an attempt. A definition stored by an earlier version
        may hold keys this one no longer knows: they are passed over."""
        try:
            return cls.model_validate(config, extra="ignore")
        except ValidationError as exc:
            error = invalid(exc, cls, field="config")
            raise StepFailure(f"{error.code}: {error.message}", retryable=False) from None


@runtime_checkable
class StepKind(Protocol):
    """What a step kind provides. ``config_model`` is the shape of its config;
    ``templated`` names the config fields rendered with Jinja2 before ``run`` (``("*",)``:
    all of them). An ``inline`` kind is pure and quick (no I/O): it runs inside the
    claiming transaction, so a crash simply rolls it back. A ``needs_capability`` kind
    runs on an agent with the step's ``agentCapability``."""

    name: ClassVar[str]
    templated: ClassVar[tuple[str, ...]]
    waits_for_approval: ClassVar[bool]
    inline: ClassVar[bool]
    needs_capability: ClassVar[bool]

    @property
    def config_model(self) -> type[StepConfig]: ...

    def validate(self, config: Any, *, field: str, step: str | None = None) -> None: ...

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any: ...


class Kind:
    """The defaults of a step kind, and the check of its config against its model."""

    config_model: ClassVar[type[StepConfig]]
    templated: ClassVar[tuple[str, ...]] = ()
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False
    needs_capability: ClassVar[bool] = False

    def validate(self, config: Any, *, field: str, step: str | None = None) -> None:
        self.config_model.check(config, field=field, step=step)


_REGISTRY: dict[str, StepKind] = {}


def register(kind: StepKind) -> StepKind:
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> StepKind | None:
    return _REGISTRY.get(name)


def kind_names() -> list[str]:
    return sorted(_REGISTRY)
