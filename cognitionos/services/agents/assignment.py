"""Assigning agents to work, atomically, least loaded first, with a circuit breaker.

An agent takes work while it is not OFFLINE and below ``max_concurrency``. Its load and
status (IDLE/BUSY) move as work starts and ends. ``agent_failure_threshold`` failed calls
in a row put it in ERROR; after ``agent_probe_seconds`` it takes one probe call, and a
success brings it back. A worker that dies mid-call leaks a unit of load: the reconciler
recounts stale loads from the steps the agent is really running.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import Agent, AgentRole, AgentStatus, StepExecution, StepStatus

__all__ = ["claim_agent", "heal_agent_loads", "release_agent"]


def _now() -> datetime:
    return datetime.now(UTC)


async def _pick(
    session: AsyncSession,
    *,
    capability: str | None,
    role: AgentRole | None,
    skip_locked: bool,
) -> Agent | None:
    now = _now()
    stmt = select(Agent).where(
        Agent.current_load < Agent.max_concurrency,
        or_(
            Agent.status.in_([AgentStatus.IDLE, AgentStatus.BUSY]),
            and_(Agent.status == AgentStatus.ERROR, Agent.probe_at <= now),
        ),
    )
    if capability is not None:
        stmt = stmt.where(Agent.capabilities.contains([capability]))
    if role is not None:
        stmt = stmt.where(Agent.role == role)
    stmt = (
        stmt.order_by(Agent.current_load, Agent.last_assigned_at.asc().nulls_first(), Agent.name)
        .limit(1)
        .with_for_update(skip_locked=skip_locked)
    )
    return await session.scalar(stmt)


async def claim_agent(
    session: AsyncSession,
    settings: Settings,
    *,
    capability: str | None = None,
    role: AgentRole | None = None,
    step_id: uuid.UUID | None = None,
) -> Agent | None:
    """Take one unit of a free agent's capacity (None: none free). Commits."""
    # Skip rows another claim holds; if that leaves none, wait for them (they may free up).
    agent = await _pick(session, capability=capability, role=role, skip_locked=True)
    if agent is None:
        agent = await _pick(session, capability=capability, role=role, skip_locked=False)
    if agent is None:
        await session.rollback()
        return None
    now = _now()
    agent.current_load += 1
    agent.last_assigned_at = now
    if agent.status is AgentStatus.ERROR:
        # This is the probe; the next one waits another period.
        agent.probe_at = now + timedelta(seconds=settings.agent_probe_seconds)
    else:
        agent.status = AgentStatus.BUSY
    if step_id is not None:
        await session.execute(
            update(StepExecution).where(StepExecution.id == step_id).values(agent_id=agent.id)
        )
    await session.commit()
    return agent


async def release_agent(
    session: AsyncSession,
    settings: Settings,
    agent_id: uuid.UUID,
    *,
    ok: bool | None,
    error: str | None = None,
) -> Agent | None:
    """Give the unit back and record the outcome (``ok=None``: not the provider's doing,
    e.g. an exhausted budget, so the breaker ignores it). Commits."""
    agent = await session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        await session.rollback()
        return None
    agent.current_load = max(0, agent.current_load - 1)
    if ok is True:
        agent.failures, agent.last_error, agent.probe_at = 0, None, None
        if agent.status is AgentStatus.ERROR:
            agent.status = AgentStatus.IDLE
    elif ok is False:
        agent.failures += 1
        agent.last_error = (error or "call failed")[:2000]
        if agent.failures >= settings.agent_failure_threshold:
            if agent.status is not AgentStatus.ERROR:
                agent.probe_at = _now() + timedelta(seconds=settings.agent_probe_seconds)
            agent.status = AgentStatus.ERROR
    if agent.status in (AgentStatus.IDLE, AgentStatus.BUSY):
        agent.status = AgentStatus.BUSY if agent.current_load else AgentStatus.IDLE
    await session.commit()
    return agent


async def heal_agent_loads(session: AsyncSession, *, stale_after: float) -> list[Agent]:
    """Recount the load of agents not assigned for ``stale_after`` seconds from the steps
    they are running; returns those whose load changed. Commits."""
    running = (
        select(func.count())
        .where(StepExecution.agent_id == Agent.id, StepExecution.status == StepStatus.RUNNING)
        .scalar_subquery()
    )
    cutoff = _now() - timedelta(seconds=stale_after)
    agents = list(
        (
            await session.scalars(
                select(Agent)
                .where(Agent.current_load > running, Agent.last_assigned_at < cutoff)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    for agent in agents:
        agent.current_load = (
            await session.scalar(
                select(func.count()).where(
                    StepExecution.agent_id == agent.id, StepExecution.status == StepStatus.RUNNING
                )
            )
            or 0
        )
        if agent.status in (AgentStatus.IDLE, AgentStatus.BUSY):
            agent.status = AgentStatus.BUSY if agent.current_load else AgentStatus.IDLE
    await session.commit()
    return agents
