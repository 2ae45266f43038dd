"""Jinja2 in a sandbox: step configs reference ``{{ inputs.x }}`` and ``{{ steps.k.output }}``."""

from __future__ import annotations

import re
from typing import Any

from cognitionos.services.templating import TemplateFailure, check_template, render

__all__ = [
    "TemplateFailure",
    "check_template",
    "referenced_steps",
    "render",
    "render_config",
    "render_value",
]

_STEP_REF = re.compile(r"""steps\s*(?:\.\s*([A-Za-z_][\w-]*)|\[\s*['"]([^'"]+)['"]\s*\])""")


def referenced_steps(text: str) -> set[str]:
    return {a or b for a, b in _STEP_REF.findall(text)}


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Render every string inside ``value`` (dicts and lists recursively)."""
    if isinstance(value, str):
        return render(value, variables) if ("{{" in value or "{%" in value) else value
    if isinstance(value, dict):
        return {k: render_value(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    return value


def strings_in(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a config with its dotted path, for validation."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in strings_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in strings_in(v, f"{path}[{i}]")]
    return []


def render_config(
    config: dict[str, Any], templated: tuple[str, ...], variables: dict[str, Any]
) -> dict[str, Any]:
    """Render the fields a step kind declares templated (``("*",)``: all of them)."""
    if "*" in templated:
        rendered: dict[str, Any] = render_value(config, variables)
        return rendered
    return {
        key: render_value(value, variables) if key in templated else value
        for key, value in config.items()
    }
