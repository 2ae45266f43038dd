"""What a provider is asked and what it answers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["ChatRequest", "ChatResult", "OnToken", "ProviderError", "UsageTag"]

OnToken = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ChatRequest:
    """A chat call. ``messages`` are ``{"role": "user"|"assistant", "content": str}``."""

    messages: list[dict[str, str]]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


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
    """A failed provider call. ``retryable``: 429, 5xx, timeouts, connection errors."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
