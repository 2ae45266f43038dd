"""TRANSFORM: render a Jinja2 template; JSON output is parsed."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import StrictStr

from cognitionos.services.workflows.steps.base import Kind, StepConfig, StepContext, register

__all__ = ["TransformConfig", "TransformStep", "parse_json_or_text"]


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


class TransformConfig(StepConfig):
    template: StrictStr


class TransformStep(Kind):
    name: ClassVar[str] = "TRANSFORM"
    config_model = TransformConfig
    templated: ClassVar[tuple[str, ...]] = ("template",)
    inline: ClassVar[bool] = True

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        return parse_json_or_text(TransformConfig.read(raw).template)


register(TransformStep())
