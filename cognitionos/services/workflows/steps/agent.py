"""AGENT: a free agent with the step's capability answers the instruction, given its role
prompt, the workflow inputs and the dependencies' outputs. An optional critic scores the
answer; below the threshold the step fails retryably and the next attempt sees the critique.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, StrictStr

from cognitionos.config import Settings
from cognitionos.db.models import AgentRole
from cognitionos.observability import get_logger
from cognitionos.services.errors import LLMUnavailable
from cognitionos.services.inputs import PromptVersion
from cognitionos.services.llm import JSONOutputError, UsageTag, parse_json_output
from cognitionos.services.specs import Number, Spec, spec_error
from cognitionos.services.workflows.ports import Agents
from cognitionos.services.workflows.steps._json import json_or_text
from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepDeferred,
    StepFailure,
    register,
)
from cognitionos.services.workflows.steps.llm import (
    need_router,
    retry_note,
    token_streamer,
    unavailable,
)
from cognitionos.services.workflows.steps.memory import owner_principal

__all__ = ["CRITIC_SCHEMA", "AgentConfig", "AgentStep", "Critic", "render_context"]

log = get_logger("cognitionos.agents")

CRITIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["score", "critique"],
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "critique": {"type": "string"},
    },
    "additionalProperties": False,
}


class Critic(Spec):
    """A critic scores the answer; below ``threshold`` the attempt fails. Without a
    ``capability``, any agent with the CRITIC role reviews."""

    threshold: Number = Field(0.7, ge=0, le=1)
    capability: StrictStr | None = None


def _critic(value: Any) -> Any:
    if value is True:
        return Critic()
    if value is False:
        return None
    if not isinstance(value, (dict, Critic)):
        raise spec_error("critic must be true, false or an object")
    return value


class AgentConfig(StepConfig):
    instruction: StrictStr
    critic: Annotated[Critic | None, BeforeValidator(_critic)] = None
    prompt_version: PromptVersion | None = None


async def _memories(ctx: StepContext, instruction: str) -> list[str]:
    """The owner's memories most relevant to the instruction (none if memory is off)."""
    if ctx.memory is None or ctx.settings.agent_memories <= 0 or ctx.actor_id is None:
        return []
    try:
        principal = await owner_principal(ctx)
        hits = await ctx.memory.search(principal, instruction, ctx.settings.agent_memories, None)
    except Exception:  # memory helps an agent; its failure must not fail the step
        log.warning("recalling memories for an agent step failed", exc_info=True)
        return []
    return [h.memory.content for h in hits]


def _agents(ctx: StepContext) -> Agents:
    if ctx.agents is None:
        raise StepFailure("agents are not available in this worker", retryable=False)
    return ctx.agents


def render_context(value: Any) -> str:
    """A step output or input as prompt text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _task(ctx: StepContext, instruction: str, memories: list[str]) -> str:
    parts = [f"## Instruction\n{instruction}"]
    if memories:
        parts.append("## Relevant memories\n" + "\n".join(f"- {m}" for m in memories))
    if ctx.inputs:
        parts.append(f"## Workflow inputs\n{render_context(ctx.inputs)}")
    for key, value in sorted(ctx.steps.items()):
        parts.append(f"## Output of step {key!r}\n{render_context(value.get('output'))}")
    return "\n\n".join(parts) + retry_note(ctx)


class AgentStep(Kind):
    name: ClassVar[str] = "AGENT"
    config_model = AgentConfig
    templated: ClassVar[tuple[str, ...]] = ("instruction",)
    needs_capability: ClassVar[bool] = True

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        config = AgentConfig.read(raw)
        need_router(ctx)
        agents = _agents(ctx)
        capability = ctx.agent_capability
        settings = ctx.settings
        task = _task(ctx, config.instruction, await _memories(ctx, config.instruction))
        tag = UsageTag(
            purpose="AGENT_STEP",
            user_id=ctx.actor_id,
            execution_id=ctx.execution_id,
            step_id=ctx.step_id,
        )
        async with agents.lease(capability=capability, step_id=ctx.step_id) as lease:
            if lease is None:
                await self._none_free(agents, settings, capability=capability)
                raise AssertionError("unreachable")
            try:
                call = await lease.ask(
                    messages=[{"role": "user", "content": task}],
                    tag=tag,
                    prompt_version=config.prompt_version,
                    on_token=token_streamer(ctx),
                )
            except LLMUnavailable as exc:
                raise unavailable(exc) from None
        ctx.charge(call.result)
        if config.critic is not None:
            await self._review(ctx, task, call.result.text, config.critic)
        return json_or_text(call.result.text, containers_only=True)

    async def _none_free(
        self,
        agents: Agents,
        settings: Settings,
        *,
        capability: str | None = None,
        role: AgentRole | None = None,
    ) -> None:
        exists = await agents.exist(capability=capability, role=role)
        wanted = f"capability {capability!r}" if capability else f"role {role}"
        if not exists:
            raise StepFailure(
                f"no agent has {wanted}; register one with registerAgent", retryable=False
            )
        raise StepDeferred(
            f"waiting for a free agent with {wanted}", delay=settings.agent_wait_seconds
        )

    async def _review(self, ctx: StepContext, task: str, answer: str, critic: Critic) -> None:
        threshold, capability = critic.threshold, critic.capability
        need_router(ctx)
        agents = _agents(ctx)
        role = None if capability else AgentRole.CRITIC
        async with agents.lease(capability=capability, role=role) as lease:
            if lease is None:
                await self._none_free(agents, ctx.settings, capability=capability, role=role)
                raise AssertionError("unreachable")
            review = f"{task}\n\n## Answer to review\n{answer}"
            try:
                call = await lease.ask(
                    messages=[{"role": "user", "content": review}],
                    output_schema=CRITIC_SCHEMA,
                    schema_name="review",
                    tag=UsageTag(
                        purpose="CRITIC",
                        user_id=ctx.actor_id,
                        execution_id=ctx.execution_id,
                        step_id=ctx.step_id,
                    ),
                )
            except LLMUnavailable as exc:
                raise unavailable(exc) from None
        ctx.charge(call.result)
        try:
            verdict = parse_json_output(call.result.text, CRITIC_SCHEMA)
        except JSONOutputError as exc:
            raise StepFailure(f"the critic's answer is unusable: {exc}", retryable=True) from None
        score = float(verdict["score"])
        if score < threshold:
            raise StepFailure(
                f"critic scored {score:.2f} (threshold {threshold:.2f}): {verdict['critique']}",
                retryable=True,
            )


register(AgentStep())
