"""HTTP: one request through the outbound guard (``services/outbound.py``): private,
loopback and link-local targets are refused unless allow-listed, the connection goes to
the address that was checked, redirects are not followed; the response size is capped."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from cognitionos.services.errors import BadUserInput
from cognitionos.services.outbound import DestinationRefused, pinned_client
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    register,
    require_fields,
)

__all__ = ["HttpStep"]

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class HttpStep:
    name: ClassVar[str] = "HTTP"
    templated: ClassVar[tuple[str, ...]] = ("*",)
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(
            config,
            field,
            {"url": str},
            {
                "method": str,
                "headers": dict,
                "body": (str, dict, list),
                "timeoutSeconds": (int, float),
            },
        )
        method = str(config.get("method", "GET")).upper()
        if method not in _METHODS:
            raise BadUserInput(f"unsupported method {method}", field=f"{field}.method")
        url = config["url"]
        if "{{" not in url and urlsplit(url).scheme not in ("http", "https"):
            raise BadUserInput("url must be http(s)", field=f"{field}.url")

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        settings = ctx.settings
        url = config["url"]
        body = config.get("body")
        headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        kwargs: dict[str, Any] = {}
        if isinstance(body, (dict, list)):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = body.encode()
        timeout = float(config.get("timeoutSeconds") or settings.http_timeout_seconds)
        limit = settings.http_max_response_bytes
        try:
            async with pinned_client(url, settings, timeout_seconds=timeout) as client:
                async with client.stream(
                    config.get("method", "GET").upper(), url, headers=headers, **kwargs
                ) as response:
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise StepFailure(
                                f"response larger than {limit} bytes", retryable=False
                            )
                        chunks.append(chunk)
        except DestinationRefused as exc:
            raise StepFailure(str(exc), retryable=exc.retryable) from None
        except httpx.TimeoutException:
            raise StepFailure(f"HTTP request timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise StepFailure(f"HTTP request failed: {type(exc).__name__}: {exc}") from None
        raw = b"".join(chunks)
        text = raw.decode(response.encoding or "utf-8", errors="replace")
        parsed: Any = text
        if "json" in response.headers.get("content-type", ""):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = text
        result = {"status": response.status_code, "headers": dict(response.headers), "body": parsed}
        if response.status_code >= 500 or response.status_code == 429:
            raise StepFailure(f"HTTP {response.status_code} from {url}")
        if response.status_code >= 400:
            raise StepFailure(f"HTTP {response.status_code} from {url}", retryable=False)
        return result


register(HttpStep())
