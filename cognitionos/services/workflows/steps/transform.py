"""TRANSFORM: render a Jinja2 template; JSON output is parsed."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from cognitionos.services.workflows.steps.base import StepContext, register, require_fields

__all__ = ["TransformStep", "parse_json_or_text"]


def parse_json_or_text(text: str) -> Any:
    stripped = text.strip()
    if (
        stripped[:1] in ("{", "[", '"')
        or stripped in ("true", "false", "null")
        or (stripped[:1].isdigit() or stripped[:1] == "-")
    ):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            pass
    return text


class TransformStep:
    name: ClassVar[str] = "TRANSFORM"
    templated: ClassVar[tuple[str, ...]] = ("template",)
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = True

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(config, field, {"template": str})

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        return parse_json_or_text(config["template"])


register(TransformStep())
