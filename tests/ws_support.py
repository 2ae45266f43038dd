"""A small graphql-transport-ws / graphql-ws client over a real websocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"

EXECUTION_UPDATED = """subscription($id: ID!, $after: Int) {
    executionUpdated(id: $id, after: $after) {
        position version type execution { id status } step { stepKey status } } }"""


class WS:
    def __init__(
        self, base_url: str, protocol: str = TRANSPORT_WS, headers: dict[str, str] | None = None
    ) -> None:
        self.url = base_url.replace("http://", "ws://") + "/graphql"
        self.protocol = protocol
        self.headers = headers
        self.conn: ClientConnection | None = None
        self.pings = 0

    async def __aenter__(self) -> WS:
        self.conn = await connect(
            self.url,
            subprotocols=[self.protocol],  # type: ignore[list-item]
            additional_headers=self.headers,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.conn is not None
        await self.conn.close()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.conn is not None
        await self.conn.send(json.dumps(message))

    async def recv(self, wait: float = 30) -> dict[str, Any]:
        """The next message; pings are answered and counted, not returned."""
        assert self.conn is not None
        while True:
            message = json.loads(await asyncio.wait_for(self.conn.recv(), wait))
            if message.get("type") == "ping":
                self.pings += 1
                await self.send({"type": "pong"})
                continue
            if message.get("type") == "ka":
                self.pings += 1
                continue
            return message  # type: ignore[no-any-return]

    async def init(self, token: str | None = None, **payload: Any) -> dict[str, Any]:
        if token is not None:
            payload["authorization"] = f"Bearer {token}"
        await self.send({"type": "connection_init", "payload": payload})
        return await self.recv()

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any]) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send(
            {"id": op_id, "type": kind, "payload": {"query": query, "variables": variables}}
        )

    async def collect(self, op_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """``next`` payloads of one operation until it completes (or ``limit`` of them)."""
        found: list[dict[str, Any]] = []
        wanted = limit if limit is not None else float("inf")
        while len(found) < wanted:
            message = await self.recv()
            if message.get("id") != op_id:
                continue
            if message["type"] in ("next", "data"):
                found.append(message["payload"])
            elif message["type"] == "complete":
                return found
            elif message["type"] == "error":
                raise AssertionError(f"subscription error: {message}")
        return found

    async def closed(self, wait: float = 15) -> tuple[int | None, str | None]:
        """Wait for the server to close; return its code and reason."""
        assert self.conn is not None
        with contextlib.suppress(Exception):
            while True:
                await asyncio.wait_for(self.conn.recv(), wait)
        return self.conn.close_code, self.conn.close_reason
