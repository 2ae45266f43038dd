"""GraphQL types for agents, prompts, LLM usage and budgets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from cognitionos.db import models
from cognitionos.db.models import AgentRole, AgentStatus
from cognitionos.services.agents import AgentPatch, AgentSpec
from cognitionos.services.llm import UsageGroup, UsageRow

__all__ = [
    "Agent",
    "AgentFilterInput",
    "AgentInput",
    "Budget",
    "Prompt",
    "UpdateAgentInput",
    "UsageSummary",
]

strawberry.enum(AgentRole, name="AgentRole")
strawberry.enum(AgentStatus, name="AgentStatus")
strawberry.enum(UsageGroup, name="UsageGroup", description="How llmUsage groups its totals.")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@strawberry.type
class Agent:
    id: strawberry.ID
    name: str
    role: AgentRole
    description: str | None
    capabilities: list[str]
    provider: str | None
    model: str | None
    prompt_version: int | None = strawberry.field(
        description="The pinned prompt version; null: the role's active prompt."
    )
    temperature: float | None
    max_tokens: int | None
    max_concurrency: int
    current_load: int
    status: AgentStatus
    last_error: str | None
    created_at: datetime | None

    @classmethod
    def from_model(cls, row: models.Agent) -> Agent:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            role=row.role,
            description=row.description,
            capabilities=list(row.capabilities),
            provider=row.provider,
            model=row.model,
            prompt_version=row.prompt_version,
            temperature=row.temperature,
            max_tokens=row.max_tokens,
            max_concurrency=row.max_concurrency,
            current_load=row.current_load,
            status=row.status,
            last_error=row.last_error,
            created_at=row.created_at,
        )

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> Agent:
        """From the JSON published on ``agentStatusChanged``."""
        return cls(
            id=strawberry.ID(str(m.get("id", ""))),
            name=str(m.get("name", "")),
            role=AgentRole(m.get("role", AgentRole.EXECUTOR)),
            description=m.get("description"),
            capabilities=[str(c) for c in m.get("capabilities") or []],
            provider=m.get("provider"),
            model=m.get("model"),
            prompt_version=m.get("promptVersion"),
            temperature=m.get("temperature"),
            max_tokens=m.get("maxTokens"),
            max_concurrency=int(m.get("maxConcurrency", 1)),
            current_load=int(m.get("currentLoad", 0)),
            status=AgentStatus(m.get("status", AgentStatus.IDLE)),
            last_error=m.get("lastError"),
            created_at=_when(m.get("createdAt")),
        )


@strawberry.experimental.pydantic.input(model=AgentSpec, all_fields=True)
class AgentInput:
    pass


@strawberry.experimental.pydantic.input(model=AgentPatch, all_fields=True)
class UpdateAgentInput:
    pass


@strawberry.input(name="AgentFilter")
class AgentFilterInput:
    role: AgentRole | None = None
    capability: str | None = None
    status: AgentStatus | None = None


@strawberry.type
class Prompt:
    id: strawberry.ID
    role: AgentRole
    version: int
    template: str
    active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Prompt) -> Prompt:
        return cls(
            id=strawberry.ID(str(row.id)),
            role=row.role,
            version=row.version,
            template=row.template,
            active=row.active,
            created_at=row.created_at,
        )


@strawberry.type
class UsageSummary:
    provider: str | None
    model: str | None
    user_id: strawberry.ID | None
    purpose: str | None
    day: str | None
    calls: int
    failures: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = strawberry.field(
        description="Sum over calls with a known price; null (unknown, not 0) when every "
        "call that answered was of a model without a price."
    )
    unpriced_calls: int = strawberry.field(
        description="Successful calls whose model has no known price (cost unknown, not 0)."
    )
    estimated_calls: int = strawberry.field(
        description="Successful calls whose provider reported no token usage: their tokens "
        "are estimated from the text (about 4 bytes a token)."
    )

    @classmethod
    def from_row(cls, row: UsageRow) -> UsageSummary:
        key = row.key
        user = key.get("USER")
        return cls(
            provider=key.get("PROVIDER"),
            model=key.get("MODEL"),
            user_id=strawberry.ID(user) if user else None,
            purpose=key.get("PURPOSE"),
            day=key.get("DAY"),
            calls=row.calls,
            failures=row.failures,
            tokens_in=row.tokens_in,
            tokens_out=row.tokens_out,
            cost_usd=None if row.cost_usd is None else float(row.cost_usd),
            unpriced_calls=row.unpriced_calls,
            estimated_calls=row.estimated_calls,
        )


@strawberry.type
class Budget:
    user_id: strawberry.ID
    monthly_usd: float | None = strawberry.field(description="null: no budget")
    spent_usd: float | None = strawberry.field(
        description="This calendar month (UTC), over calls with a known price; null "
        "(unknown, not 0) when every call was of a model without a price."
    )
    unpriced_calls: int = strawberry.field(
        description="This month's successful calls of models without a known price."
    )

    @classmethod
    def of(
        cls, user_id: Any, monthly: Decimal | None, spent: Decimal | None, unpriced: int
    ) -> Budget:
        return cls(
            user_id=strawberry.ID(str(user_id)),
            monthly_usd=float(monthly) if monthly is not None else None,
            spent_usd=float(spent) if spent is not None else None,
            unpriced_calls=unpriced,
        )
