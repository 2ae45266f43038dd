"""Jinja2 in a sandbox: step configs reference ``{{ inputs.x }}`` and ``{{ steps.k.output }}``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cognitionos.services.templating import TemplateFailure, TemplateRenderer, check_template

__all__ = [
    "TemplateFailure",
    "check_template",
    "referenced_steps",
    "render_config",
    "render_value",
]

_STEP_REF = re.compile(r"""steps\s*(?:\.\s*([A-Za-z_][\w-]*)|\[\s*['"]([^'"]+)['"]\s*\])""")


def referenced_steps(text: str) -> set[str]:
    return {a or b for a, b in _STEP_REF.findall(text)}


def _templated(value: Any, found: list[str]) -> None:
    """Collect the strings of ``value`` that hold template syntax, depth first."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _templated(item, found)
    elif isinstance(value, list):
        for item in value:
            _templated(item, found)


def _substitute(value: Any, rendered: Iterator[str]) -> Any:
    """``value`` with its templated strings replaced, in ``_templated``'s order."""
    if isinstance(value, str):
        return next(rendered) if ("{{" in value or "{%" in value) else value
    if isinstance(value, dict):
        return {k: _substitute(v, rendered) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, rendered) for v in value]
    return value


async def render_value(
    value: Any,
    variables: dict[str, Any],
    *,
    renderer: TemplateRenderer,
    time_limit: float | None = None,
) -> Any:
    """Render every string inside ``value`` (dicts and lists recursively) in one round
    trip to the render processes, under one deadline."""
    texts: list[str] = []
    _templated(value, texts)
    if not texts:
        return value
    rendered = await renderer.render_many(texts, variables, time_limit=time_limit)
    return _substitute(value, iter(rendered))


def strings_in(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a config with its dotted path, for validation."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in strings_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in strings_in(v, f"{path}[{i}]")]
    return []


async def render_config(
    config: dict[str, Any],
    templated: tuple[str, ...],
    variables: dict[str, Any],
    *,
    renderer: TemplateRenderer,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """Render the fields a step kind declares templated (``("*",)``: all of them).
    ``time_limit`` is the step's timeout: when smaller than the template timeout, it wins."""
    chosen = config if "*" in templated else {k: v for k, v in config.items() if k in templated}
    rendered: dict[str, Any] = await render_value(
        chosen, variables, renderer=renderer, time_limit=time_limit
    )
    return {**config, **rendered}
