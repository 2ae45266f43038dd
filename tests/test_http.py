"""GraphQL over HTTP: status codes, media types, limits, masking, rate limits, health."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Stack
from tests.support import GQL, LiveServer

GRAPHQL_RESPONSE = "application/graphql-response+json"


def post(server: LiveServer, body: Any, **headers: str) -> httpx.Response:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    sent = {"Content-Type": "application/json", **headers}
    return server.gql.client.post(f"{server.url}/graphql", content=raw, headers=sent)


def only_error(response: httpx.Response) -> dict[str, Any]:
    payload = response.json()
    assert "data" not in payload, payload
    (error,) = payload["errors"]
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("accept", "status", "media"),
    [(GRAPHQL_RESPONSE, 400, GRAPHQL_RESPONSE), ("application/json", 200, "application/json")],
)
def test_invalid_document_status_follows_the_media_type(
    server: LiveServer, accept: str, status: int, media: str
) -> None:
    response = post(server, {"query": "{ me { id } nope }"}, Accept=accept)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(media)
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Cannot query field 'nope'" in error["message"]


def test_syntax_error_and_wrong_variable_type_are_request_errors(server: LiveServer) -> None:
    syntax = post(server, {"query": "{ me { id "}, Accept=GRAPHQL_RESPONSE)
    assert syntax.status_code == 400
    assert "Syntax Error" in only_error(syntax)["message"]

    wrong_type = post(
        server,
        {
            "query": "query($f: Int) { users(first: $f) { edges { cursor } } }",
            "variables": {"f": "ten"},
        },
        Accept=GRAPHQL_RESPONSE,
    )
    assert wrong_type.status_code == 400
    error = only_error(wrong_type)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$f" in error["message"]


def test_field_errors_after_execution_are_200_with_data(server: LiveServer) -> None:
    response = post(server, {"query": "{ users { edges { cursor } } }"}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] is None
    assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert payload["errors"][0]["path"] == ["users"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"query": "{ me { id } }"', "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        ([{"query": "{ me { id } }"}, {"query": "{ me { id } }"}], "batched requests"),
        ('"just a string"', "must be a JSON object"),
        ({"variables": {}}, "no GraphQL query"),
        ({"query": "{ me { id } }", "variables": [1]}, "variables must be a JSON object"),
        # The spec's MAYs: a string, number, boolean or array `extensions` is a 400.
        ({"query": "{ me { id } }", "extensions": "x"}, "extensions must be a JSON object"),
        ({"query": "{ me { id } }", "extensions": 1}, "extensions must be a JSON object"),
        ({"query": "{ me { id } }", "extensions": True}, "extensions must be a JSON object"),
        ({"query": "{ me { id } }", "extensions": []}, "extensions must be a JSON object"),
    ],
)
def test_malformed_requests_are_400_with_a_clear_message(
    server: LiveServer, body: Any, message: str
) -> None:
    response = post(server, body)
    assert response.status_code == 400
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


def test_transport_errors(server: LiveServer) -> None:
    client = server.gql.client
    url = f"{server.url}/graphql"
    wrong_type = client.post(url, content="{ me { id } }", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert "unsupported content type" in only_error(wrong_type)["message"]

    not_acceptable = client.post(
        url, json={"query": "{ me { id } }"}, headers={"Accept": "text/csv"}
    )
    assert not_acceptable.status_code == 406

    mutation_by_get = client.get(url, params={"query": 'mutation { logout(refreshToken: "x") }'})
    assert mutation_by_get.status_code == 405
    assert mutation_by_get.headers["allow"] == "POST"

    put = client.put(url, json={"query": "{ me { id } }"})
    assert put.status_code == 405

    query_by_get = client.get(url, params={"query": "{ health { status } }"})
    assert query_by_get.status_code == 200
    assert query_by_get.json() == {"data": {"health": {"status": "ok"}}}

    oversized = client.post(url, json={"query": "{ me { id } }", "pad": "x" * 200_000})
    assert oversized.status_code == 413
    assert "larger than 100000 bytes" in only_error(oversized)["message"]


def test_depth_alias_and_token_limits(gql: GQL) -> None:
    assert "errors" not in gql.post("{ me { id } }").json()
    nested = "query Deep { " + "me { " * 12 + "id" + " }" * 12 + " }"
    depth = gql.post(nested).json()["errors"][0]
    assert depth["extensions"]["code"] == "BAD_USER_INPUT"
    assert "exceeds maximum operation depth" in depth["message"]

    aliases = "{ " + " ".join(f"a{i}: health {{ status }}" for i in range(20)) + " }"
    alias_error = gql.post(aliases).json()["errors"][0]
    assert alias_error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "aliases" in alias_error["message"]

    tokens = "{ " + " ".join(["__typename"] * 2100) + " }"
    token_error = gql.post(tokens).json()["errors"][0]
    assert token_error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "token" in token_error["message"].lower()


def test_unexpected_errors_are_masked_and_logged(
    stack: Stack, make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that does not exist: every query that touches it fails unexpectedly.
    missing = stack.database_url.replace("/cognitionos_test?", "/no_such_database?")
    server = make_server(database_url=missing)
    response = server.gql.post(
        'mutation { login(email: "a@example.com", password: "whatever-123") { accessToken } }'
    )
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    assert "no_such_database" not in response.text
    logged = [
        r
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg.get("event") == "unexpected error in resolver"
    ]
    assert logged, "the masked error was not logged"
    assert logged[-1].msg["request_id"] == response.headers["x-request-id"]
    _, exc, trace = logged[-1].msg["exc_info"]  # the stack trace, server side only
    assert "no_such_database" in str(exc) and trace is not None


def test_login_rate_limits_per_ip_and_per_account(make_server: Any, stack: Stack) -> None:
    gql = make_server(login_rate_limit_per_ip=100, login_rate_limit_per_account=3).gql
    for _ in range(3):
        assert (
            gql.login("target@example.com", "guess-123456").json()["errors"][0]["extensions"][
                "code"
            ]
            == "UNAUTHENTICATED"
        )
    limited = gql.login("target@example.com", "guess-123456").json()["errors"][0]
    assert limited["extensions"]["code"] == "RATE_LIMITED"
    assert limited["extensions"]["retryAfter"] in range(1, 61)
    # Another account from the same address is still allowed ...
    other = gql.login("other@example.com", "guess-123456").json()["errors"][0]
    assert other["extensions"]["code"] == "UNAUTHENTICATED"

    redis.Redis.from_url(stack.redis.url).flushall()
    per_ip = make_server(login_rate_limit_per_ip=2, login_rate_limit_per_account=100).gql
    codes = [
        per_ip.login(f"user{i}@example.com", "guess-123456").json()["errors"][0]["extensions"][
            "code"
        ]
        for i in range(3)
    ]
    assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]


def test_request_rate_limit_answers_429(make_server: Any) -> None:
    server = make_server(graphql_rate_limit=3)
    statuses = [server.gql.post("{ me { id } }").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = server.gql.post("{ me { id } }")
    assert int(limited.headers["retry-after"]) >= 1
    assert only_error(limited)["extensions"]["code"] == "RATE_LIMITED"


def test_health_endpoints(server: LiveServer, stack: Stack, make_server: Any) -> None:
    client = server.gql.client
    assert client.get(f"{server.url}/health/live").json() == {"status": "ok"}
    ready = client.get(f"{server.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["redis"] == "ok"

    from cognitionos.embedded import free_port

    dead_redis = make_server(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    failing = client.get(f"{dead_redis.url}/health/ready")
    assert failing.status_code == 503
    body = failing.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error:")


def test_metrics_count_operations_errors_and_auth(gql: GQL, server: LiveServer) -> None:
    gql.register("metrics@example.com")
    gql.login("metrics@example.com", "wrong-password-1")
    gql.post("query Named { me { id } }")
    text = server.gql.client.get(f"{server.url}/metrics").text
    assert 'cognitionos_graphql_operations_total{name="me",outcome="ok",type="query"}' in text
    assert 'cognitionos_graphql_errors_total{code="UNAUTHENTICATED"}' in text
    assert 'cognitionos_auth_results_total{method="password",result="INVALID_CREDENTIALS"}' in text
    assert 'cognitionos_http_requests_total{method="POST",route="/graphql",status="200"}' in text
    assert "cognitionos_graphql_operation_duration_seconds_bucket" in text


def test_graphiql_and_introspection_follow_the_environment(
    server: LiveServer, make_server: Any
) -> None:
    html = server.gql.client.get(f"{server.url}/graphql", headers={"Accept": "text/html"})
    assert html.status_code == 200 and "graphiql" in html.text.lower()
    assert "__schema" in json.dumps(server.gql.ok("{ __schema { queryType { name } } }"))

    prod = make_server(env="production", graphiql=None, introspection=None)
    closed = prod.gql.client.get(f"{prod.url}/graphql", headers={"Accept": "text/html"})
    assert closed.status_code == 404
    introspection = prod.gql.post("{ __schema { queryType { name } } }").json()
    assert "introspection" in introspection["errors"][0]["message"].lower()

    opened = make_server(env="production", graphiql=True, introspection=True)
    assert (
        opened.gql.client.get(f"{opened.url}/graphql", headers={"Accept": "text/html"}).status_code
        == 200
    )


def test_request_id_is_echoed_or_generated(server: LiveServer) -> None:
    client = server.gql.client
    echoed = client.get(f"{server.url}/health/live", headers={"X-Request-ID": "trace-me-123"})
    assert echoed.headers["x-request-id"] == "trace-me-123"
    generated = client.get(f"{server.url}/health/live", headers={"X-Request-ID": "bad id!"})
    assert len(generated.headers["x-request-id"]) == 32
