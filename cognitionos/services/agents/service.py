"""The agents as the work that uses them sees them: lease an agent, wait for one, ask it,
heal the loads dead workers left. Built once by the runtime, which hands it to the
workflow engine (whose ``ports.Agents`` it matches by shape; this package does not import
the engine)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models import Agent, AgentRole
from cognitionos.services.agents.assignment import heal_agent_loads
from cognitionos.services.agents.registry import publish_agents
from cognitionos.services.agents.runtime import (
    AgentCall,
    AgentLease,
    agents_exist,
    ask,
    lease_agent,
    wait_for_agent,
)
from cognitionos.services.llm import Router, UsageTag
from cognitionos.services.llm.types import OnToken
from cognitionos.services.templating import TemplateRenderer

__all__ = ["AgentService", "LeasedAgent"]


@dataclass(frozen=True, eq=False)
class LeasedAgent:
    """A held lease and the means to ask its agent."""

    lease: AgentLease
    service: AgentService

    @property
    def agent(self) -> Agent:
        return self.lease.agent

    async def ask(
        self,
        *,
        messages: list[dict[str, str]],
        tag: UsageTag,
        prompt_version: int | None = None,
        variables: dict[str, Any] | None = None,
        on_token: OnToken | None = None,
        output_schema: dict[str, Any] | None = None,
        schema_name: str = "answer",
        max_tokens: int | None = None,
    ) -> AgentCall:
        service = self.service
        return await ask(
            service.llm,
            service.sessionmaker,
            service.settings,
            self.lease,
            renderer=service.renderer,
            messages=messages,
            tag=tag,
            prompt_version=prompt_version,
            variables=variables,
            on_token=on_token,
            output_schema=output_schema,
            schema_name=schema_name,
            max_tokens=max_tokens,
        )


class AgentService:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis | None,
        llm: Router,
        renderer: TemplateRenderer,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.llm = llm
        self.renderer = renderer  # role prompts render in its processes

    @asynccontextmanager
    async def lease(
        self,
        *,
        capability: str | None = None,
        role: AgentRole | None = None,
        step_id: uuid.UUID | None = None,
    ) -> AsyncIterator[LeasedAgent | None]:
        """A free agent for the block (None: none is free), released after it."""
        async with lease_agent(
            self.sessionmaker,
            self.settings,
            self.redis,
            capability=capability,
            role=role,
            step_id=step_id,
        ) as lease:
            yield None if lease is None else LeasedAgent(lease, self)

    @asynccontextmanager
    async def wait_for(self, *, role: AgentRole, wait_seconds: float) -> AsyncIterator[LeasedAgent]:
        """An agent of ``role`` for a request that cannot be re-queued (a mutation)."""
        async with wait_for_agent(
            self.sessionmaker, self.settings, self.redis, role=role, wait_seconds=wait_seconds
        ) as lease:
            yield LeasedAgent(lease, self)

    async def exist(self, *, capability: str | None = None, role: AgentRole | None = None) -> bool:
        async with self.sessionmaker() as session:
            return await agents_exist(session, capability=capability, role=role)

    async def heal_loads(self, *, stale_after: float) -> int:
        """Recount loads from running steps, publish the agents that changed."""
        async with self.sessionmaker() as session:
            healed = await heal_agent_loads(session, stale_after=stale_after)
        await publish_agents(self.redis, healed)
        return len(healed)
