"""Agent, prompt, LLM usage, budget and planner resolvers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.db.models import AgentRole
from cognitionos.schema.agents import (
    Agent,
    AgentFilterInput,
    AgentInput,
    Budget,
    Prompt,
    UpdateAgentInput,
    UsageSummary,
)
from cognitionos.schema.common import parse_id, to_spec
from cognitionos.schema.permissions import IsAdmin, IsMember, IsViewer
from cognitionos.schema.workflows import Workflow
from cognitionos.services import agents, llm
from cognitionos.services.errors import Forbidden
from cognitionos.services.workflows.planner import plan_workflow

__all__ = ["AgentMutation", "AgentQuery"]


@strawberry.type
class AgentQuery:
    @strawberry.field(permission_classes=[IsViewer])
    async def agents(
        self, info: Info[Context, None], filter: AgentFilterInput | None = None
    ) -> list[Agent]:
        f = filter or AgentFilterInput()
        async with info.context.session() as session:
            rows = await agents.list_agents(
                session, agents.AgentFilter(role=f.role, capability=f.capability, status=f.status)
            )
        return [Agent.from_model(r) for r in rows]

    @strawberry.field(permission_classes=[IsViewer])
    async def agent(self, info: Info[Context, None], id: strawberry.ID) -> Agent:
        async with info.context.session() as session:
            return Agent.from_model(await agents.get_agent(session, parse_id(id, "id")))

    @strawberry.field(permission_classes=[IsViewer], description="Prompt versions, newest first.")
    async def prompts(
        self, info: Info[Context, None], role: AgentRole | None = None
    ) -> list[Prompt]:
        async with info.context.session() as session:
            return [Prompt.from_model(p) for p in await agents.list_prompts(session, role)]

    @strawberry.field(
        permission_classes=[IsViewer],
        description="LLM calls summed per group; yours only unless you are an admin.",
    )
    async def llm_usage(
        self,
        info: Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
        group_by: list[llm.UsageGroup] | None = None,
    ) -> list[UsageSummary]:
        async with info.context.session() as session:
            rows = await llm.summarize_usage(
                session,
                principal=info.context.require_principal(),
                since=since,
                until=until,
                group_by=group_by or [],
            )
        return [UsageSummary.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsViewer], description="A monthly LLM budget: yours by default."
    )
    async def budget(
        self, info: Info[Context, None], user_id: strawberry.ID | None = None
    ) -> Budget:
        principal = info.context.require_principal()
        target = parse_id(user_id, "userId") if user_id else principal.user_id
        if target != principal.user_id and not principal.is_admin:
            raise Forbidden("only admins see other users' budgets")
        async with info.context.session() as session:
            monthly, spent, unpriced = await llm.get_budget(session, target)
        return Budget.of(target, monthly, spent, unpriced)


@strawberry.type
class AgentMutation:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def register_agent(self, info: Info[Context, None], input: AgentInput) -> Agent:
        services = info.context.services
        async with info.context.session() as session:
            row = await agents.register_agent(
                session,
                principal=info.context.require_principal(),
                spec=to_spec(agents.AgentSpec, input),
                settings=services.settings,
            )
        await agents.publish_agents(services.redis, [row])
        return Agent.from_model(row)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_agent(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateAgentInput
    ) -> Agent:
        async with info.context.session() as session:
            row = await agents.update_agent(
                session,
                principal=info.context.require_principal(),
                agent_id=parse_id(id, "id"),
                spec=to_spec(agents.AgentPatch, input),
            )
        await agents.publish_agents(info.context.services.redis, [row])
        return Agent.from_model(row)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="The role's next prompt version; activate makes agents use it.",
    )
    async def create_prompt_version(
        self, info: Info[Context, None], role: AgentRole, template: str, activate: bool = True
    ) -> Prompt:
        async with info.context.session() as session:
            row = await agents.create_prompt_version(
                session,
                principal=info.context.require_principal(),
                role=role,
                template=template,
                activate=activate,
            )
        return Prompt.from_model(row)

    @strawberry.mutation(
        permission_classes=[IsAdmin], description="A user's monthly LLM budget; null removes it."
    )
    async def set_budget(
        self, info: Info[Context, None], user_id: strawberry.ID, monthly_usd: Decimal | None
    ) -> Budget:
        target = parse_id(user_id, "userId")
        async with info.context.session() as session:
            await llm.set_budget(
                session,
                principal=info.context.require_principal(),
                user_id=target,
                monthly_usd=monthly_usd,
            )
            monthly, spent, unpriced = await llm.get_budget(session, target)
        return Budget.of(target, monthly, spent, unpriced)

    @strawberry.mutation(
        permission_classes=[IsMember],
        description="The planner agent turns the goal into a workflow; execute starts it.",
    )
    async def plan_workflow(
        self,
        info: Info[Context, None],
        goal: str,
        key: str | None = None,
        execute: bool = False,
    ) -> Workflow:
        services = info.context.services
        result = await plan_workflow(
            sessionmaker=services.sessionmaker,
            settings=services.settings,
            llm=services.llm,
            agents=services.agents,
            engine=services.workflow_engine,
            principal=info.context.require_principal(),
            goal=goal,
            key=key,
            execute=execute,
        )
        return Workflow.from_model(result.workflow)
