"""Local peers for notification channels: an HTTP receiver (webhook, Slack, Teams,
Twilio-compatible SMS) that records what it gets and can fail on cue, and an SMTP server."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cognitionos.embedded import free_port
from tests.support import LiveServer

__all__ = ["HttpPeer", "Received", "SmtpPeer"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)


class HttpPeer:
    """Answers 2xx, or the statuses queued with ``fail``; records every request."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._any, methods=["POST"])])
        self.live = LiveServer(self.app)  # type: ignore[arg-type]

    def start(self) -> HttpPeer:
        self.live.start()
        return self

    def stop(self) -> None:
        self.live.stop()

    def url(self, path: str) -> str:
        return f"{self.live.url}/{path.lstrip('/')}"

    def fail(self, *statuses: int) -> None:
        with self._lock:
            self.statuses.extend(statuses)

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.statuses.clear()

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _any(self, request: Request) -> Response:
        body = await request.body()
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(body.decode()))
        with self._lock:
            self.received.append(Received(request.url.path, dict(request.headers), body, form))
            status = self.statuses.popleft() if self.statuses else 200
        if status >= 400:
            return JSONResponse({"error": "scripted failure"}, status_code=status)
        return JSONResponse({"sid": "SM123", "status": "queued"}, status_code=status)


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpPeer:
    """A real SMTP server (aiosmtpd) on a loopback port."""

    def __init__(self) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpPeer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def reset(self) -> None:
        self.handler.messages.clear()
        self.handler.envelopes.clear()
