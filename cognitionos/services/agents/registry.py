"""Agents: registration, updates, lookups, the default four, and status publication."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt, StrictStr
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import Agent, AgentRole, AgentStatus
from cognitionos.observability import get_logger
from cognitionos.services.agents.prompts import PromptVersion
from cognitionos.services.auth import Principal
from cognitionos.services.errors import Conflict, Forbidden, NotFound
from cognitionos.services.events import agents_channel
from cognitionos.services.llm import LLMOptions
from cognitionos.services.specs import spec_error

__all__ = [
    "DEFAULT_AGENTS",
    "AgentFilter",
    "AgentPatch",
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

# What an agent registered without them gets (the default four too).
DEFAULT_TEMPERATURE = 0.2
DEFAULT_CONCURRENCY = 4


def _name(name: str) -> str:
    if not name.strip():
        raise spec_error("name is required")
    return name.strip()


def _capabilities(capabilities: list[str]) -> list[str]:
    return sorted({c.strip() for c in capabilities if c.strip()})


def _settable(status: AgentStatus) -> AgentStatus:
    if status not in (AgentStatus.IDLE, AgentStatus.OFFLINE):
        raise spec_error("status can be set to IDLE or OFFLINE only")
    return status


Name = Annotated[StrictStr, AfterValidator(_name)]
Capabilities = Annotated[list[StrictStr], AfterValidator(_capabilities)]


class _AgentSettings(LLMOptions):
    description: StrictStr | None = None
    prompt_version: PromptVersion | None = None
    max_concurrency: StrictInt | None = Field(None, ge=1)


class AgentSpec(_AgentSettings):
    """A new agent: ``registerAgent``'s input. A setting left out takes its default."""

    name: Name
    role: AgentRole
    capabilities: Capabilities = []


class AgentPatch(_AgentSettings):
    """``updateAgent``'s input: None leaves a field as it is."""

    name: Name | None = None
    role: AgentRole | None = None
    capabilities: Capabilities | None = None
    status: Annotated[AgentStatus, AfterValidator(_settable)] | None = Field(
        None, description="OFFLINE takes the agent out; IDLE brings it back (and resets ERROR)"
    )


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
    agent = Agent(
        **spec.model_dump(exclude={"model", "temperature", "max_concurrency"}),
        model=spec.model or settings.llm_model,
        temperature=DEFAULT_TEMPERATURE if spec.temperature is None else spec.temperature,
        max_concurrency=spec.max_concurrency or DEFAULT_CONCURRENCY,
        status=AgentStatus.IDLE,
    )
    session.add(agent)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"an agent named {spec.name!r} exists", field="name") from None
    return agent


async def update_agent(
    session: AsyncSession, *, principal: Principal, agent_id: uuid.UUID, spec: AgentPatch
) -> Agent:
    _require_admin(principal)
    agent = await session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise NotFound("no such agent")
    for name, value in spec.model_dump(exclude_none=True, exclude={"status"}).items():
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
                temperature=DEFAULT_TEMPERATURE,
                max_concurrency=DEFAULT_CONCURRENCY,
                current_load=0,
                status=AgentStatus.IDLE,
                failures=0,
            )
            .on_conflict_do_nothing(index_elements=[Agent.name])
        )
