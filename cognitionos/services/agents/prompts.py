"""Versioned role prompts. v1 of each role ships with the package (``prompts/*.v1.md``)
and is stored on first start; ``create_prompt_version`` adds the next version."""

from __future__ import annotations

import uuid
from importlib import resources
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models import AgentRole, Prompt
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, Forbidden, NotFound
from cognitionos.services.inputs import PromptVersion
from cognitionos.services.templating import TemplateFailure, TemplateRenderer, check_template

__all__ = [
    "PromptVersion",
    "create_prompt_version",
    "ensure_prompts",
    "list_prompts",
    "packaged_prompt",
    "render_prompt",
    "resolve_prompt",
]


def packaged_prompt(role: AgentRole) -> str:
    return (
        resources.files("cognitionos.services.agents")
        .joinpath(f"prompts/{role.value.lower()}.v1.md")
        .read_text(encoding="utf-8")
    )


async def ensure_prompts(session: AsyncSession) -> None:
    """Store v1 of every role (active when the role has no active prompt). Idempotent."""
    for role in AgentRole:
        has_active = await session.scalar(
            select(func.count()).where(Prompt.role == role, Prompt.active.is_(True))
        )
        await session.execute(
            insert(Prompt)
            .values(
                id=uuid.uuid4(),
                role=role,
                version=1,
                template=packaged_prompt(role),
                active=not has_active,
            )
            .on_conflict_do_nothing()
        )


async def list_prompts(session: AsyncSession, role: AgentRole | None = None) -> list[Prompt]:
    stmt = select(Prompt).order_by(Prompt.role, Prompt.version.desc())
    if role is not None:
        stmt = stmt.where(Prompt.role == role)
    return list((await session.scalars(stmt)).all())


async def create_prompt_version(
    session: AsyncSession,
    *,
    principal: Principal,
    role: AgentRole,
    template: str,
    activate: bool,
) -> Prompt:
    """The role's next version; ``activate`` makes it the one agents use. Commits."""
    if not principal.is_admin:
        raise Forbidden("only admins manage prompts")
    if not template.strip():
        raise BadUserInput("the template is empty", field="template")
    check_template(template, field="template")
    # One writer per role at a time: the version number is max + 1.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"prompt:{role}"))))
    latest = await session.scalar(select(func.max(Prompt.version)).where(Prompt.role == role))
    if activate:
        await session.execute(
            update(Prompt).where(Prompt.role == role, Prompt.active.is_(True)).values(active=False)
        )
    prompt = Prompt(
        role=role,
        version=(latest or 0) + 1,
        template=template,
        active=activate,
        created_by=principal.user_id,
    )
    session.add(prompt)
    await session.commit()
    return prompt


async def resolve_prompt(session: AsyncSession, role: AgentRole, version: int | None) -> Prompt:
    """The pinned ``version`` of the role's prompt, else its active one."""
    stmt = select(Prompt).where(Prompt.role == role)
    stmt = stmt.where(Prompt.version == version) if version else stmt.where(Prompt.active)
    prompt = await session.scalar(stmt)
    if prompt is None:
        what = f"version {version}" if version else "an active version"
        raise NotFound(f"the {role.value} prompt has no {what}")
    return prompt


async def render_prompt(
    prompt: Prompt, variables: dict[str, Any], *, renderer: TemplateRenderer
) -> str:
    try:
        return await renderer.render(prompt.template, variables)
    except TemplateFailure as exc:
        raise BadUserInput(
            f"{prompt.role.value} prompt v{prompt.version} does not render: {exc}",
            field="template",
        ) from None
