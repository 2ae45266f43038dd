"""HTTP: one request with httpx. Private, loopback and link-local targets are refused
unless allow-listed (``COGNITIONOS_HTTP_ALLOW_HOSTS``); the response size is capped."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from cognitionos.config import Settings
from cognitionos.services.errors import BadUserInput
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    register,
    require_fields,
)

__all__ = ["HttpStep", "check_target"]

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _allowed(host: str, addresses: list[str], allow: list[str]) -> bool:
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if all(ipaddress.ip_address(a) in network for a in addresses):
            return True
    return False


async def check_target(url: str, settings: Settings) -> None:
    """Refuse non-public targets (SSRF) unless the host or its network is allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepFailure(f"not an http(s) URL: {url!r}", retryable=False)
    host = parts.hostname
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise StepFailure(f"cannot resolve {host}: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if _allowed(host, addresses, settings.http_allow_hosts):
        return
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not ip.is_global or ip.is_multicast:
            raise StepFailure(
                f"refusing to call {host} ({address}): private, loopback or link-local "
                "addresses need COGNITIONOS_HTTP_ALLOW_HOSTS",
                retryable=False,
            )


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
        await check_target(url, settings)
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
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
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
