"""HTTP: one request through the outbound guard (``services/outbound.py``): private,
loopback and link-local targets are refused unless allow-listed, the connection goes to
the address that was checked, redirects are not followed; the response size is capped."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, StrictStr

from cognitionos.services.outbound import DestinationRefused, pinned_client
from cognitionos.services.specs import Number, WhenRendered, spec_error
from cognitionos.services.workflows.steps._json import json_or_text
from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepFailure,
    register,
)

__all__ = ["HttpConfig", "HttpStep"]

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise spec_error("url must be http(s)")
    return url


def _method(method: str) -> str:
    if method.upper() not in _METHODS:
        raise spec_error(f"unsupported method {method.upper()}")
    return method.upper()


def _body(body: Any) -> Any:
    if not isinstance(body, (str, dict, list)):
        raise spec_error("body must be a string, an object or a list")
    return body


class HttpConfig(StepConfig):
    url: Annotated[StrictStr, AfterValidator(_url), WhenRendered]
    method: Annotated[StrictStr, AfterValidator(_method)] = "GET"
    headers: dict[str, Any] = {}
    body: Annotated[Any, AfterValidator(_body)] = None
    timeout_seconds: Number | None = None


class HttpStep(Kind):
    name: ClassVar[str] = "HTTP"
    config_model = HttpConfig
    templated: ClassVar[tuple[str, ...]] = ("*",)

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        config = HttpConfig.read(raw)
        settings = ctx.settings
        url, body = config.url, config.body
        headers = {str(k): str(v) for k, v in config.headers.items()}
        kwargs: dict[str, Any] = {}
        if isinstance(body, (dict, list)):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = body.encode()
        timeout = float(config.timeout_seconds or settings.http_timeout_seconds)
        limit = settings.http_max_response_bytes
        try:
            async with pinned_client(url, settings, timeout_seconds=timeout) as client:
                async with client.stream(config.method, url, headers=headers, **kwargs) as response:
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
        received = b"".join(chunks)
        text = received.decode(response.encoding or "utf-8", errors="replace")
        parsed = json_or_text(text) if "json" in response.headers.get("content-type", "") else text
        result = {"status": response.status_code, "headers": dict(response.headers), "body": parsed}
        if response.status_code >= 500 or response.status_code == 429:
            raise StepFailure(f"HTTP {response.status_code} from {url}")
        if response.status_code >= 400:
            raise StepFailure(f"HTTP {response.status_code} from {url}", retryable=False)
        return result


register(HttpStep())
