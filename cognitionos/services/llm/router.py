"""The router: budget check, retries with backoff, fallback along a chain, usage ledger.

A call goes to its target (provider + model), retrying 429/5xx/timeouts/connection
errors with exponential backoff and jitter (a Retry-After is honoured; one longer than
``llm_retry_max_seconds`` moves on at once), then to each fallback in turn. Every attempt
writes an ``llm_usage`` row, so failures and their latency are accounted too.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from opentelemetry import trace
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models import LLMUsage
from cognitionos.observability import Metrics, get_logger
from cognitionos.services.errors import BadUserInput, LLMUnavailable
from cognitionos.services.llm.pricing import cost_of
from cognitionos.services.llm.providers import Provider, build_providers
from cognitionos.services.llm.types import (
    ChatRequest,
    ChatResult,
    OnToken,
    ProviderError,
    UsageTag,
)
from cognitionos.services.llm.usage import check_budget

__all__ = ["PROVIDER_NAMES", "Router", "Target"]

log = get_logger("cognitionos.llm")
_tracer = trace.get_tracer("cognitionos.llm")

PROVIDER_NAMES = ("openai", "anthropic", "compatible")
_SETTINGS_HINT = (
    "set OPENAI_API_KEY, ANTHROPIC_API_KEY or COGNITIONOS_LLM_COMPATIBLE_BASE_URL "
    "(an OpenAI-compatible server such as Ollama)"
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
        bind = sessionmaker.kw["bind"]
        self._autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
        self.metrics = metrics
        self.providers = build_providers(settings) if providers is None else providers
        self.sleep = sleep

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
        if tag.user_id is not None:
            async with self._autocommit.connect() as conn:
                await check_budget(conn, tag.user_id)
        failures: list[str] = []
        for target in chain:
            result = await self._try(target, request, tag, on_token, failures)
            if result is not None:
                result.failed_attempts = failures
                return result
        raise LLMUnavailable("every LLM provider failed: " + "; ".join(failures), transient=True)

    async def _try(
        self,
        target: Target,
        request: ChatRequest,
        tag: UsageTag,
        on_token: OnToken | None,
        failures: list[str],
    ) -> ChatResult | None:
        settings = self.settings
        provider = self.providers[target.provider]
        for attempt in range(settings.llm_max_retries + 1):
            started = time.perf_counter()
            span = _tracer.start_span(
                "llm.call",
                attributes={
                    "llm.provider": target.provider,
                    "llm.model": target.model,
                    "llm.purpose": tag.purpose,
                    "llm.attempt": attempt + 1,
                },
            )
            try:
                with trace.use_span(span, end_on_exit=True):
                    text, tokens_in, tokens_out = await provider.stream(
                        target.model, request, on_token
                    )
                    span.set_attribute("llm.tokens_in", tokens_in)
                    span.set_attribute("llm.tokens_out", tokens_out)
            except ProviderError as exc:
                latency = (time.perf_counter() - started) * 1000
                failures.append(f"{target}: {exc}")
                await self._record(tag, target, 0, 0, None, latency, error=str(exc))
                if not exc.retryable or attempt == settings.llm_max_retries:
                    return None
                delay = exc.retry_after
                if delay is None:
                    base = settings.llm_retry_base_seconds * 2**attempt
                    delay = base / 2 + random.uniform(0, base / 2)
                if delay > settings.llm_retry_max_seconds:
                    return None  # waiting that long: the fallback is the better bet
                log.info("llm call retrying", target=str(target), delay=delay, error=str(exc))
                await self.sleep(delay)
                continue
            latency = (time.perf_counter() - started) * 1000
            cost = cost_of(target.model, tokens_in, tokens_out, settings.llm_prices)
            if cost is None:
                log.warning(
                    "no price for model; cost recorded as unknown",
                    model=target.model,
                    hint="set COGNITIONOS_LLM_PRICES",
                )
            await self._record(tag, target, tokens_in, tokens_out, cost, latency)
            return ChatResult(
                text=text,
                provider=target.provider,
                model=target.model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                latency_ms=latency,
                cost_usd=cost,
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
    ) -> None:
        if self.metrics is not None:
            m, labels = self.metrics, (target.provider, target.model)
            m.llm_requests.labels(*labels, "error" if error else "ok").inc()
            m.llm_latency.labels(*labels).observe(latency_ms / 1000)
            m.llm_tokens.labels(*labels, "in").inc(tokens_in)
            m.llm_tokens.labels(*labels, "out").inc(tokens_out)
            if cost is not None:
                m.llm_cost.labels(*labels).inc(float(cost))
        async with self._autocommit.connect() as conn:
            await conn.execute(
                insert(LLMUsage).values(
                    id=uuid.uuid4(),
                    user_id=tag.user_id,
                    execution_id=tag.execution_id,
                    step_id=tag.step_id,
                    agent_id=tag.agent_id,
                    purpose=tag.purpose,
                    provider=target.provider,
                    model=target.model,
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                    cost_usd=cost if error is None else Decimal(0),
                    latency_ms=latency_ms,
                    success=error is None,
                    error=error,
                )
            )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
