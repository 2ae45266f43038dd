"""The planner: a goal becomes a validated workflow (and, if asked, an execution).

The planner agent answers with a workflow in the ``createWorkflow`` input format, asked
for as structured output with the plan's JSON Schema (``plan_schema.py``) and at most
``planner_max_tokens`` tokens per answer. It is checked by the same validation as
``createWorkflow``; an invalid plan goes back to the model with the errors, at most
``planner_max_repairs`` times, then fails with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models import Agent, AgentRole, AgentStatus, Workflow, WorkflowExecution
from cognitionos.observability import get_logger
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput
from cognitionos.services.llm import JSONOutputError, UsageTag, parse_json_output
from cognitionos.services.workflows._plan_schema import plan_schema
from cognitionos.services.workflows.definitions import (
    MAX_STEPS,
    controls_key,
    create_workflow,
    get_workflow,
    validate_steps,
)
from cognitionos.services.workflows.engine import Engine
from cognitionos.services.workflows.ports import LLM, AgentAnswer, Agents, LeasedAgent

__all__ = ["PlanResult", "plan_workflow"]

log = get_logger("cognitionos.agents")

PLAN_SCHEMA = {
    "type": "object",
    "required": ["steps"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "steps": {"type": "array", "minItems": 1},
    },
}
_MAX_GOAL = 4000
_PLAN_STEPS = min(20, MAX_STEPS)


@dataclass
class PlanResult:
    workflow: Workflow
    execution: WorkflowExecution | None


def _slug(goal: str) -> str:
    words = re.findall(r"[a-z0-9]+", goal.lower())[:6]
    return "plan-" + ("-".join(words) or "goal")[:60]


async def _own_key(session: AsyncSession, base: str, principal: Principal) -> str:
    """The goal's key, or ``<key>-2``, ``-3``… when someone else owns it."""
    for n in range(1, 50):
        candidate = base if n == 1 else f"{base}-{n}"
        if await controls_key(
            session, key=candidate, actor_id=principal.user_id, is_admin=principal.is_admin
        ):
            return candidate
    return f"{base}-{principal.user_id.hex[:8]}"


def _next_version(latest: Workflow | None) -> str:
    return "1.0.0" if latest is None else f"{latest.major}.{latest.minor + 1}.0"


def _problems(call: AgentAnswer, settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The plan, or what is wrong with it (for the repair round)."""
    try:
        plan = parse_json_output(call.result.text, PLAN_SCHEMA)
    except JSONOutputError as exc:
        if call.result.truncated:
            return None, (
                f"the answer was cut off at the planner's limit of {settings.planner_max_tokens}"
                f" tokens (COGNITIONOS_PLANNER_MAX_TOKENS), so {exc}; answer more briefly"
            )
        return None, str(exc)
    if len(plan["steps"]) > _PLAN_STEPS:
        return None, f"the plan has {len(plan['steps'])} steps; at most {_PLAN_STEPS}"
    try:
        validate_steps(plan["steps"])
    except BadUserInput as exc:
        where = f" (at {exc.field})" if exc.field else ""
        return None, f"{exc.message}{where}"
    return plan, None


async def _capabilities(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        select(Agent.capabilities).where(
            Agent.status != AgentStatus.OFFLINE, Agent.role != AgentRole.PLANNER
        )
    )
    return sorted({c for caps in rows for c in caps})


async def plan_workflow(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    llm: LLM,
    agents: Agents,
    engine: Engine,
    principal: Principal,
    goal: str,
    key: str | None,
    execute: bool,
    wait_seconds: float = 30.0,
) -> PlanResult:
    goal = goal.strip()
    if not goal:
        raise BadUserInput("the goal is empty", field="goal")
    if len(goal) > _MAX_GOAL:
        raise BadUserInput(f"the goal is longer than {_MAX_GOAL} characters", field="goal")
    llm.ensure_configured()
    async with sessionmaker() as session:
        capabilities = await _capabilities(session)
    async with agents.wait_for(role=AgentRole.PLANNER, wait_seconds=wait_seconds) as lease:
        plan, call, repairs = await _converse(settings, lease, principal, goal, capabilities)
    agent = lease.agent
    metadata = {
        "plan": {
            "goal": goal,
            "agentId": str(agent.id),
            "agent": agent.name,
            "promptRole": agent.role.value,
            "promptVersion": call.prompt.version,
            "provider": call.result.provider,
            "model": call.result.model,
            "repairs": repairs,
            "outputMode": call.result.output_mode,
        }
    }
    if call.result.structured_fallback:
        metadata["plan"]["structuredOutputFallback"] = call.result.structured_fallback
    async with sessionmaker() as session:
        workflow_key = key or await _own_key(session, _slug(goal), principal)
        latest = await get_workflow(session, key=workflow_key)
        workflow = await create_workflow(
            session,
            actor_id=principal.user_id,
            is_admin=principal.is_admin,
            key=workflow_key,
            version=_next_version(latest),
            name=str(plan.get("name") or goal[:100]).strip()[:200] or "Planned workflow",
            steps=plan["steps"],
            description=plan.get("description") or goal,
            tags=["planned"],
            metadata=metadata,
        )
    execution = None
    if execute:
        execution = await engine.execute(
            principal=principal, key=workflow.key, version=workflow.version, inputs={}
        )
    return PlanResult(workflow=workflow, execution=execution)


async def _converse(
    settings: Settings,
    lease: LeasedAgent,
    principal: Principal,
    goal: str,
    capabilities: list[str],
) -> tuple[dict[str, Any], AgentAnswer, int]:
    messages = [{"role": "user", "content": f"Goal: {goal}"}]
    problems: list[str] = []
    schema = plan_schema(capabilities)
    for repair in range(settings.planner_max_repairs + 1):
        call = await lease.ask(
            messages=messages,
            tag=UsageTag(purpose="PLANNER", user_id=principal.user_id),
            variables={"capabilities": capabilities, "max_steps": _PLAN_STEPS},
            output_schema=schema,
            schema_name="workflow",
            max_tokens=settings.planner_max_tokens,
        )
        plan, problem = _problems(call, settings)
        if plan is not None:
            return plan, call, repair
        log.info(
            "the planner's answer is not a valid workflow",
            problem=problem,
            round=repair + 1,
            output_mode=call.result.output_mode,
        )
        problems.append(problem or "invalid plan")
        messages += [
            {"role": "assistant", "content": call.result.text},
            {
                "role": "user",
                "content": f"That plan is invalid: {problem}\nAnswer with the corrected "
                "workflow JSON only.",
            },
        ]
    raise BadUserInput(
        f"the planner did not produce a valid workflow after {settings.planner_max_repairs} "
        "repairs: " + " | ".join(problems),
        field="goal",
        errors=problems,
    )
