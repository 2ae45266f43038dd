"""Outbound HTTP to user-chosen URLs (HTTP steps, webhook, Slack, Teams, SMS), guarded
against SSRF.

The host is resolved once; every address it resolves to must be public (or allow-listed
by ``COGNITIONOS_HTTP_ALLOW_HOSTS``), and the connection then goes to one of exactly those
addresses. Resolving again to connect would let a name answer a public address to the
check and a private one to the connection (DNS rebinding). The request keeps the original
name in its Host header and in TLS (SNI and certificate verification), so virtual hosts
and HTTPS work as usual. Redirects are never followed, and proxies from the environment
are ignored (a proxy would resolve the name itself).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from cognitionos.config import Settings

__all__ = [
    "Destination",
    "DestinationRefused",
    "PinnedTransport",
    "check_destination",
    "pinned_client",
]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The URL may not be called. ``retryable`` only when the name did not resolve."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Destination:
    """A checked target: the host as written and the addresses it was checked at."""

    host: str
    port: int
    addresses: tuple[str, ...]


def _ip(address: str) -> _IP:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _networks(allow: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name
    return networks


def _permitted(ip: _IP, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if ip.is_global and not ip.is_multicast:
        return True
    return any(ip.version == n.version and ip in n for n in networks)


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "bad host name"
        raise DestinationRefused(f"cannot resolve {host}: {reason}", retryable=True) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_destination(url: str, settings: Settings) -> Destination:
    """Resolve the URL's host once and refuse it unless every address is public or
    allow-listed (by host name or network). Messages never say what a name resolves to."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise DestinationRefused(f"not an http(s) URL: {url!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DestinationRefused(f"not an http(s) URL: {url!r}")
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    if not addresses:
        raise DestinationRefused(f"cannot resolve {host}", retryable=True)
    allow = settings.http_allow_hosts
    if not {host.lower(), parsed.host.lower()} & {entry.lower() for entry in allow}:
        networks = _networks(allow)
        if not all(_permitted(_ip(a), networks) for a in addresses):
            raise DestinationRefused(
                f"destination not allowed: {host} resolves to a private, loopback or "
                "link-local address (COGNITIONOS_HTTP_ALLOW_HOSTS allows it)"
            )
    return Destination(host=host, port=port, addresses=tuple(addresses))


class PinnedTransport(httpx.AsyncBaseTransport):
    """Sends requests for ``destination.host`` to its checked addresses, in order until one
    connects. The wire URL carries the address; Host and TLS keep the name."""

    def __init__(
        self, destination: Destination, *, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.destination = destination
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        d = self.destination
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        if request.url.raw_host.decode("ascii") != d.host or port != d.port:
            raise DestinationRefused(f"destination not allowed: {request.url.host} was not checked")
        last: httpx.ConnectError | None = None
        for address in d.addresses:
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=address),
                headers=request.headers,  # Host: the name, set from the original URL
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": d.host},
            )
            try:
                return await self.inner.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def pinned_client(
    url: str, settings: Settings, *, timeout_seconds: float
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` for ``url`` only, connected to the addresses that were
    checked; raises ``DestinationRefused`` before anything is sent."""
    destination = await check_destination(url, settings)
    async with httpx.AsyncClient(
        transport=PinnedTransport(destination),
        timeout=timeout_seconds,
        follow_redirects=False,
        trust_env=False,
    ) as http:
        yield http
