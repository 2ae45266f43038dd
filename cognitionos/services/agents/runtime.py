"""Putting an agent to work: its role prompt, its model settings, the router, and the
bookkeeping around a call (load, status, circuit breaker, published status)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models import Agent, AgentRole, AgentStatus, Prompt
from cognitionos.services.agents.assignment import claim_agent, release_agent
from cognitionos.services.agents.prompts import render_prompt, resolve_prompt
from cognitionos.services.agents.registry import publish_agents
from cognitionos.services.errors import Conflict, LLMUnavailable
from cognitionos.services.llm import ChatRequest, ChatResult, Router, UsageTag
from cognitionos.services.llm.types import OnToken
from cognitionos.services.templating import TemplateRenderer

__all__ = [
    "AgentCall",
    "AgentLease",
    "agents_exist",
    "ask",
    "lease_agent",
    "wait_for_agent",
]


@dataclass
class AgentLease:
    """A claimed unit of an agent's capacity; ``ok`` is set by the work done with it."""

    agent: Agent
    ok: bool | None = None
    error: str | None = None


@dataclass
class AgentCall:
    result: ChatResult
    prompt: Prompt


@asynccontextmanager
async def lease_agent(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis | None,
    *,
    capability: str | None = None,
    role: AgentRole | None = None,
    step_id: uuid.UUID | None = None,
) -> AsyncIterator[AgentLease | None]:
    """Claim a free agent for the block (None: none free) and release it after, recording
    whether its provider calls worked. Status changes are published."""
    async with sessionmaker() as session:
        agent = await claim_agent(
            session, settings, capability=capability, role=role, step_id=step_id
        )
    if agent is None:
        yield None
        return
    await publish_agents(redis, [agent])
    lease = AgentLease(agent)
    try:
        yield lease
    finally:
        async with sessionmaker() as session:
            released = await release_agent(
                session, settings, agent.id, ok=lease.ok, error=lease.error
            )
        if released is not None:
            await publish_agents(redis, [released])


@asynccontextmanager
async def wait_for_agent(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis | None,
    *,
    role: AgentRole,
    wait_seconds: float = 30.0,
) -> AsyncIterator[AgentLease]:
    """A lease on an agent of ``role`` for a request that cannot be re-queued (a mutation):
    CONFLICT at once when none is online, or when none frees up within ``wait_seconds``."""
    name = role.value.lower()
    async with sessionmaker() as session:
        if not await agents_exist(session, role=role):
            raise Conflict(f"no {name} agent is online; register one or set one IDLE")
    deadline = time.monotonic() + wait_seconds
    while True:
        async with lease_agent(sessionmaker, settings, redis, role=role) as lease:
            if lease is not None:
                yield lease
                return
        if time.monotonic() > deadline:
            raise Conflict(f"every {name} agent is busy; try again shortly")
        await asyncio.sleep(min(0.5, settings.agent_wait_seconds))


async def agents_exist(
    session: AsyncSession, *, capability: str | None = None, role: AgentRole | None = None
) -> bool:
    """Whether any agent that is not OFFLINE could ever take this work."""
    stmt = select(func.count()).select_from(Agent).where(Agent.status != AgentStatus.OFFLINE)
    if capability is not None:
        stmt = stmt.where(Agent.capabilities.contains([capability]))
    if role is not None:
        stmt = stmt.where(Agent.role == role)
    return bool(await session.scalar(stmt))


async def ask(
    router: Router,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lease: AgentLease,
    *,
    renderer: TemplateRenderer,
    messages: list[dict[str, str]],
    tag: UsageTag,
    prompt_version: int | None = None,
    variables: dict[str, Any] | None = None,
    on_token: OnToken | None = None,
    output_schema: dict[str, Any] | None = None,
    schema_name: str = "answer",
    max_tokens: int | None = None,
) -> AgentCall:
    """One call as the leased agent: its role prompt (``prompt_version`` pins one, else
    the agent's pin, else the active one) as the system message. Marks the lease.
    ``output_schema``: the answer is JSON of that schema (sent as structured output);
    ``max_tokens``: the answer limit (instead of ``llm_max_tokens``; a lower one of the
    agent's own wins)."""
    agent = lease.agent
    async with sessionmaker() as session:
        prompt = await resolve_prompt(session, agent.role, prompt_version or agent.prompt_version)
    system = await render_prompt(
        prompt,
        {
            "agent": {
                "name": agent.name,
                "role": agent.role.value,
                "capabilities": list(agent.capabilities),
            },
            **(variables or {}),
        },
        renderer=renderer,
    )
    limit = agent.max_tokens or max_tokens or settings.llm_max_tokens
    request = ChatRequest(
        messages=messages,
        system=system,
        temperature=agent.temperature,
        max_tokens=min(limit, max_tokens or limit),
        output_schema=output_schema,
        schema_name=schema_name,
    )
    try:
        result = await router.complete(
            request,
            tag=UsageTag(
                purpose=tag.purpose,
                user_id=tag.user_id,
                execution_id=tag.execution_id,
                step_id=tag.step_id,
                agent_id=agent.id,
            ),
            model=agent.model,
            provider=agent.provider,
            on_token=on_token,
        )
    except LLMUnavailable as exc:
        if exc.transient:  # the providers failed, not the configuration
            lease.ok, lease.error = False, exc.message
        raise
    lease.ok = True
    return AgentCall(result=result, prompt=prompt)
