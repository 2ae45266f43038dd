"""The router: budget reservation, retries with backoff, fallback along a chain, usage
ledger.

A call with an output schema asks for it the provider's own way (``structured.py``); a
provider or model that refuses it (a 400 about ``response_format`` or tools) is asked the
next way, down to the schema described in the prompt, and the refusal is remembered for
an hour. Token counts come from the provider's usage block, else are estimated from the
text and marked so (``tokens.py``).

A budgeted user's call first reserves its most possible cost (``budget.py``) and gives the
reservation back when it ends, however it ends. It goes to its target (provider + model),
retrying 429/5xx/timeouts/connection errors with exponential backoff and jitter (a
Retry-After is honoured; one longer than ``llm_retry_max_seconds`` moves on at once), then
to each fallback in turn. Every attempt writes an ``llm_usage`` row, so failures and their
latency are accounted too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from opentelemetry import trace
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.base import utcnow
from cognitionos.db.models import BudgetReservation, LLMUsage
from cognitionos.observability import Metrics, get_logger
from cognitionos.services.backoff import backoff
from cognitionos.services.errors import BadUserInput, LLMUnavailable
from cognitionos.services.llm.budget import estimate, release, released, reserve
from cognitionos.services.llm.pricing import cost_of
from cognitionos.services.llm.providers import Provider, build_providers
from cognitionos.services.llm.structured import PROMPT, prompt_instruction
from cognitionos.services.llm.tokens import estimate_prompt_tokens, estimate_tokens
from cognitionos.services.llm.types import (
    ChatRequest,
    ChatResult,
    Completion,
    OnToken,
    ProviderError,
    UsageTag,
)

__all__ = ["PROVIDER_NAMES", "Router", "Target"]

log = get_logger("cognitionos.llm")
_tracer = trace.get_tracer("cognitionos.llm")


def _call_span(target: Target, tag: UsageTag, attempt: int, mode: str | None) -> trace.Span:
    """One attempt at one target, as the OpenTelemetry GenAI conventions name it; ended
    by the caller with the outcome, tokens and cost."""
    return _tracer.start_span(
        f"chat {target.model}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": target.provider,
            "gen_ai.request.model": target.model,
            "cognitionos.llm.purpose": tag.purpose,
            "cognitionos.llm.attempt": attempt + 1,
            "cognitionos.llm.output_mode": mode or "text",
        },
    )


def _error_type(exc: ProviderError) -> str:
    return str(exc.status) if exc.status is not None else type(exc).__name__


PROVIDER_NAMES = ("openai", "anthropic", "compatible")
_SETTINGS_HINT = (
    "set OPENAI_API_KEY, ANTHROPIC_API_KEY or COGNITIONOS_LLM_COMPATIBLE_BASE_URL "
    "(an OpenAI-compatible server such as Ollama)"
)


_REFUSAL_MEMORY_SECONDS = 3600.0
_REFUSAL_MEMORY_SIZE = 256


def _prompt_only(request: ChatRequest) -> ChatRequest:
    """The request with its output schema described in the system prompt instead."""
    assert request.output_schema is not None
    instruction = prompt_instruction(request.output_schema)
    system = f"{request.system}\n\n{instruction}" if request.system else instruction
    return replace(request, system=system, output_schema=None)


def _counts(request: ChatRequest, completion: Completion) -> tuple[int, int, bool]:
    """Tokens in and out, from the provider's usage block when it sent one, else
    estimated from the text (and marked so)."""
    tokens_in, tokens_out = completion.tokens_in, completion.tokens_out
    reported = tokens_in is not None and tokens_out is not None
    if reported and not tokens_in and not tokens_out and completion.text:
        reported = False  # a usage block of zeros for a real answer counts nothing
    if reported:
        assert tokens_in is not None and tokens_out is not None
        return tokens_in, tokens_out, False
    return (
        tokens_in or estimate_prompt_tokens(request),
        tokens_out or estimate_tokens(completion.text),
        True,
    )


@dataclass(frozen=True)
class Target:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


class Router:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        metrics: Metrics | None = None,
        providers: dict[str, Provider] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        # The ledger's reads and writes are single statements: autocommit saves the
        # BEGIN/COMMIT round trips on every call.
        self._engine = sessionmaker.kw["bind"]
        self._autocommit = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self.metrics = metrics
        self.providers = build_providers(settings) if providers is None else providers
        self.sleep = sleep
        # Targets that refused a structured-output mode: (modes left, why, when).
        self._refused: dict[Target, tuple[tuple[str | None, ...], str, float]] = {}

    @property
    def configured(self) -> bool:
        return bool(self.providers)

    def ensure_configured(self) -> None:
        """LLM_UNAVAILABLE naming the settings when no provider is configured."""
        if not self.providers:
            raise LLMUnavailable(f"no LLM provider is configured: {_SETTINGS_HINT}")

    def infer_provider(self, model: str) -> str:
        """The provider for a bare model name: the setting, else by name and keys set."""
        if self.settings.llm_provider:
            return self.settings.llm_provider
        if model.lower().startswith("claude") and "anthropic" in self.providers:
            return "anthropic"
        for name in ("openai", "compatible", "anthropic"):
            if name in self.providers:
                return name
        return "openai"

    def target(self, spec: str | None, provider: str | None = None) -> Target:
        """Parse ``provider:model`` (or a bare model with ``provider``, else inferred)."""
        spec = spec or self.settings.llm_model
        head, sep, tail = spec.partition(":")
        if sep and head in PROVIDER_NAMES:
            return Target(head, tail)
        if provider is not None and provider not in PROVIDER_NAMES:
            raise BadUserInput(
                f"unknown provider {provider!r}; expected one of {list(PROVIDER_NAMES)}",
                field="provider",
            )
        return Target(provider or self.infer_provider(spec), spec)

    def chain(self, primary: Target) -> list[Target]:
        targets = [primary, *(self.target(f) for f in self.settings.llm_fallbacks)]
        return list(dict.fromkeys(targets))

    async def complete(
        self,
        request: ChatRequest,
        *,
        tag: UsageTag,
        model: str | None = None,
        provider: str | None = None,
        on_token: OnToken | None = None,
    ) -> ChatResult:
        self.ensure_configured()
        primary = self.target(model, provider)
        chain = [t for t in self.chain(primary) if t.provider in self.providers]
        if not chain:
            raise LLMUnavailable(
                f"provider {primary.provider!r} is not configured and no configured fallback "
                f"exists: {_SETTINGS_HINT}, or COGNITIONOS_LLM_FALLBACKS"
            )
        reservation = None
        if tag.user_id is not None:
            chain, request, reservation = await self._reserve(tag.user_id, chain, request)
        result = None
        try:
            failures: list[str] = []
            for target in chain:
                result = await self._try(target, request, tag, on_token, failures, reservation)
                if result is not None:  # its usage row settled the reservation
                    result.failed_attempts = failures
                    return result
            raise LLMUnavailable(
                "every LLM provider failed: " + "; ".join(failures), transient=True
            )
        finally:
            if reservation is not None and result is None:
                assert tag.user_id is not None
                await self._release(tag.user_id, reservation)

    async def _reserve(
        self, user_id: uuid.UUID, chain: list[Target], request: ChatRequest
    ) -> tuple[list[Target], ChatRequest, uuid.UUID | None]:
        """For a budgeted user: the chain without unpriced fallbacks, the request with an
        answer limit, and the reservation of its most possible cost. Others: as they are."""
        settings = self.settings
        max_tokens = request.max_tokens or settings.llm_max_tokens
        cost = estimate(
            request, [t.model for t in chain], max_tokens=max_tokens, prices=settings.llm_prices
        )
        # Long enough for every attempt of the chain to time out: past it the call is over.
        attempt = settings.llm_timeout_seconds + settings.llm_retry_max_seconds
        ttl = len(chain) * (settings.llm_max_retries + 1) * attempt + 60
        async with self._autocommit.connect() as conn:
            reservation = await reserve(conn, user_id, cost, ttl_seconds=ttl)
        if reservation is None:
            return chain, request, None
        head, *fallbacks = chain
        priced = [t for t in fallbacks if cost_of(t.model, 0, 0, settings.llm_prices) is not None]
        if len(priced) < len(fallbacks):
            log.warning(
                "fallbacks without a price skipped for a user with a budget",
                skipped=[str(t) for t in fallbacks if t not in priced],
                hint="set COGNITIONOS_LLM_PRICES",
            )
        return [head, *priced], replace(request, max_tokens=max_tokens), reservation

    async def _release(self, user_id: uuid.UUID, reservation: uuid.UUID) -> None:
        try:
            async with self._autocommit.connect() as conn:
                await release(conn, user_id, reservation)
        except Exception:  # it expires on its own; the call's outcome matters more
            log.warning("releasing a budget reservation failed", exc_info=True)

    def _modes(
        self, target: Target, provider: Provider, request: ChatRequest
    ) -> tuple[list[str | None], str | None]:
        """How to ask ``target`` for JSON, in order, and why not natively if so."""
        if request.output_schema is None:
            return [None], None
        if not self.settings.llm_structured_output:
            return [PROMPT], "structured output is off (COGNITIONOS_LLM_STRUCTURED_OUTPUT)"
        known = self._refused.get(target)
        if known is not None and time.monotonic() - known[2] < _REFUSAL_MEMORY_SECONDS:
            return list(known[0]), known[1]
        return [*provider.structured_modes, PROMPT], None

    def _refusal(self, target: Target, modes: list[str | None], reason: str) -> None:
        """Remember for a while that ``target`` refused a mode, so its next calls start
        with what it takes instead of another refused request (bounded: oldest out)."""
        self._refused.pop(target, None)
        self._refused[target] = (tuple(modes), reason, time.monotonic())
        while len(self._refused) > _REFUSAL_MEMORY_SIZE:
            self._refused.pop(next(iter(self._refused)))

    async def _try(
        self,
        target: Target,
        request: ChatRequest,
        tag: UsageTag,
        on_token: OnToken | None,
        failures: list[str],
        reservation: uuid.UUID | None,
    ) -> ChatResult | None:
        settings = self.settings
        provider = self.providers[target.provider]
        modes, fallback = self._modes(target, provider, request)
        attempt = 0
        while attempt <= settings.llm_max_retries:
            mode = modes[0]
            sent = _prompt_only(request) if mode == PROMPT else request
            wire = None if mode in (None, PROMPT) else mode
            started = time.perf_counter()
            span = _call_span(target, tag, attempt, mode)
            try:
                with trace.use_span(span):  # the provider's HTTP request is its child
                    completion = await provider.stream(target.model, sent, on_token, wire)
                tokens_in, tokens_out, estimated = _counts(sent, completion)
            except ProviderError as exc:
                span.set_attributes(
                    {"cognitionos.llm.outcome": "error", "error.type": _error_type(exc)}
                )
                span.end()
                latency = (time.perf_counter() - started) * 1000
                failures.append(f"{target}: {exc}")
                await self._record(tag, target, 0, 0, None, latency, error=str(exc), mode=mode)
                if exc.refused_structured and wire is not None:
                    # Not the call's fault: the same call, asked the next way, may work.
                    modes = modes[1:]
                    fallback = f"{target} refused {wire} structured output ({exc})"
                    self._refusal(target, modes, fallback)
                    log.warning(
                        "structured output refused; asking the next way",
                        target=str(target),
                        refused=wire,
                        next=modes[0],
                        error=str(exc),
                    )
                    continue
                if not exc.retryable or attempt == settings.llm_max_retries:
                    return None
                delay = exc.retry_after
                if delay is None:
                    delay = backoff(settings.llm_retry_base_seconds, attempt)
                if delay > settings.llm_retry_max_seconds:
                    return None  # waiting that long: the fallback is the better bet
                log.info("llm call retrying", target=str(target), delay=delay, error=str(exc))
                await self.sleep(delay)
                attempt += 1
                continue
            except BaseException:
                span.end()  # cancelled: the step was cancelled or timed out
                raise
            latency = (time.perf_counter() - started) * 1000
            cost = cost_of(target.model, tokens_in, tokens_out, settings.llm_prices)
            span.set_attributes(
                {
                    "cognitionos.llm.outcome": "ok",
                    "gen_ai.usage.input_tokens": tokens_in,
                    "gen_ai.usage.output_tokens": tokens_out,
                    "cognitionos.llm.tokens_estimated": estimated,
                }
            )
            if cost is not None:
                span.set_attribute("cognitionos.llm.cost_usd", float(cost))
            span.end()
            if cost is None:
                log.warning(
                    "no price for model; cost recorded as unknown",
                    model=target.model,
                    hint="set COGNITIONOS_LLM_PRICES",
                )
            if estimated:
                log.info(
                    "the provider reported no token usage; counts estimated from the text",
                    target=str(target),
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                )
            await self._record(
                tag,
                target,
                tokens_in,
                tokens_out,
                cost,
                latency,
                settle=reservation,
                estimated=estimated,
                mode=mode,
            )
            return ChatResult(
                text=completion.text,
                provider=target.provider,
                model=target.model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                latency_ms=latency,
                cost_usd=cost,
                tokens_estimated=estimated,
                output_mode=mode,
                structured_fallback=fallback,
                truncated=completion.truncated,
            )
        return None

    async def _record(
        self,
        tag: UsageTag,
        target: Target,
        tokens_in: int,
        tokens_out: int,
        cost: Decimal | None,
        latency_ms: float,
        *,
        error: str | None = None,
        settle: uuid.UUID | None = None,
        estimated: bool = False,
        mode: str | None = None,
    ) -> None:
        """Write the attempt's usage row; ``settle``: and drop that budget reservation in
        the same statement, so the real cost replaces the hold at once."""
        if self.metrics is not None:
            m, labels = self.metrics, (target.provider, target.model)
            m.llm_requests.labels(*labels, "error" if error else "ok").inc()
            m.llm_latency.labels(*labels).observe(latency_ms / 1000)
            m.llm_tokens.labels(*labels, "in").inc(tokens_in)
            m.llm_tokens.labels(*labels, "out").inc(tokens_out)
            if cost is not None:
                m.llm_cost.labels(*labels).inc(float(cost))
        row = insert(LLMUsage).values(
            id=uuid.uuid4(),
            created_at=utcnow(),  # explicit: column defaults are not applied beside a CTE
            user_id=tag.user_id,
            execution_id=tag.execution_id,
            step_id=tag.step_id,
            agent_id=tag.agent_id,
            purpose=tag.purpose,
            provider=target.provider,
            model=target.model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            tokens_estimated=estimated,
            output_mode=mode,
            cost_usd=cost if error is None else Decimal(0),
            latency_ms=latency_ms,
            success=error is None,
            error=error,
        )
        if settle is not None and tag.user_id is not None:
            gone = released(tag.user_id, settle).returning(BudgetReservation.id)
            row = row.add_cte(gone.cte("released"))
        async with self._autocommit.connect() as conn:
            await conn.execute(row)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
