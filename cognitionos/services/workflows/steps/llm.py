"""LLM: one prompt to a model through the router; tokens stream to ``stepOutput``. With an
``outputSchema`` the schema goes to the provider (structured output) and the answer is
validated against it either way."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import jsonschema
from pydantic import AfterValidator, StrictStr

from cognitionos.observability import get_logger
from cognitionos.services.errors import LLMUnavailable
from cognitionos.services.llm import (
    ChatRequest,
    JSONOutputError,
    LLMOptions,
    UsageTag,
    parse_json_output,
)
from cognitionos.services.llm.types import OnToken
from cognitionos.services.specs import spec_error
from cognitionos.services.workflows.output import append_text
from cognitionos.services.workflows.ports import LLM
from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepFailure,
    register,
)

log = get_logger("cognitionos.llm")

__all__ = ["LLMConfig", "LLMStep", "need_router", "retry_note", "token_streamer", "unavailable"]


def need_router(ctx: StepContext) -> LLM:
    if ctx.llm is None or not ctx.llm.configured:
        raise StepFailure(
            "no LLM provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY or "
            "COGNITIONOS_LLM_COMPATIBLE_BASE_URL on the workers",
            retryable=False,
        )
    return ctx.llm


def token_streamer(ctx: StepContext) -> OnToken | None:
    """Append each token to the attempt's output log, which ``stepOutput`` follows
    (best effort)."""
    redis = ctx.redis
    if redis is None:
        return None
    step_id, attempt = ctx.step_id, ctx.attempt

    async def on_token(text: str) -> None:
        try:
            await append_text(redis, step_id, attempt, text)
        except Exception:  # live output is a view; the step's result is what counts
            log.debug("publishing a token failed", exc_info=True)

    return on_token


def unavailable(exc: LLMUnavailable) -> StepFailure:
    return StepFailure(f"{exc.code}: {exc.message}", retryable=exc.transient)


def retry_note(ctx: StepContext) -> str:
    if ctx.previous_error and ctx.attempt > 1:
        return f"\n\nYour previous attempt was rejected: {ctx.previous_error}\nFix this."
    return ""


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise spec_error(f"invalid output schema: {exc.message}") from None
    return schema


class LLMConfig(LLMOptions, StepConfig):
    prompt: StrictStr
    system: StrictStr | None = None
    output_schema: Annotated[dict[str, Any], AfterValidator(_json_schema)] | None = None


class LLMStep(Kind):
    name: ClassVar[str] = "LLM"
    config_model = LLMConfig
    templated: ClassVar[tuple[str, ...]] = ("prompt", "system")

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        config = LLMConfig.read(raw)
        router = need_router(ctx)
        schema = config.output_schema
        request = ChatRequest(
            messages=[{"role": "user", "content": config.prompt + retry_note(ctx)}],
            system=config.system,
            temperature=config.temperature,
            max_tokens=config.max_tokens or ctx.settings.llm_max_tokens,
            output_schema=schema,
            schema_name=f"{ctx.step_key}_output",
        )
        try:
            result = await router.complete(
                request,
                tag=UsageTag(
                    purpose="LLM_STEP",
                    user_id=ctx.actor_id,
                    execution_id=ctx.execution_id,
                    step_id=ctx.step_id,
                ),
                model=config.model,
                provider=config.provider,
                on_token=token_streamer(ctx),
            )
        except LLMUnavailable as exc:
            raise unavailable(exc) from None
        ctx.charge(result)
        if schema is None:
            return result.text
        try:
            return parse_json_output(result.text, schema)
        except JSONOutputError as exc:
            raise StepFailure(str(exc), retryable=True) from None


register(LLMStep())
