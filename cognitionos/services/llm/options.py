"""The model options an LLM step and an agent both set, with their one set of rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from cognitionos.services.llm.router import PROVIDER_NAMES
from cognitionos.services.specs import Number, Spec, spec_error

__all__ = ["LLMOptions"]


def _provider(name: str) -> str:
    if name not in PROVIDER_NAMES:
        raise spec_error(f"provider must be one of {list(PROVIDER_NAMES)}")
    return name


class LLMOptions(Spec):
    provider: Annotated[StrictStr, AfterValidator(_provider)] | None = Field(
        None, description="openai, anthropic or compatible; null: inferred"
    )
    model: StrictStr | None = Field(None, description="null: the default model")
    temperature: Number | None = Field(None, ge=0, le=2)
    max_tokens: StrictInt | None = Field(None, gt=0)
