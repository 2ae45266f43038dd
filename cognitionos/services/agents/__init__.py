"""Agents (LLM personas with roles), their versioned prompts and assignment. The planner,
which turns a goal into a workflow, lives with the workflows it makes."""

from __future__ import annotations

from cognitionos.services.agents.assignment import claim_agent, heal_agent_loads, release_agent
from cognitionos.services.agents.prompts import (
    create_prompt_version,
    ensure_prompts,
    list_prompts,
    resolve_prompt,
)
from cognitionos.services.agents.registry import (
    DEFAULT_AGENTS,
    AgentFilter,
    AgentPatch,
    AgentSpec,
    agent_message,
    ensure_default_agents,
    get_agent,
    list_agents,
    publish_agents,
    register_agent,
    update_agent,
)
from cognitionos.services.agents.runtime import AgentLease, ask, lease_agent
from cognitionos.services.agents.service import AgentService

__all__ = [
    "DEFAULT_AGENTS",
    "AgentFilter",
    "AgentLease",
    "AgentPatch",
    "AgentService",
    "AgentSpec",
    "agent_message",
    "ask",
    "claim_agent",
    "create_prompt_version",
    "ensure_default_agents",
    "ensure_prompts",
    "get_agent",
    "heal_agent_loads",
    "lease_agent",
    "list_agents",
    "list_prompts",
    "publish_agents",
    "register_agent",
    "release_agent",
    "resolve_prompt",
    "seed",
    "update_agent",
]


async def seed(sessionmaker, settings) -> None:  # type: ignore[no-untyped-def]
    """First start: the v1 prompts and the four default agents. Idempotent."""
    async with sessionmaker() as session:
        await ensure_prompts(session)
        await ensure_default_agents(session, settings)
        await session.commit()
