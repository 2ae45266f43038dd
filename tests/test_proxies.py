"""Proxy headers: believed only from the peers COGNITIONOS_FORWARDED_ALLOW_IPS names."""

from __future__ import annotations

from typing import Any

import pytest

from cognitionos.config import Settings
from tests.support import LiveServer

LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"""


def login_code(server: LiveServer, email: str, forwarded_for: str) -> str:
    response = server.gql.post(
        LOGIN, {"e": email, "p": "guess-123456"}, headers={"X-Forwarded-For": forwarded_for}
    )
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


def audited_ips(db: Any) -> set[str]:
    return {str(r["ip"]) for r in db("SELECT ip FROM auth_audit_log WHERE event = 'LOGIN'")}


def test_rotating_forwarded_for_does_not_escape_the_per_ip_login_limit(
    make_server: Any, db: Any
) -> None:
    server = make_server(login_rate_limit_per_ip=3, login_rate_limit_per_account=100)
    codes = [login_code(server, f"u{i}@example.com", f"203.0.113.{i}") for i in range(6)]
    assert codes == ["UNAUTHENTICATED"] * 3 + ["RATE_LIMITED"] * 3
    assert audited_ips(db) == {"127.0.0.1"}  # the real peer, not what the client claimed


def test_a_trusted_proxy_forwards_the_client_address(make_server: Any, db: Any) -> None:
    server = make_server(
        forwarded_allow_ips=["127.0.0.0/8"],
        login_rate_limit_per_ip=3,
        login_rate_limit_per_account=100,
    )
    codes = [login_code(server, f"u{i}@example.com", f"198.51.100.{i}") for i in range(6)]
    assert codes == ["UNAUTHENTICATED"] * 6  # each client has its own budget
    assert audited_ips(db) == {f"198.51.100.{i}" for i in range(6)}
    # The same client behind the proxy is still limited.
    assert [login_code(server, f"v{i}@example.com", "198.51.100.9") for i in range(4)] == [
        "UNAUTHENTICATED"
    ] * 3 + ["RATE_LIMITED"]


def test_forwarded_allow_ips_setting_parses_lists_and_refuses_garbage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITIONOS_FORWARDED_ALLOW_IPS", "10.0.0.1, 192.168.0.0/16")
    assert Settings().forwarded_allow_ips == ["10.0.0.1", "192.168.0.0/16"]
    monkeypatch.setenv("COGNITIONOS_FORWARDED_ALLOW_IPS", '["::1", "*"]')
    assert Settings().forwarded_allow_ips == ["::1", "*"]
    monkeypatch.delenv("COGNITIONOS_FORWARDED_ALLOW_IPS")
    assert Settings().forwarded_allow_ips == []
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(forwarded_allow_ips=["proxy.internal"])
