"""Agents: registration, updates, lookups, the default four, and status publication."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import Agent, AgentRole, AgentStatus
from cognitionos.observability import get_logger
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from cognitionos.services.events import agents_channel
from cognitionos.services.llm import PROVIDER_NAMES

__all__ = [
    "DEFAULT_AGENTS",
    "AgentFilter",
    "AgentSpec",
    "agent_message",
    "ensure_default_agents",
    "get_agent",
    "list_agents",
    "publish_agents",
    "register_agent",
    "update_agent",
]

log = get_logger("cognitionos.agents")

# name, role, capabilities, description
DEFAULT_AGENTS: list[tuple[str, AgentRole, list[str], str]] = [
    ("planner", AgentRole.PLANNER, ["planning"], "Turns goals into workflows."),
    (
        "executor",
        AgentRole.EXECUTOR,
        ["general", "analysis", "writing", "research"],
        "Carries out workflow steps.",
    ),
    ("critic", AgentRole.CRITIC, ["review"], "Scores and critiques other agents' answers."),
    ("summarizer", AgentRole.SUMMARIZER, ["summarization"], "Condenses text faithfully."),
]

_SETTABLE = (
    "description",
    "capabilities",
    "provider",
    "model",
    "prompt_version",
    "temperature",
    "max_tokens",
    "max_concurrency",
)


@dataclass
class AgentSpec:
    """Fields of ``registerAgent`` / ``updateAgent``; None means unset (or unchanged)."""

    name: str | None = None
    role: AgentRole | None = None
    description: str | None = None
    capabilities: list[str] | None = None
    provider: str | None = None
    model: str | None = None
    prompt_version: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_concurrency: int | None = None
    status: AgentStatus | None = None

    def check(self) -> None:
        if self.name is not None and not self.name.strip():
            raise BadUserInput("name is required", field="name")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise BadUserInput("temperature must be between 0 and 2", field="temperature")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise BadUserInput("maxTokens must be positive", field="maxTokens")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise BadUserInput("maxConcurrency must be at least 1", field="maxConcurrency")
        if self.prompt_version is not None and self.prompt_version < 1:
            raise BadUserInput("promptVersion must be at least 1", field="promptVersion")
        if self.status not in (None, AgentStatus.IDLE, AgentStatus.OFFLINE):
            raise BadUserInput("status can be set to IDLE or OFFLINE only", field="status")
        if self.provider is not None and self.provider not in PROVIDER_NAMES:
            raise BadUserInput("provider must be openai, anthropic or compatible", field="provider")
        if self.capabilities is not None:
            self.capabilities = sorted({c.strip() for c in self.capabilities if c.strip()})


@dataclass(frozen=True)
class AgentFilter:
    role: AgentRole | None = None
    capability: str | None = None
    status: AgentStatus | None = None


def agent_message(agent: Agent) -> dict[str, Any]:
    """The JSON published on ``agentStatusChanged``."""
    return {
        "id": str(agent.id),
        "name": agent.name,
        "role": agent.role.value,
        "capabilities": list(agent.capabilities),
        "provider": agent.provider,
        "model": agent.model,
        "status": agent.status.value,
        "currentLoad": agent.current_load,
        "maxConcurrency": agent.max_concurrency,
        "lastError": agent.last_error,
        "description": agent.description,
        "promptVersion": agent.prompt_version,
        "temperature": agent.temperature,
        "maxTokens": agent.max_tokens,
        "createdAt": agent.created_at.isoformat() if agent.created_at else None,
    }


async def publish_agents(redis: Redis | None, agents: list[Agent]) -> None:
    """Best effort: a lost status message is corrected by the next one."""
    if redis is None or not agents:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.publish(agents_channel(), json.dumps(agent_message(agent)))
            await pipe.execute()
    except Exception:
        log.warning("publishing agent status failed", exc_info=True)


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("only admins manage agents")


async def register_agent(
    session: AsyncSession, *, principal: Principal, spec: AgentSpec, settings: Settings
) -> Agent:
    _require_admin(principal)
    spec.check()
    if spec.name is None or spec.role is None:
        raise BadUserInput(
            "name and role are required", field="name" if spec.name is None else "role"
        )
    agent = Agent(
        name=spec.name.strip(),
        role=spec.role,
        description=spec.description,
        capabilities=spec.capabilities or [],
        provider=spec.provider,
        model=spec.model or settings.llm_model,
        prompt_version=spec.prompt_version,
        temperature=0.2 if spec.temperature is None else spec.temperature,
        max_tokens=spec.max_tokens,
        max_concurrency=spec.max_concurrency or 4,
        status=spec.status or AgentStatus.IDLE,
    )
    session.add(agent)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"an agent named {spec.name!r} exists", field="name") from None
    return agent


async def update_agent(
    session: AsyncSession, *, principal: Principal, agent_id: uuid.UUID, spec: AgentSpec
) -> Agent:
    _require_admin(principal)
    spec.check()
    agent = await session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise NotFound("no such agent")
    if spec.name is not None:
        agent.name = spec.name.strip()
    if spec.role is not None:
        agent.role = spec.role
    for name in _SETTABLE:
        value = getattr(spec, name)
        if value is not None:
            setattr(agent, name, value)
    if spec.status is AgentStatus.OFFLINE:
        agent.status = AgentStatus.OFFLINE
    elif spec.status is AgentStatus.IDLE:  # back online; clears an ERROR too
        agent.status = AgentStatus.BUSY if agent.current_load else AgentStatus.IDLE
        agent.failures, agent.probe_at, agent.last_error = 0, None, None
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"an agent named {spec.name!r} exists", field="name") from None
    return agent


async def get_agent(session: AsyncSession, agent_id: uuid.UUID) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("no such agent")
    return agent


async def list_agents(session: AsyncSession, filter: AgentFilter | None = None) -> list[Agent]:
    stmt = select(Agent).order_by(Agent.name)
    if filter is not None:
        if filter.role is not None:
            stmt = stmt.where(Agent.role == filter.role)
        if filter.capability is not None:
            stmt = stmt.where(Agent.capabilities.contains([filter.capability]))
        if filter.status is not None:
            stmt = stmt.where(Agent.status == filter.status)
    return list((await session.scalars(stmt)).all())


async def ensure_default_agents(session: AsyncSession, settings: Settings) -> None:
    """The four default agents, on the configured default model. Idempotent: an agent
    that exists (perhaps edited by an admin) is left as it is."""
    for name, role, capabilities, description in DEFAULT_AGENTS:
        await session.execute(
            insert(Agent)
            .values(
                id=uuid.uuid4(),
                name=name,
                role=role,
                description=description,
                capabilities=capabilities,
                provider=settings.llm_provider,
                model=settings.llm_model,
                temperature=0.2,
                max_concurrency=4,
                current_load=0,
                status=AgentStatus.IDLE,
                failures=0,
            )
            .on_conflict_do_nothing(index_elements=[Agent.name])
        )
