"""What a provider is asked and what it answers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "ChatRequest",
    "ChatResult",
    "Completion",
    "OnToken",
    "ProviderError",
    "UsageTag",
]

OnToken = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ChatRequest:
    """A chat call. ``messages`` are ``{"role": "user"|"assistant", "content": str}``.

    ``output_schema``: the answer must be JSON matching this JSON Schema; it is sent
    through the provider's own mechanism (``response_format``, a forced tool) when it
    takes it, else described in the system prompt. ``schema_name`` names it on the wire.
    """

    messages: list[dict[str, str]]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    output_schema: dict[str, Any] | None = None
    schema_name: str = "answer"


@dataclass(frozen=True)
class Completion:
    """What a provider streamed. Token counts are None when it sent no usage block."""

    text: str
    tokens_in: int | None
    tokens_out: int | None
    truncated: bool = False  # stopped by the answer-token limit


@dataclass
class ChatResult:
    text: str
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    cost_usd: Decimal | None
    failed_attempts: list[str] = field(default_factory=list)
    tokens_estimated: bool = False  # no usage block: counted from the text
    # How JSON was asked for (json_schema, json_object, tool, prompt); None: it was not.
    output_mode: str | None = None
    # Why the provider's first structured-output mechanism was not used, when it was not.
    structured_fallback: str | None = None
    truncated: bool = False

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True)
class UsageTag:
    """Who a call is for, written on its ``llm_usage`` row."""

    purpose: str
    user_id: uuid.UUID | None = None
    execution_id: uuid.UUID | None = None
    step_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None


class ProviderError(Exception):
    """A failed provider call. ``retryable``: 429, 5xx, timeouts, connection errors.
    ``refused_structured``: the provider or model refused the structured-output request
    itself (a 400 about ``response_format``, ``json_schema`` or tools)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        refused_structured: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.refused_structured = refused_structured
