"""Credentials remembered between requests: every change still applies to the next request,
in every server on the same Redis; a change made outside the API within the cache's age."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from tests.conftest import Stack
from tests.support import GQL, LiveServer

ME = "{ me { email role lastLoginAt } }"
UPDATE_USER = """mutation($i: UpdateUserInput!) { updateUser(input: $i) { role status } }"""
CREATE = "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { key } }"


def _admin(gql: GQL, db: Callable[..., Any]) -> str:
    token = gql.member("root@example.com")
    db("UPDATE users SET role = 'ADMIN' WHERE email = 'root@example.com'")
    return token


def _workflow(key: str) -> dict[str, Any]:
    step = {"key": "a", "kind": "TRANSFORM", "config": {"template": "1"}}
    return {"i": {"key": key, "version": "1.0.0", "name": key, "steps": [step]}}


def test_a_demotion_and_a_suspension_apply_to_the_next_request_on_every_server(
    gql: GQL, make_server: Callable[..., LiveServer], db: Callable[..., Any]
) -> None:
    replica = make_server().gql
    admin = _admin(gql, db)
    member = gql.register("member@example.com")
    token, user_id = member["accessToken"], member["user"]["id"]
    for server in (gql, replica, gql, replica):  # both servers know the member now
        assert server.ok(ME, token=token)["me"]["role"] == "MEMBER"
    assert replica.ok(CREATE, _workflow("before"), token=token)["createWorkflow"]

    demoted = gql.ok(UPDATE_USER, {"i": {"userId": user_id, "role": "VIEWER"}}, token=admin)
    assert demoted["updateUser"]["role"] == "VIEWER"
    # The very next request, on the other server first: no waiting.
    assert replica.ok(ME, token=token)["me"]["role"] == "VIEWER"
    refused = replica.error(CREATE, _workflow("after"), token=token)
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert gql.ok(ME, token=token)["me"]["role"] == "VIEWER"

    gql.ok(UPDATE_USER, {"i": {"userId": user_id, "status": "SUSPENDED"}}, token=admin)
    for server in (replica, gql):
        response = server.post(ME, token=token)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["reason"] == "ACCOUNT_INACTIVE"


def test_a_revoked_api_key_is_refused_at_the_next_request_on_every_server(
    gql: GQL, make_server: Callable[..., LiveServer]
) -> None:
    replica = make_server().gql
    token = gql.member("keys@example.com")
    created = gql.ok('mutation { createApiKey(name: "ci") { secret apiKey { id } } }', token=token)[
        "createApiKey"
    ]
    key = {"X-API-Key": created["secret"]}
    for server in (gql, replica, gql, replica):
        assert server.ok(ME, headers=key)["me"]["email"] == "keys@example.com"

    replica.ok(
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        {"id": created["apiKey"]["id"]},
        token=token,
    )
    for server in (gql, replica):
        response = server.post(ME, headers=key)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["reason"] == "API_KEY_REVOKED"


def test_me_shows_the_login_that_just_happened(gql: GQL) -> None:
    token = gql.member("logins@example.com")
    assert gql.ok(ME, token=token)["me"]["lastLoginAt"] is None
    gql.login("logins@example.com")
    assert gql.ok(ME, token=token)["me"]["lastLoginAt"] is not None


def test_a_change_made_outside_the_api_applies_within_the_cache_age(
    make_server: Callable[..., LiveServer], stack: Stack
) -> None:
    server = make_server(credential_cache_seconds=1.0).gql
    token = server.member("sql@example.com")
    assert server.ok(ME, token=token)["me"]["role"] == "MEMBER"

    async def demote() -> None:  # straight to the database: nothing is announced
        conn = await asyncpg.connect(stack.dsn)
        try:
            await conn.execute("UPDATE users SET role = 'VIEWER' WHERE email = 'sql@example.com'")
        finally:
            await conn.close()

    changed = time.monotonic()
    asyncio.run(demote())
    # Remembered (no database read on these requests) until the entry is a second old.
    while (role := server.ok(ME, token=token)["me"]["role"]) == "MEMBER":
        assert time.monotonic() - changed < 1.5, "still MEMBER after the cache's age"
        time.sleep(0.05)
    assert role == "VIEWER"


def test_a_logged_out_access_token_is_refused_at_the_next_request_on_every_server(
    gql: GQL, make_server: Callable[..., LiveServer]
) -> None:
    replica = make_server().gql
    first = gql.register("logout@example.com")
    second = gql.login("logout@example.com").json()["data"]["login"]
    for server in (gql, replica, gql, replica):  # both servers know both logins now
        for pair in (first, second):
            assert server.ok(ME, token=pair["accessToken"])["me"]["email"] == "logout@example.com"

    logout = "mutation($t: String!) { logout(refreshToken: $t) }"
    assert replica.ok(logout, {"t": first["refreshToken"]})["logout"] is True
    for server in (gql, replica):
        response = server.post(ME, token=first["accessToken"])
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["reason"] == "SESSION_ENDED"
        # The user's other login goes on.
        assert server.ok(ME, token=second["accessToken"])["me"]["email"] == "logout@example.com"
