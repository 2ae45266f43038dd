"""Providers over their official SDKs: OpenAI, Anthropic, and any OpenAI-compatible server.

Every call streams, so tokens reach ``stepOutput`` as they come and one code path serves
every caller. The SDKs' own retries are off: the router retries, with fallback.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

import anthropic
import openai
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextDelta,
)

from cognitionos.config import Settings
from cognitionos.services.llm.types import ChatRequest, OnToken, ProviderError

__all__ = [
    "AnthropicProvider",
    "OpenAIProvider",
    "Provider",
    "build_providers",
    "retry_after",
]

_RETRYABLE_STATUS = {408, 409, 425, 429}


class Provider(Protocol):
    name: str

    async def stream(
        self, model: str, request: ChatRequest, on_token: OnToken | None
    ) -> tuple[str, int, int]:
        """Run the call; return (text, tokens in, tokens out)."""
        ...

    async def aclose(self) -> None: ...


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_error(
    name: str, status: int, headers: Mapping[str, str], message: str
) -> ProviderError:
    return ProviderError(
        f"{name} answered {status}: {message}",
        retryable=status in _RETRYABLE_STATUS or status >= 500,
        status=status,
        retry_after=retry_after(headers),
    )


def _provider_error(name: str, exc: Exception, sdk: Any) -> ProviderError:
    """An SDK error as a ProviderError; both SDKs share the exception names."""
    if isinstance(exc, sdk.APIStatusError):
        return _status_error(name, exc.status_code, exc.response.headers, exc.message)
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(f"{name} timed out", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(f"{name} unreachable: {exc}", retryable=True)
    # A stream cut mid-way, or an error event in it.
    return ProviderError(f"{name} failed: {exc}", retryable=True)


class OpenAIProvider:
    """OpenAI, or an OpenAI-compatible server (``compatible``: Ollama, vLLM, llama.cpp)."""

    def __init__(
        self, name: str, *, api_key: str | None, base_url: str | None, timeout: float
    ) -> None:
        self.name = name
        self.compatible = name != "openai"
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed", base_url=base_url, max_retries=0, timeout=timeout
        )

    async def stream(
        self, model: str, request: ChatRequest, on_token: OnToken | None
    ) -> tuple[str, int, int]:
        messages: list[Any] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend(request.messages)
        limit: dict[str, Any] = {}
        if request.max_tokens is not None:
            # OpenAI renamed the field; compatible servers still read the old one.
            key = "max_tokens" if self.compatible else "max_completion_tokens"
            limit[key] = request.max_tokens
        if request.temperature is not None:
            limit["temperature"] = request.temperature
        parts: list[str] = []
        tokens_in = tokens_out = 0
        try:
            stream = await self.client.chat.completions.create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **limit,
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    tokens_in = chunk.usage.prompt_tokens or 0
                    tokens_out = chunk.usage.completion_tokens or 0
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        parts.append(text)
                        if on_token is not None:
                            await on_token(text)
        except openai.APIError as exc:
            raise _provider_error(self.name, exc, openai) from exc
        return "".join(parts), tokens_in, tokens_out

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    async def stream(
        self, model: str, request: ChatRequest, on_token: OnToken | None
    ) -> tuple[str, int, int]:
        parts: list[str] = []
        tokens_in = tokens_out = 0
        try:
            stream = await self.client.messages.create(
                model=model,
                max_tokens=request.max_tokens or 1024,
                messages=cast("list[MessageParam]", request.messages),
                system=request.system or anthropic.omit,
                stream=True,
                # Newer SDKs dropped the parameter; the Messages API still reads it.
                extra_body=(
                    None if request.temperature is None else {"temperature": request.temperature}
                ),
            )
            async for event in stream:
                if isinstance(event, RawMessageStartEvent):
                    tokens_in = event.message.usage.input_tokens or 0
                    tokens_out = event.message.usage.output_tokens or 0
                elif isinstance(event, RawContentBlockDeltaEvent) and isinstance(
                    event.delta, TextDelta
                ):
                    parts.append(event.delta.text)
                    if on_token is not None:
                        await on_token(event.delta.text)
                elif isinstance(event, RawMessageDeltaEvent):
                    if event.usage.output_tokens is not None:
                        tokens_out = event.usage.output_tokens
        except anthropic.APIError as exc:
            raise _provider_error(self.name, exc, anthropic) from exc
        return "".join(parts), tokens_in, tokens_out

    async def aclose(self) -> None:
        await self.client.close()


def build_providers(settings: Settings) -> dict[str, Provider]:
    """The providers whose key (or base URL) is set."""
    timeout = settings.llm_timeout_seconds
    providers: dict[str, Provider] = {}
    if settings.openai_api_key:
        providers["openai"] = OpenAIProvider(
            "openai",
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=timeout,
        )
    if settings.anthropic_api_key:
        providers["anthropic"] = AnthropicProvider(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            timeout=timeout,
        )
    if settings.llm_compatible_base_url:
        providers["compatible"] = OpenAIProvider(
            "compatible",
            api_key=settings.llm_compatible_api_key,
            base_url=settings.llm_compatible_base_url,
            timeout=timeout,
        )
    return providers
