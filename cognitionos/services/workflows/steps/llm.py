"""LLM: one prompt to a model through the router; tokens stream to ``stepOutput``. With an
``outputSchema`` the schema goes to the provider (structured output) and the answer is
validated against it either way."""

from __future__ import annotations

from typing import Any, ClassVar

import jsonschema

from cognitionos.observability import get_logger
from cognitionos.services.errors import BadUserInput, LLMUnavailable
from cognitionos.services.llm import (
    PROVIDER_NAMES,
    ChatRequest,
    JSONOutputError,
    Router,
    UsageTag,
    parse_json_output,
)
from cognitionos.services.llm.types import OnToken
from cognitionos.services.workflows.output import append_text
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    register,
    require_fields,
)

log = get_logger("cognitionos.llm")

__all__ = ["LLMStep", "need_router", "retry_note", "token_streamer", "unavailable"]


def need_router(ctx: StepContext) -> Router:
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


def check_llm_options(config: dict[str, Any], field: str) -> None:
    provider = config.get("provider")
    if provider is not None and provider not in PROVIDER_NAMES:
        raise BadUserInput(
            f"provider must be one of {list(PROVIDER_NAMES)}", field=f"{field}.provider"
        )
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise BadUserInput("temperature must be between 0 and 2", field=f"{field}.temperature")
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and max_tokens < 1:
        raise BadUserInput("maxTokens must be positive", field=f"{field}.maxTokens")


class LLMStep:
    name: ClassVar[str] = "LLM"
    templated: ClassVar[tuple[str, ...]] = ("prompt", "system")
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(
            config,
            field,
            {"prompt": str},
            {
                "system": str,
                "model": str,
                "provider": str,
                "temperature": (int, float),
                "maxTokens": int,
                "outputSchema": dict,
            },
        )
        check_llm_options(config, field)
        schema = config.get("outputSchema")
        if schema is not None:
            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise BadUserInput(
                    f"invalid output schema: {exc.message}", field=f"{field}.outputSchema"
                ) from None

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        router = need_router(ctx)
        schema = config.get("outputSchema")
        request = ChatRequest(
            messages=[{"role": "user", "content": config["prompt"] + retry_note(ctx)}],
            system=config.get("system"),
            temperature=config.get("temperature"),
            max_tokens=config.get("maxTokens") or ctx.settings.llm_max_tokens,
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
                model=config.get("model"),
                provider=config.get("provider"),
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
