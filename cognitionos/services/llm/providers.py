"""Providers over their official SDKs: OpenAI, Anthropic, and any OpenAI-compatible server.

Every call streams, so tokens reach ``stepOutput`` as they come and one code path serves
every caller. The SDKs' own retries are off: the router retries, with fallback. A call
with an output schema sends it the provider's own way (``structured.py``).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

from cognitionos.config import Settings
from cognitionos.services.llm.structured import (
    JSON_OBJECT,
    JSON_SCHEMA,
    TOOL,
    is_refusal,
    unwrap,
    wire_name,
    wire_schema,
)
from cognitionos.services.llm.types import ChatRequest, Completion, OnToken, ProviderError

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
    # Native structured-output mechanisms, in the order they are tried.
    structured_modes: tuple[str, ...]

    async def stream(
        self,
        model: str,
        request: ChatRequest,
        on_token: OnToken | None,
        mode: str | None = None,
    ) -> Completion:
        """Run the call; ``mode`` (one of ``structured_modes``) sends
        ``request.output_schema`` that way. Token counts are None when not reported."""
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
    name: str, status: int, headers: Mapping[str, str], message: str, *, structured: bool
) -> ProviderError:
    return ProviderError(
        f"{name} answered {status}: {message}",
        retryable=status in _RETRYABLE_STATUS or status >= 500,
        status=status,
        retry_after=retry_after(headers),
        refused_structured=structured and is_refusal(status, message),
    )


def _provider_error(name: str, exc: Exception, sdk: Any, *, structured: bool) -> ProviderError:
    """An SDK error as a ProviderError; both SDKs share the exception names.
    ``structured``: the request carried an output schema (a 400 may refuse it)."""
    if isinstance(exc, sdk.APIStatusError):
        return _status_error(
            name, exc.status_code, exc.response.headers, exc.message, structured=structured
        )
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
        # llama-cpp-python's server takes only json_object (with the schema).
        self.structured_modes: tuple[str, ...] = (
            (JSON_SCHEMA, JSON_OBJECT) if self.compatible else (JSON_SCHEMA,)
        )
        import openai  # imported with the first provider: the SDK alone is 25 MiB resident

        self._sdk = openai
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed", base_url=base_url, max_retries=0, timeout=timeout
        )

    async def stream(
        self,
        model: str,
        request: ChatRequest,
        on_token: OnToken | None,
        mode: str | None = None,
    ) -> Completion:
        messages: list[Any] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend(request.messages)
        options: dict[str, Any] = {}
        if request.max_tokens is not None:
            # OpenAI renamed the field; compatible servers still read the old one.
            key = "max_tokens" if self.compatible else "max_completion_tokens"
            options[key] = request.max_tokens
        if request.temperature is not None:
            options["temperature"] = request.temperature
        wrapped = False
        if mode is not None and request.output_schema is not None:
            schema, wrapped = wire_schema(request.output_schema)
            if mode == JSON_OBJECT:
                options["response_format"] = {"type": "json_object", "schema": schema}
            else:
                options["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": wire_name(request.schema_name), "schema": schema},
                }
        parts: list[str] = []
        tokens_in = tokens_out = None
        truncated = False
        try:
            stream = await self.client.chat.completions.create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **options,
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    tokens_in = chunk.usage.prompt_tokens
                    tokens_out = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    truncated = truncated or choice.finish_reason == "length"
                    text = choice.delta.content if choice.delta else None
                    if text:
                        parts.append(text)
                        if on_token is not None:
                            await on_token(text)
        except self._sdk.APIError as exc:
            raise _provider_error(self.name, exc, self._sdk, structured=mode is not None) from exc
        text = "".join(parts)
        return Completion(unwrap(text) if wrapped else text, tokens_in, tokens_out, truncated)

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicProvider:
    name = "anthropic"
    structured_modes: tuple[str, ...] = (TOOL,)

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        import anthropic  # imported with the first provider: the SDK alone is 40 MiB resident

        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    async def stream(
        self,
        model: str,
        request: ChatRequest,
        on_token: OnToken | None,
        mode: str | None = None,
    ) -> Completion:
        import anthropic
        from anthropic.types import (
            InputJSONDelta,
            MessageParam,
            RawContentBlockDeltaEvent,
            RawMessageDeltaEvent,
            RawMessageStartEvent,
            TextDelta,
        )

        options: dict[str, Any] = {}
        wrapped = False
        if mode == TOOL and request.output_schema is not None:
            # The answer is the input of one forced tool, streamed as input_json_delta.
            schema, wrapped = wire_schema(request.output_schema)
            name = wire_name(request.schema_name)
            options["tools"] = [
                {
                    "name": name,
                    "description": "Give your answer as this tool's input.",
                    "input_schema": schema,
                }
            ]
            options["tool_choice"] = {"type": "tool", "name": name}
        parts: list[str] = []
        tokens_in = tokens_out = None
        truncated = False
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
                **options,
            )
            async for event in stream:
                piece = None
                if isinstance(event, RawMessageStartEvent):
                    tokens_in = event.message.usage.input_tokens
                    tokens_out = event.message.usage.output_tokens
                elif isinstance(event, RawContentBlockDeltaEvent):
                    if isinstance(event.delta, TextDelta):
                        piece = event.delta.text
                    elif isinstance(event.delta, InputJSONDelta):
                        piece = event.delta.partial_json
                elif isinstance(event, RawMessageDeltaEvent):
                    if event.usage.output_tokens is not None:
                        tokens_out = event.usage.output_tokens
                    truncated = truncated or event.delta.stop_reason == "max_tokens"
                if piece:
                    parts.append(piece)
                    if on_token is not None:
                        await on_token(piece)
        except anthropic.APIError as exc:
            raise _provider_error(self.name, exc, anthropic, structured=mode is not None) from exc
        text = "".join(parts)
        return Completion(unwrap(text) if wrapped else text, tokens_in, tokens_out, truncated)

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
