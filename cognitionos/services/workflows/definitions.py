"""Workflow definitions: validation of the DAG and every step, immutable versions."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.workflows import Workflow
from cognitionos.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from cognitionos.services.pagination import Page, paginate
from cognitionos.services.workflows import dag
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

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
MAX_STEPS = 500


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    initial_delay_seconds: float = 1.0
    backoff_factor: float = 2.0
    max_delay_seconds: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter (half fixed, half random) after ``attempt``."""
        base = min(
            self.max_delay_seconds,
            self.initial_delay_seconds * self.backoff_factor ** max(0, attempt - 1),
        )
        return base / 2 + random.uniform(0, base / 2)

    def as_json(self) -> dict[str, float]:
        return {
            "maxAttempts": self.max_attempts,
            "initialDelaySeconds": self.initial_delay_seconds,
            "backoffFactor": self.backoff_factor,
            "maxDelaySeconds": self.max_delay_seconds,
        }


@dataclass(frozen=True)
class StepSpec:
    key: str
    kind: str
    name: str | None = None
    agent_capability: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float = 300.0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StepSpec:
        retry = raw.get("retry") or {}
        return cls(
            key=raw["key"],
            kind=raw["kind"],
            name=raw.get("name"),
            agent_capability=raw.get("agentCapability"),
            config=dict(raw.get("config") or {}),
            depends_on=tuple(raw.get("dependsOn") or ()),
            retry=RetryPolicy(
                max_attempts=int(retry.get("maxAttempts", 1)),
                initial_delay_seconds=float(retry.get("initialDelaySeconds", 1.0)),
                backoff_factor=float(retry.get("backoffFactor", 2.0)),
                max_delay_seconds=float(retry.get("maxDelaySeconds", 60.0)),
            ),
            timeout_seconds=float(raw.get("timeoutSeconds") or 300.0),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "agentCapability": self.agent_capability,
            "config": self.config,
            "dependsOn": list(self.depends_on),
            "retry": self.retry.as_json(),
            "timeoutSeconds": self.timeout_seconds,
        }


def parse_semver(version: str) -> tuple[int, int, int, bool]:
    match = _SEMVER.match(version.strip())
    if not match:
        raise BadUserInput(f"version {version!r} is not semver (e.g. 1.0.0)", field="version")
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch), pre is None


def _check_retry(raw: Any, field: str) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise BadUserInput("retry must be an object", field=field)
    attempts = raw.get("maxAttempts", 1)
    if not isinstance(attempts, int) or not 1 <= attempts <= 50:
        raise BadUserInput("maxAttempts must be 1 to 50", field=f"{field}.maxAttempts")
    for name in ("initialDelaySeconds", "maxDelaySeconds"):
        value = raw.get(name, 0)
        if not isinstance(value, (int, float)) or not 0 <= value <= 86400:
            raise BadUserInput(f"{name} must be 0 to 86400", field=f"{field}.{name}")
    factor = raw.get("backoffFactor", 2)
    if not isinstance(factor, (int, float)) or not 1 <= factor <= 10:
        raise BadUserInput("backoffFactor must be 1 to 10", field=f"{field}.backoffFactor")


def _check_step_shape(raw: Any, index: int, seen: set[str]) -> str:
    where = f"steps[{index}]"
    if not isinstance(raw, dict):
        raise BadUserInput("a step must be an object", field=where)
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise BadUserInput(
            "step key must start with a letter or _ and use letters, digits, _ or -",
            field=f"{where}.key",
        )
    if key in seen:
        raise BadUserInput(f"duplicate step key {key!r}", field=f"{where}.key", step=key)
    kind = raw.get("kind")
    if get_kind(str(kind)) is None:
        raise BadUserInput(
            f"step {key!r}: unknown kind {kind!r}; known kinds: {', '.join(kind_names())}",
            field=f"{where}.kind",
            step=key,
        )
    capability = raw.get("agentCapability")
    if capability is not None and (not isinstance(capability, str) or not capability.strip()):
        raise BadUserInput(
            "agentCapability must be a non-empty string", field=f"{where}.agentCapability"
        )
    if getattr(get_kind(str(kind)), "needs_capability", False) and capability is None:
        raise BadUserInput(
            f"step {key!r}: a {kind} step needs agentCapability (the capability of the agent "
            "that runs it)",
            field=f"{where}.agentCapability",
            step=key,
        )
    deps = raw.get("dependsOn") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise BadUserInput("dependsOn must be a list of step keys", field=f"{where}.dependsOn")
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise BadUserInput("config must be an object", field=f"{where}.config", step=key)
    timeout = raw.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, (int, float)) or not 0 < timeout <= 86400):
        raise BadUserInput("timeoutSeconds must be in (0, 86400]", field=f"{where}.timeoutSeconds")
    _check_retry(raw.get("retry"), f"{where}.retry")
    return key


def validate_steps(raw_steps: Sequence[Any]) -> list[StepSpec]:
    """Every rule a definition must pass; errors name the step and the field."""
    if not raw_steps:
        raise BadUserInput("a workflow needs at least one step", field="steps")
    if len(raw_steps) > MAX_STEPS:
        raise BadUserInput(f"at most {MAX_STEPS} steps", field="steps")
    seen: set[str] = set()
    for index, raw in enumerate(raw_steps):
        seen.add(_check_step_shape(raw, index, seen))
    specs = [StepSpec.from_json(raw) for raw in raw_steps]
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
        kind.validate(spec.config, field=where)
        _check_templates(spec, kind.templated, graph, where)
    return specs


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
    if not _KEY.match(key):
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
        steps=[s.as_json() for s in specs],
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
        escaped = text.replace("%", r"\%").replace("_", r"\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                Workflow.key.ilike(pattern),
                Workflow.name.ilike(pattern),
                Workflow.description.ilike(pattern),
            )
        )
    return await paginate(session, Workflow, stmt, first=first, after=after)
