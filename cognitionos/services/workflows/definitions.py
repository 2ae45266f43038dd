"""Workflow definitions: validation of the DAG and every step, immutable versions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import jsonschema
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.workflows import Workflow
from cognitionos.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from cognitionos.services.pagination import Page, paginate
from cognitionos.services.workflows import dag
from cognitionos.services.workflows.spec import KEY, RetryPolicy, StepSpec
from cognitionos.services.workflows.steps import get_kind, kind_names
from cognitionos.services.workflows.templates import (
    check_template,
    referenced_steps,
    strings_in,
)

__all__ = [
    "RetryPolicy",
    "StepSpec",
    "check_inputs",
    "controls_key",
    "create_workflow",
    "get_workflow",
    "list_workflows",
    "parse_semver",
    "validate_steps",
]

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
MAX_STEPS = 500


def parse_semver(version: str) -> tuple[int, int, int, bool]:
    match = _SEMVER.match(version.strip())
    if not match:
        raise BadUserInput(f"version {version!r} is not semver (e.g. 1.0.0)", field="version")
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch), pre is None


def validate_steps(raw_steps: Sequence[Any]) -> list[StepSpec]:
    """Every rule a definition must pass; errors name the step and the field."""
    if not raw_steps:
        raise BadUserInput("a workflow needs at least one step", field="steps")
    if len(raw_steps) > MAX_STEPS:
        raise BadUserInput(f"at most {MAX_STEPS} steps", field="steps")
    specs: list[StepSpec] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_steps):
        specs.append(_shaped(raw, f"steps[{index}]", seen))
        seen.add(specs[-1].key)
    graph = {s.key: list(s.depends_on) for s in specs}
    for index, spec in enumerate(specs):
        for dep in spec.depends_on:
            if dep not in graph:
                raise BadUserInput(
                    f"step {spec.key!r} depends on unknown step {dep!r}",
                    field=f"steps[{index}].dependsOn",
                    step=spec.key,
                )
    cycle = dag.find_cycle(graph)
    if cycle:
        raise BadUserInput("dependency cycle: " + " -> ".join(cycle), field="steps", cycle=cycle)
    for index, spec in enumerate(specs):
        kind = get_kind(spec.kind)
        assert kind is not None
        where = f"steps[{index}].config"
        kind.validate(spec.config, field=where, step=spec.key)
        _check_templates(spec, kind.templated, graph, where)
    return specs


def _shaped(raw: Any, where: str, seen: set[str]) -> StepSpec:
    """One step's own fields, its kind, and a key no earlier step has."""
    key = raw.get("key") if isinstance(raw, dict) else None
    spec = StepSpec.parse(raw, field=where, step=key if isinstance(key, str) else None)
    if spec.key in seen:
        raise BadUserInput(f"duplicate step key {key!r}", field=f"{where}.key", step=key)
    kind = get_kind(spec.kind)
    if kind is None:
        raise BadUserInput(
            f"step {key!r}: unknown kind {spec.kind!r}; known kinds: {', '.join(kind_names())}",
            field=f"{where}.kind",
            step=key,
        )
    if kind.needs_capability and spec.agent_capability is None:
        raise BadUserInput(
            f"step {key!r}: a {spec.kind} step needs agentCapability (the capability of the "
            "agent that runs it)",
            field=f"{where}.agentCapability",
            step=key,
        )
    return spec


def _check_templates(
    spec: StepSpec, templated: tuple[str, ...], graph: dict[str, list[str]], where: str
) -> None:
    fields = spec.config if "*" in templated else {k: spec.config.get(k) for k in templated}
    upstream = dag.ancestors(graph, spec.key)
    for path, text in strings_in(fields, where):
        check_template(text, field=path)
        for ref in referenced_steps(text):
            if ref not in graph:
                raise BadUserInput(
                    f"step {spec.key!r} references unknown step {ref!r}", field=path, step=spec.key
                )
            if ref not in upstream:
                raise BadUserInput(
                    f"step {spec.key!r} uses the output of {ref!r}, so it must depend on it",
                    field=path,
                    step=spec.key,
                )


def check_inputs(schema: dict[str, Any] | None, inputs: dict[str, Any]) -> None:
    if not schema:
        return
    errors = sorted(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(inputs),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.absolute_path)
        raise BadUserInput(
            f"inputs do not match the workflow's input schema: {first.message}",
            field="inputs" + (f".{path}" if path else ""),
        )


async def key_owner(session: AsyncSession, key: str) -> tuple[bool, uuid.UUID | None]:
    """Whether the key exists, and who created its first version (its owner)."""
    first = (
        await session.execute(
            select(Workflow.created_by)
            .where(Workflow.key == key)
            .order_by(Workflow.created_at, Workflow.id)
            .limit(1)
        )
    ).first()
    return (first is not None, first[0] if first is not None else None)


async def controls_key(
    session: AsyncSession, *, key: str, actor_id: uuid.UUID | None, is_admin: bool
) -> bool:
    """A key belongs to whoever created its first version: they (or an admin) add versions."""
    exists, owner = await key_owner(session, key)
    return is_admin or not exists or (owner is not None and owner == actor_id)


async def create_workflow(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    is_admin: bool = False,
    key: str,
    version: str,
    name: str,
    steps: Sequence[Any],
    description: str | None = None,
    tags: Sequence[str] = (),
    input_schema: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Workflow:
    """Validate and store a new immutable version; commits. CONFLICT if it exists,
    FORBIDDEN if the key belongs to someone else."""
    if not KEY.match(key):
        raise BadUserInput(
            "key must start with a letter and use letters, digits, _ or -", field="key"
        )
    major, minor, patch, release = parse_semver(version)
    if not name.strip():
        raise BadUserInput("name is required", field="name")
    specs = validate_steps(steps)
    if input_schema is not None:
        try:
            jsonschema.validators.validator_for(input_schema).check_schema(input_schema)
        except jsonschema.SchemaError as exc:
            raise BadUserInput(
                f"invalid input schema: {exc.message}", field="inputSchema"
            ) from None
    # Serialize writers of one key so two first versions cannot race for its ownership.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended("workflow-key:" + key, 0)))
    )
    if not await controls_key(session, key=key, actor_id=actor_id, is_admin=is_admin):
        await session.rollback()
        raise Forbidden(
            f"workflow key {key} belongs to the user who created its first version; "
            "only they or an admin add versions (choose another key)",
            field="key",
        )
    workflow = Workflow(
        key=key,
        version=version.strip(),
        major=major,
        minor=minor,
        patch=patch,
        is_release=release,
        name=name.strip(),
        description=description,
        tags=sorted(set(tags)),
        steps=[s.dump() for s in specs],
        input_schema=input_schema,
        extra=metadata or {},
        created_by=actor_id,
    )
    session.add(workflow)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(
            f"workflow {key} version {version} already exists; versions are immutable, "
            "create a new version",
            field="version",
        ) from None
    return workflow


async def get_workflow(
    session: AsyncSession, *, key: str, version: str | None = None
) -> Workflow | None:
    stmt = select(Workflow).where(Workflow.key == key)
    if version is not None:
        return await session.scalar(stmt.where(Workflow.version == version))
    stmt = stmt.order_by(
        Workflow.major.desc(),
        Workflow.minor.desc(),
        Workflow.patch.desc(),
        Workflow.is_release.desc(),
        Workflow.created_at.desc(),
    ).limit(1)
    return await session.scalar(stmt)


async def require_workflow(
    session: AsyncSession, *, key: str, version: str | None = None
) -> Workflow:
    workflow = await get_workflow(session, key=key, version=version)
    if workflow is None:
        what = f"{key} version {version}" if version else key
        raise NotFound(f"workflow {what} not found")
    return workflow


async def list_workflows(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    tag: str | None = None,
    text: str | None = None,
    key: str | None = None,
) -> Page[Workflow]:
    stmt = select(Workflow)
    if tag:
        stmt = stmt.where(Workflow.tags.contains([tag]))
    if key:
        stmt = stmt.where(Workflow.key == key)
    if text:
        # The backslash first: it is LIKE's escape character.
        escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                Workflow.key.ilike(pattern),
                Workflow.name.ilike(pattern),
                Workflow.description.ilike(pattern),
            )
        )
    return await paginate(session, Workflow, stmt, first=first, after=after)
