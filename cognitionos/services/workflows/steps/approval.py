"""APPROVAL: waits until someone calls ``approveStep``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import StrictStr

from cognitionos.services.workflows.steps.base import Kind, StepConfig, StepContext, register

__all__ = ["ApprovalConfig", "ApprovalStep"]


class ApprovalConfig(StepConfig):
    prompt: StrictStr | None = None


class ApprovalStep(Kind):
    name: ClassVar[str] = "APPROVAL"
    config_model = ApprovalConfig
    templated: ClassVar[tuple[str, ...]] = ("prompt",)
    waits_for_approval: ClassVar[bool] = True

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        # The engine parks the step in WAITING_APPROVAL instead of calling this.
        return {"prompt": ApprovalConfig.read(raw).prompt}


register(ApprovalStep())
