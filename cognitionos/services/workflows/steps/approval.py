"""APPROVAL: waits until someone calls ``approveStep``."""

from __future__ import annotations

from typing import Any, ClassVar

from cognitionos.services.workflows.steps.base import StepContext, register, require_fields

__all__ = ["ApprovalStep"]


class ApprovalStep:
    name: ClassVar[str] = "APPROVAL"
    templated: ClassVar[tuple[str, ...]] = ("prompt",)
    waits_for_approval: ClassVar[bool] = True
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(config, field, {}, {"prompt": str})

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        # The engine parks the step in WAITING_APPROVAL instead of calling this.
        return {"prompt": config.get("prompt")}


register(ApprovalStep())
