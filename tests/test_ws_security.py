"""Websockets follow the rules HTTP requests do, for as long as they stay open.

Real websocket clients against real servers: credentials are checked again on every
operation and whenever they change anywhere (revocation, logout, suspension, role change,
expiry), messages are size-capped, operations are rate limited, connections are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from contextlib import AsyncExitStack
from typing import Any

import uvicorn
from websockets.exceptions import ConnectionClosed

from cognitionos.app import create_app
from tests.conftest import Stack
from tests.support import GQL, LiveServer
from tests.ws_support import LEGACY_WS, TRANSPORT_WS, WS

FEED = "subscription { notificationReceived { id } }"
ME = "{ me { email role } }"
USERS = "{ users(first: 5) { edges { node { email } } } }"
CREATE_KEY = """mutation($scopes: [String!]) { createApiKey(name: "socket", scopes: $scopes) {
    secret apiKey { id } } }"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }"
UPDATE_USER = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { role status } }"
REFRESH = "mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }"


async def connect(stack: AsyncExitStack, url: str, protocol: str = TRANSPORT_WS, **init: Any) -> WS:
    """An acknowledged socket, closed with ``stack``; ``init`` is ``token=`` or ``apiKey=``."""
    ws = await stack.enter_async_context(WS(url, protocol))
    ack = await ws.init(**init)
    assert ack["type"] == "connection_ack", ack
    return ws


async def alive(ws: WS) -> bool:
    """The server still answers this graphql-transport-ws socket's ping."""
    await ws.send({"type": "ping"})
    while True:
        message = await ws.recv(wait=5)
        if message["type"] == "pong":
            return True


async def refused(url: str, **init: Any) -> tuple[int | None, str | None]:
    """Open a socket, send connection_init, and return how the server closed it."""
    async with WS(url) as ws:
        await ws.send({"type": "connection_init", "payload": init})
        return await ws.closed(wait=10)


async def admitted(url: str, **init: Any) -> bool:
    async with WS(url) as ws:
        try:
            return (await ws.init(**init))["type"] == "connection_ack"
        except ConnectionClosed:
            return False


def api_key(gql: GQL, token: str) -> tuple[str, str]:
    created = gql.ok(CREATE_KEY, {"scopes": ["read", "write"]}, token=token)["createApiKey"]
    return created["secret"], created["apiKey"]["id"]


def admin(gql: GQL, db: Any, email: str) -> dict[str, Any]:
    registered = gql.register(email)
    db("UPDATE users SET role = 'ADMIN' WHERE email = $1", email)
    return registered


async def test_revoking_an_api_key_closes_its_socket_and_no_other(
    server: LiveServer, gql: GQL
) -> None:
    token = gql.member("keyed@example.com")
    secret, key_id = api_key(gql, token)
    bystander = gql.member("bystander@example.com")
    async with AsyncExitStack() as stack:
        by_key = await connect(stack, server.url, apiKey=secret)
        by_token = await connect(stack, server.url, token=token)  # same user, other credential
        theirs = await connect(stack, server.url, token=bystander)
        await by_key.subscribe("feed", FEED, {})
        await theirs.subscribe("feed", FEED, {})
        assert gql.ok(REVOKE_KEY, {"id": key_id}, token=token)["revokeApiKey"]["revokedAt"]
        code, reason = await by_key.closed(wait=10)
        assert code == 4403 and "API_KEY_REVOKED" in (reason or ""), (code, reason)
        assert await alive(by_token)
        assert await alive(theirs)


async def test_a_subscribe_after_an_unannounced_revocation_is_refused(
    server: LiveServer, gql: GQL, db: Any
) -> None:
    """Revoked behind the server's back (no announcement): the next subscribe checks again."""
    token = gql.member("quiet@example.com")
    secret, _ = api_key(gql, token)
    async with AsyncExitStack() as stack:
        ws = await connect(stack, server.url, apiKey=secret)
        await ws.subscribe("before", ME, {})
        assert (await ws.collect("before"))[0]["data"]["me"]["email"] == "quiet@example.com"
        await asyncio.to_thread(db, "UPDATE api_keys SET revoked_at = now()")
        await ws.subscribe("after", FEED, {})
        code, reason = await ws.closed(wait=10)
    assert code == 4403 and "API_KEY_REVOKED" in (reason or ""), (code, reason)


async def test_suspension_closes_every_socket_of_the_user_in_both_protocols(
    server: LiveServer, gql: GQL, db: Any
) -> None:
    boss = await asyncio.to_thread(admin, gql, db, "ws-boss@example.com")
    member = gql.register("suspended@example.com")
    secret, _ = api_key(gql, member["accessToken"])
    async with AsyncExitStack() as stack:
        modern = await connect(stack, server.url, token=member["accessToken"])
        legacy = await connect(stack, server.url, LEGACY_WS, apiKey=secret)
        watcher = await connect(stack, server.url, token=boss["accessToken"])
        await modern.subscribe("feed", FEED, {})
        await legacy.subscribe("feed", FEED, {})
        gql.ok(
            UPDATE_USER,
            {"input": {"userId": member["user"]["id"], "status": "SUSPENDED"}},
            token=boss["accessToken"],
        )
        for ws in (modern, legacy):
            code, reason = await ws.closed(wait=10)
            assert code == 4403 and "ACCOUNT_INACTIVE" in (reason or ""), (code, reason)
        assert await alive(watcher)
    # A suspended user cannot come back over a websocket either.
    assert await refused(server.url, authorization=f"Bearer {member['accessToken']}") == (
        4403,
        "Forbidden",
    )


async def test_promotion_widens_the_socket_and_demotion_closes_it(
    server: LiveServer, gql: GQL, db: Any
) -> None:
    boss = await asyncio.to_thread(admin, gql, db, "ws-chief@example.com")
    member = gql.register("climber@example.com")
    user_id = member["user"]["id"]
    async with AsyncExitStack() as stack:
        ws = await connect(stack, server.url, token=member["accessToken"])
        await ws.subscribe("member", USERS, {})
        [answer] = await ws.collect("member")
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        promoted = {"input": {"userId": user_id, "role": "ADMIN"}}
        gql.ok(UPDATE_USER, promoted, token=boss["accessToken"])
        # The same socket's next operation runs with the new role's rights.
        await ws.subscribe("admin", USERS, {})
        [answer] = await ws.collect("admin")
        assert "errors" not in answer, answer
        assert len(answer["data"]["users"]["edges"]) == 2
        assert await alive(ws)  # a promotion does not close the socket

        await ws.subscribe("feed", FEED, {})  # granted while an admin
        demoted = {"input": {"userId": user_id, "role": "MEMBER"}}
        gql.ok(UPDATE_USER, demoted, token=boss["accessToken"])
        code, reason = await ws.closed(wait=10)
    assert code == 4403 and "ROLE_CHANGED" in (reason or ""), (code, reason)


async def test_logout_closes_that_logins_sockets_and_refresh_reuse_closes_its_own(
    server: LiveServer, gql: GQL
) -> None:
    first = gql.register("twice@example.com")
    second = gql.login("twice@example.com").json()["data"]["login"]
    third = gql.login("twice@example.com").json()["data"]["login"]
    async with AsyncExitStack() as stack:
        a = await connect(stack, server.url, token=first["accessToken"])
        b = await connect(stack, server.url, token=second["accessToken"])
        c = await connect(stack, server.url, token=third["accessToken"])
        assert gql.ok("mutation($r: String!) { logout(refreshToken: $r) }",
                      {"r": first["refreshToken"]})["logout"]  # fmt: skip
        code, reason = await a.closed(wait=10)
        assert code == 4403 and "SESSION_ENDED" in (reason or ""), (code, reason)
        assert await alive(b)

        # Refreshing keeps the login (and its sockets); replaying the old token ends it.
        gql.ok(REFRESH, {"r": third["refreshToken"]})
        assert await alive(c)
        stolen = gql.error(REFRESH, {"r": third["refreshToken"]})
        assert stolen["extensions"]["reason"] == "TOKEN_REUSED"
        code, reason = await c.closed(wait=10)
        assert code == 4403 and "SESSION_ENDED" in (reason or ""), (code, reason)
        assert await alive(b)


async def test_a_socket_closes_when_its_access_token_expires(make_server: Any) -> None:
    short = make_server(access_token_ttl_seconds=2)
    token = short.gql.member("brief@example.com")
    async with WS(short.url) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        await ws.subscribe("feed", FEED, {})
        code, reason = await ws.closed(wait=10)
    assert code == 4403 and "TOKEN_EXPIRED" in (reason or ""), (code, reason)


def _plain_server(stack: Stack) -> LiveServer:
    """The app under uvicorn's own defaults, as another ASGI server would run it."""
    live = LiveServer(create_app(stack.settings()))
    config = uvicorn.Config(
        live.app, host="127.0.0.1", port=live.port, log_config=None, lifespan="on"
    )
    live.server = uvicorn.Server(config)
    live.thread = threading.Thread(target=live.server.run, daemon=True)
    return live.start()


async def test_messages_over_the_body_limit_are_refused(
    server: LiveServer, gql: GQL, stack: Stack
) -> None:
    token = gql.member("verbose@example.com")
    plain = _plain_server(stack)
    try:
        for url in (server.url, plain.url):  # uvicorn's frame limit, and the app's own check
            async with AsyncExitStack() as sockets:
                ws = await connect(sockets, url, token=token)
                await ws.subscribe("fits", ME, {"pad": "x" * 90_000})  # under 100 KB: served
                [answer] = await ws.collect("fits")
                assert answer["data"]["me"]["email"] == "verbose@example.com"
                with contextlib.suppress(ConnectionClosed):
                    await ws.subscribe("huge", ME, {"pad": "x" * 2_000_000})
                code, _ = await ws.closed(wait=10)
                assert code == 1009, (url, code)
    finally:
        plain.stop()


async def test_websocket_operations_share_the_graphql_rate_limit(make_server: Any) -> None:
    limited = make_server(graphql_rate_limit=4)
    token = limited.gql.member("chatty@example.com")  # anonymous: counted per address
    async with AsyncExitStack() as stack:
        ws = await connect(stack, limited.url, token=token)
        for op in ("q1", "q2", "q3"):
            await ws.subscribe(op, ME, {})
            assert (await ws.collect(op))[0]["data"]["me"]["email"] == "chatty@example.com"
        await ws.subscribe("feed", FEED, {})  # a subscription counts too
        await ws.subscribe("over", ME, {})
        message = await ws.recv()
        assert (message["id"], message["type"]) == ("over", "error"), message
        extensions = message["payload"][0]["extensions"]
        assert extensions["code"] == "RATE_LIMITED" and extensions["retryAfter"] >= 1
        assert await alive(ws)  # refused, not disconnected
    # HTTP and websockets count against one limit.
    assert limited.gql.post(ME, token=token).status_code == 429


async def test_a_sockets_errors_carry_the_request_id_of_its_handshake(
    server: LiveServer, gql: GQL
) -> None:
    """The id sent with the handshake (or made for it) is the one in the socket's logs
    and in its errors: one id to look the socket up by."""
    token = gql.member("traced@example.com")
    async with WS(server.url, headers={"X-Request-ID": "socket-trace-7"}) as ws:
        assert (await ws.init(token=token))["type"] == "connection_ack"
        await ws.subscribe("users", USERS, {})  # admins only
        message = await ws.recv()
    assert message["id"] == "users", message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "FORBIDDEN", errors
    assert errors[0]["extensions"]["requestId"] == "socket-trace-7", errors


async def test_two_replicas_share_the_connection_cap_and_close_revoked_sockets(
    make_server: Any,
) -> None:
    a = make_server(ws_max_connections_per_user=2)
    b = make_server(ws_max_connections_per_user=2)
    token = a.gql.member("everywhere@example.com")
    other = a.gql.member("elsewhere@example.com")
    secret, key_id = api_key(a.gql, token)
    async with AsyncExitStack() as stack:
        on_a = await connect(stack, a.url, token=token)
        on_b = await connect(stack, b.url, apiKey=secret)
        code, reason = await refused(a.url, authorization=f"Bearer {token}")
        assert code == 4429 and "Too many connections" in (reason or ""), (code, reason)
        await connect(stack, b.url, token=other)  # someone else's sockets do not count

        # Revoked through replica A, the key's socket on replica B closes...
        await on_b.subscribe("feed", FEED, {})
        a.gql.ok(REVOKE_KEY, {"id": key_id}, token=token)
        code, reason = await on_b.closed(wait=10)
        assert code == 4403 and "API_KEY_REVOKED" in (reason or ""), (code, reason)
        assert await alive(on_a)

        # ...and its slot is free again.
        deadline = time.monotonic() + 5
        while not await admitted(b.url, token=token):
            assert time.monotonic() < deadline, "the closed socket's slot was never freed"
            await asyncio.sleep(0.1)
