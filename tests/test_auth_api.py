"""Accounts and tokens through real HTTP: register, login, refresh, logout, keys, roles."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt

from tests.conftest import TEST_SECRET
from tests.support import GQL, STRONG_PASSWORD

ME = "{ me { id email role } }"
USERS = "{ users(first: 10) { edges { node { email role } } pageInfo { hasNextPage } } }"


def promote(db: Any, email: str, role: str) -> None:
    db("UPDATE users SET role = $1 WHERE email = $2", role, email)


def test_register_login_and_me(gql: GQL) -> None:
    registered = gql.register("Ada@Example.com")
    assert registered["user"]["email"] == "ada@example.com"
    assert registered["user"]["role"] == "MEMBER"
    assert registered["expiresIn"] == 900

    response = gql.login("ADA@example.com")
    login = response.json()["data"]["login"]
    me = gql.ok(ME, token=login["accessToken"])["me"]
    assert me == {"id": registered["user"]["id"], "email": "ada@example.com", "role": "MEMBER"}
    assert gql.ok(ME)["me"] is None  # anonymous


def test_duplicate_email_is_a_conflict(gql: GQL) -> None:
    gql.register("bob@example.com")
    error = gql.error(
        'mutation { register(input: {email: "BOB@example.com", password: "another-pass-9"}) '
        "{ accessToken } }"
    )
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "email"


def test_weak_password_and_invalid_email_name_the_field(gql: GQL) -> None:
    weak = gql.error(
        'mutation { register(input: {email: "c@example.com", password: "short"}) { accessToken } }'
    )
    assert weak["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "password",
        "requestId": weak["extensions"]["requestId"],
    }
    assert "at least 10 characters" in weak["message"]
    letters_only = gql.error(
        'mutation { register(input: {email: "c@example.com", password: "onlyletterslong"}) '
        "{ accessToken } }"
    )
    assert letters_only["extensions"]["field"] == "password"
    bad_email = gql.error(
        'mutation { register(input: {email: "not-an-email", password: "good-pass-123"}) '
        "{ accessToken } }"
    )
    assert bad_email["extensions"]["code"] == "BAD_USER_INPUT"
    assert bad_email["extensions"]["field"] == "email"


def test_wrong_password_and_unknown_email_look_the_same(gql: GQL) -> None:
    gql.register("dan@example.com")
    wrong = gql.login("dan@example.com", "wrong-password-1").json()["errors"][0]
    unknown = gql.login("nobody@example.com", "wrong-password-1").json()["errors"][0]
    assert wrong["message"] == unknown["message"] == "invalid email or password"
    assert wrong["extensions"]["code"] == unknown["extensions"]["code"] == "UNAUTHENTICATED"


def test_refresh_rotates_and_reuse_revokes_the_family(gql: GQL, db: Any) -> None:
    first = gql.register("eve@example.com")
    refresh = """mutation($t: String!) { refreshToken(refreshToken: $t) {
        accessToken refreshToken user { email } } }"""
    second = gql.ok(refresh, {"t": first["refreshToken"]})["refreshToken"]
    assert second["refreshToken"] != first["refreshToken"]
    assert gql.ok(ME, token=second["accessToken"])["me"]["email"] == "eve@example.com"

    # The old token again: a thief has it. Everything from this login is revoked.
    reuse = gql.error(refresh, {"t": first["refreshToken"]})
    assert reuse["extensions"]["code"] == "UNAUTHENTICATED"
    assert reuse["extensions"]["reason"] == "TOKEN_REUSED"
    revoked = gql.error(refresh, {"t": second["refreshToken"]})
    assert revoked["extensions"]["reason"] == "TOKEN_REVOKED"

    events = [r["event"] for r in db("SELECT event FROM auth_audit_log ORDER BY created_at")]
    assert "TOKEN_REUSE_DETECTED" in events
    # Tokens are stored hashed, never as issued.
    stored = [r["token_hash"] for r in db("SELECT token_hash FROM refresh_tokens")]
    assert first["refreshToken"] not in stored and len(stored) == 2


def test_logout_revokes_the_refresh_token(gql: GQL) -> None:
    pair = gql.register("fay@example.com")
    logout = "mutation($t: String!) { logout(refreshToken: $t) }"
    assert gql.ok(logout, {"t": pair["refreshToken"]})["logout"] is True
    error = gql.error(
        "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
        {"t": pair["refreshToken"]},
    )
    assert error["extensions"]["reason"] == "TOKEN_REVOKED"
    assert gql.ok(logout, {"t": "never-issued"})["logout"] is False


def _answer(response: Any) -> tuple[str, dict[str, Any]]:
    """A login error as a guesser sees it: the message and extensions but the request id."""
    error = response.json()["errors"][0]
    extensions = {k: v for k, v in error["extensions"].items() if k != "requestId"}
    return error["message"], extensions


def test_five_failures_lock_the_account_without_saying_so(gql: GQL, db: Any) -> None:
    gql.register("gus@example.com")
    unknown = _answer(gql.login("nobody@example.com", "wrong-password-0"))
    assert unknown == (
        "invalid email or password",
        {"code": "UNAUTHENTICATED", "reason": "INVALID_CREDENTIALS"},
    )
    for attempt in range(5):
        assert _answer(gql.login("gus@example.com", f"wrong-password-{attempt}")) == unknown
    # Locked now: a wrong password, and even the right one, look exactly the same.
    assert _answer(gql.login("gus@example.com", "wrong-password-5")) == unknown
    assert _answer(gql.login("gus@example.com")) == unknown

    (user,) = db("SELECT locked_until, now() AS now FROM users WHERE email = 'gus@example.com'")
    locked_for = (user["locked_until"] - user["now"]).total_seconds()
    assert 29 * 60 < locked_for <= 30 * 60  # 30 minutes
    rows = db(
        "SELECT event, success, metadata FROM auth_audit_log WHERE user_id IS NOT NULL "
        "ORDER BY created_at"
    )
    assert [r["event"] for r in rows].count("ACCOUNT_LOCKED") == 1
    failures = [r for r in rows if r["event"] == "LOGIN" and not r["success"]]
    assert len(failures) == 7
    assert [json.loads(r["metadata"])["reason"] for r in failures[-2:]] == ["LOCKED", "LOCKED"]

    # When the lock has passed, the right password works again.
    db("UPDATE users SET locked_until = now() - interval '1 second'")
    assert "data" in gql.login("gus@example.com").json()


def test_expired_tampered_and_alg_none_tokens_are_rejected(gql: GQL) -> None:
    user = gql.register("hal@example.com")["user"]
    now = int(time.time())
    claims = {"sub": user["id"], "role": "MEMBER", "typ": "access", "iss": "cognitionos"}
    expired = jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, TEST_SECRET, "HS256")
    valid = jwt.encode({**claims, "iat": now, "exp": now + 60}, TEST_SECRET, "HS256")
    head, body, sig = valid.split(".")
    tampered = f"{head}.{body}.{sig[:-4]}AAAA"
    forged = jwt.encode(
        {**claims, "role": "ADMIN", "iat": now, "exp": now + 60}, "a-guessed-secret-" * 3, "HS256"
    )
    unsigned = jwt.encode({**claims, "iat": now, "exp": now + 60}, None, algorithm="none")

    assert gql.ok(ME, token=valid)["me"]["email"] == "hal@example.com"
    for token, reason in [
        (expired, "TOKEN_EXPIRED"),
        (tampered, "TOKEN_INVALID"),
        (forged, "TOKEN_INVALID"),
        (unsigned, "TOKEN_INVALID"),
    ]:
        response = gql.post(ME, token=token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["extensions"]["reason"] == reason


def test_api_keys_authenticate_are_hashed_and_revocable(gql: GQL, db: Any) -> None:
    token = gql.register("ida@example.com")["accessToken"]
    created = gql.ok(
        'mutation { createApiKey(name: "ci", scopes: ["read"]) '
        "{ secret apiKey { id prefix scopes } } }",
        token=token,
    )["createApiKey"]
    secret = created["secret"]
    assert secret.startswith(f"cos_{created['apiKey']['prefix']}_")
    stored = db("SELECT key_hash FROM api_keys")
    assert len(stored) == 1 and secret not in stored[0]["key_hash"]

    # Both header forms work; the secret is never shown again.
    assert gql.ok(ME, token=secret)["me"]["email"] == "ida@example.com"
    assert gql.ok(ME, headers={"X-API-Key": secret})["me"]["email"] == "ida@example.com"
    listed = gql.ok("{ apiKeys { name prefix lastUsedAt } }", token=token)["apiKeys"]
    assert listed[0]["name"] == "ci" and listed[0]["lastUsedAt"] is not None
    assert "secret" not in listed[0]

    # A key cannot mint keys; a read-only key cannot act as a member.
    minted = gql.error('mutation { createApiKey(name: "x") { secret } }', token=secret)
    assert minted["extensions"]["code"] == "FORBIDDEN"

    revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }"
    revoked = gql.ok(revoke, {"id": created["apiKey"]["id"]}, token=token)["revokeApiKey"]
    assert revoked["revokedAt"]
    response = gql.post(ME, token=secret)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["reason"] == "API_KEY_REVOKED"


def test_roles_are_enforced(gql: GQL, db: Any) -> None:
    admin = gql.register("root@example.com")
    member = gql.register("mia@example.com")
    viewer = gql.register("vic@example.com")
    promote(db, "root@example.com", "ADMIN")
    promote(db, "vic@example.com", "VIEWER")

    for who in (member, viewer):
        error = gql.error(USERS, token=who["accessToken"])
        assert error["extensions"]["code"] == "FORBIDDEN"
    anonymous = gql.error(USERS)
    assert anonymous["extensions"]["code"] == "UNAUTHENTICATED"

    users = gql.ok(USERS, token=admin["accessToken"])["users"]
    assert {e["node"]["email"] for e in users["edges"]} == {
        "root@example.com",
        "mia@example.com",
        "vic@example.com",
    }
    # The role comes from the database, not from the token's claims.
    assert gql.ok(ME, token=viewer["accessToken"])["me"]["role"] == "VIEWER"

    # An admin's key scoped to "read" is capped below admin.
    key = gql.ok(
        'mutation { createApiKey(name: "ro", scopes: ["read"]) { secret } }',
        token=admin["accessToken"],
    )["createApiKey"]["secret"]
    assert gql.error(USERS, token=key)["extensions"]["code"] == "FORBIDDEN"


def test_admin_updates_users_and_reads_the_audit_log(gql: GQL, db: Any) -> None:
    admin = gql.register("boss@example.com")
    promote(db, "boss@example.com", "ADMIN")
    member = gql.register("joe@example.com")
    update = """mutation($id: ID!) { updateUser(input: {userId: $id, status: SUSPENDED}) {
        status } }"""
    assert gql.ok(update, {"id": member["user"]["id"]}, token=admin["accessToken"])[
        "updateUser"
    ] == {"status": "SUSPENDED"}
    # A suspended user's live token stops working at once.
    assert gql.post(ME, token=member["accessToken"]).status_code == 401
    assert gql.login("joe@example.com").json()["errors"][0]["extensions"]["reason"] == (
        "ACCOUNT_SUSPENDED"
    )

    log = gql.ok(
        """query($u: ID) { auditLog(first: 50, userId: $u) {
            edges { node { event success ip userAgent metadata } } } }""",
        {"u": member["user"]["id"]},
        token=admin["accessToken"],
    )["auditLog"]["edges"]
    events = [e["node"]["event"] for e in log]
    assert events[:3] == ["LOGIN", "USER_UPDATED", "REGISTER"]  # newest first
    assert log[0]["node"]["ip"] == "127.0.0.1"
    assert log[0]["node"]["userAgent"].startswith("python-httpx")


def test_users_paginate_by_keyset(gql: GQL, db: Any) -> None:
    admin = gql.register("pager@example.com")
    promote(db, "pager@example.com", "ADMIN")
    for i in range(4):
        gql.register(f"u{i}@example.com")
    query = """query($after: String) { users(first: 2, after: $after) {
        edges { node { email } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = gql.ok(query, {"after": after}, token=admin["accessToken"])["users"]
        seen += [e["node"]["email"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5 and len(set(seen)) == 5
    too_many = gql.error("{ users(first: 101) { edges { cursor } } }", token=admin["accessToken"])
    assert too_many["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "first",
        "requestId": too_many["extensions"]["requestId"],
    }
    bad_cursor = gql.error(
        '{ users(after: "garbage!") { edges { cursor } } }', token=admin["accessToken"]
    )
    assert bad_cursor["extensions"]["field"] == "after"


def test_password_is_stored_with_bcrypt_cost_12(gql: GQL, db: Any) -> None:
    gql.register("kim@example.com")
    (row,) = db("SELECT password_hash FROM users")
    assert row["password_hash"].startswith("$2b$12$")
    assert STRONG_PASSWORD not in row["password_hash"]
