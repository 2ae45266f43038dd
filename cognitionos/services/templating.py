"""The one Jinja2 sandbox: strict about missing variables, no autoescape, a ``tojson``
filter. Step configs, role prompts and notification templates all render here."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from cognitionos.services.errors import BadUserInput

__all__ = ["TemplateFailure", "check_template", "render"]

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ENV.filters["tojson"] = lambda value: json.dumps(value, default=str)


class TemplateFailure(Exception):
    """Rendering failed at run time (missing variable, sandbox violation...)."""


def check_template(text: str, *, field: str) -> None:
    try:
        _ENV.parse(text)
    except TemplateError as exc:
        raise BadUserInput(f"invalid template: {exc}", field=field) from None


def render(text: str, variables: dict[str, Any]) -> str:
    try:
        return _ENV.from_string(text).render(**variables)
    except TemplateError as exc:
        raise TemplateFailure(f"template error: {exc}") from None
    except Exception as exc:  # e.g. a filter raising on bad input
        raise TemplateFailure(f"template error: {type(exc).__name__}: {exc}") from None
