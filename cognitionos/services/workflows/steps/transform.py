"""TRANSFORM: render a Jinja2 template; JSON output is parsed."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import StrictStr

from cognitionos.services.workflows.steps._json import json_or_text
from cognitionos.services.workflows.steps.base import Kind, StepConfig, StepContext, register

__all__ = ["TransformConfig", "TransformStep"]


class TransformConfig(StepConfig):
    template: StrictStr


class TransformStep(Kind):
    name: ClassVar[str] = "TRANSFORM"
    config_model = TransformConfig
    templated: ClassVar[tuple[str, ...]] = ("template",)
    inline: ClassVar[bool] = True

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        return json_or_text(TransformConfig.read(raw).template)


register(TransformStep())
