"""Who may call each mutation, over every field of the Mutation type (introspected, so a
new mutation is covered, and must be added to MINIMUM_ROLE, the day it appears)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import GQL, LiveServer
from tests.ws_support import WS

# The least a principal needs to reach each mutation: None is anyone, even anonymous.
MINIMUM_ROLE: dict[str, str | None] = {
    "register": None,
    "login": None,
    "refreshToken": None,
    "logout": None,
    "createApiKey": "VIEWER",
    "revokeApiKey": "VIEWER",
    "markNotificationsRead": "VIEWER",
    "markAllNotificationsRead": "VIEWER",
    "updateNotificationPreference": "VIEWER",
    "createWorkflow": "MEMBER",
    "executeWorkflow": "MEMBER",
    "cancelExecution": "MEMBER",
    "retryExecution": "MEMBER",
    "approveStep": "MEMBER",
    "createSchedule": "MEMBER",
    "updateSchedule": "MEMBER",
    "deleteSchedule": "MEMBER",
    "planWorkflow": "MEMBER",
    "storeMemory": "MEMBER",
    "updateMemory": "MEMBER",
    "forgetMemory": "MEMBER",
    "rememberConversation": "MEMBER",
    "consolidateMemories": "MEMBER",
    "sendNotification": "MEMBER",
    "updateUser": "ADMIN",
    "registerAgent": "ADMIN",
    "updateAgent": "ADMIN",
    "createPromptVersion": "ADMIN",
    "setBudget": "ADMIN",
    "createNotificationTemplate": "ADMIN",
}
RANK = {None: -1, "VIEWER": 0, "MEMBER": 1, "ADMIN": 2}

TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
INTROSPECTION = f"""{{
  __schema {{
    mutationType {{ fields {{ name args {{ name defaultValue type {{ {TYPE_REF} }} }}
      type {{ {TYPE_REF} }} }} }}
    types {{ name kind enumValues {{ name }}
      inputFields {{ name defaultValue type {{ {TYPE_REF} }} }} }}
  }}
}}"""

# A valid value of every scalar the schema has; a new scalar fails loudly here.
SCALARS: dict[str, Any] = {
    "String": "x",
    "ID": "00000000-0000-0000-0000-000000000000",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "Decimal": "1",
    "DateTime": "2030-01-01T00:00:00Z",
    "Time": "08:00",
    "JSON": {},
}


class Mutations:
    """Every mutation of the live schema as a document with valid placeholder arguments."""

    def __init__(self, gql: GQL) -> None:
        schema = gql.ok(INTROSPECTION)["__schema"]
        self.types = {t["name"]: t for t in schema["types"]}
        self.fields = {f["name"]: f for f in schema["mutationType"]["fields"]}

    @staticmethod
    def type_name(ref: dict[str, Any]) -> str:
        if ref["kind"] == "NON_NULL":
            return f"{Mutations.type_name(ref['ofType'])}!"
        if ref["kind"] == "LIST":
            return f"[{Mutations.type_name(ref['ofType'])}]"
        return str(ref["name"])

    def value(self, ref: dict[str, Any]) -> Any:
        if ref["kind"] == "NON_NULL":
            return self.value(ref["ofType"])
        if ref["kind"] == "LIST":
            return [self.value(ref["ofType"])]
        named = self.types[ref["name"]]
        if named["kind"] == "ENUM":
            return named["enumValues"][0]["name"]
        if named["kind"] == "INPUT_OBJECT":
            return {
                f["name"]: self.value(f["type"])
                for f in named["inputFields"]
                if f["type"]["kind"] == "NON_NULL" and f["defaultValue"] is None
            }
        return SCALARS[named["name"]]

    def document(self, name: str) -> tuple[str, dict[str, Any]]:
        field = self.fields[name]
        required = [
            a
            for a in field["args"]
            if a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None
        ]
        params = ", ".join(f"${a['name']}: {self.type_name(a['type'])}" for a in required)
        args = ", ".join(f"{a['name']}: ${a['name']}" for a in required)
        result = field["type"]
        while result["kind"] in ("NON_NULL", "LIST"):
            result = result["ofType"]
        selection = (
            "" if self.types[result["name"]]["kind"] in ("SCALAR", "ENUM") else (" { __typename }")
        )
        call = f"{name}({args})" if args else name
        query = f"mutation{f'({params})' if params else ''} {{ {call}{selection} }}"
        return query, {a["name"]: self.value(a["type"]) for a in required}


@pytest.fixture
def mutations(gql: GQL) -> Mutations:
    return Mutations(gql)


def promote(db: Any, email: str, role: str) -> None:
    db("UPDATE users SET role = $1 WHERE email = $2", role, email)


def test_every_mutation_is_in_the_table(mutations: Mutations) -> None:
    assert sorted(mutations.fields) == sorted(MINIMUM_ROLE)


def test_a_read_key_is_refused_by_every_mutation(
    gql: GQL, server: LiveServer, mutations: Mutations, db: Any
) -> None:
    admin = gql.register("root@example.com")["accessToken"]
    promote(db, "root@example.com", "ADMIN")
    read_key = gql.ok(
        'mutation { createApiKey(name: "ro", scopes: ["read"]) { secret } }', token=admin
    )["createApiKey"]["secret"]

    for name in sorted(mutations.fields):
        query, variables = mutations.document(name)
        response = gql.post(query, variables, token=read_key)
        errors = response.json()["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], (name, errors)
        assert errors[0]["extensions"]["requiredScope"] == "write"
        # Arguments that would not even validate are refused the same way, first.
        broken = gql.post(f"mutation {{ {name}(noSuchArgument: 1) }}", token=read_key).json()
        assert [e["extensions"]["code"] for e in broken["errors"]] == ["FORBIDDEN"], name


def test_read_key_refusal_is_a_403_request_error(gql: GQL, server: LiveServer) -> None:
    token = gql.register("ro@example.com")["accessToken"]
    read_key = gql.ok(
        'mutation { createApiKey(name: "ro", scopes: ["read"]) { secret } }', token=token
    )["createApiKey"]["secret"]
    response = gql.post(
        "mutation { markAllNotificationsRead }",
        token=read_key,
        headers={"Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 403
    assert "data" not in response.json()
    # Queries still work with the same key.
    assert gql.ok("{ me { email } }", token=read_key)["me"]["email"] == "ro@example.com"


def test_a_read_key_cannot_redirect_its_owners_webhook(gql: GQL) -> None:
    token = gql.register("hook@example.com")["accessToken"]
    keys = {
        scope: gql.ok(
            'mutation($s: [String!]) { createApiKey(name: "k", scopes: $s) { secret } }',
            {"s": [scope]},
            token=token,
        )["createApiKey"]["secret"]
        for scope in ("read", "write")
    }
    update = """mutation($d: String!) { updateNotificationPreference(
        input: {channel: WEBHOOK, enabled: true, destination: $d}) { destination } }"""
    preferences = "{ notificationPreferences { channel destination } }"

    refused = gql.error(update, {"d": "https://attacker.example/hook"}, token=keys["read"])
    assert refused["extensions"]["code"] == "FORBIDDEN"
    stored = gql.ok(preferences, token=token)["notificationPreferences"]
    assert all(p["destination"] != "https://attacker.example/hook" for p in stored)

    written = gql.ok(update, {"d": "https://hooks.example/mine"}, token=keys["write"])
    assert written["updateNotificationPreference"]["destination"] == "https://hooks.example/mine"


def test_each_mutation_refuses_roles_below_its_minimum(
    gql: GQL, mutations: Mutations, db: Any
) -> None:
    tokens: dict[str | None, str | None] = {None: None}
    for role in ("VIEWER", "MEMBER", "ADMIN"):
        email = f"{role.lower()}@example.com"
        tokens[role] = gql.register(email)["accessToken"]
        promote(db, email, role)

    for name, minimum in sorted(MINIMUM_ROLE.items()):
        query, variables = mutations.document(name)
        for role, token in tokens.items():
            errors = gql.post(query, variables, token=token).json().get("errors") or []
            codes = [e["extensions"]["code"] for e in errors]
            if RANK[role] < RANK[minimum]:
                expected = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
                assert codes == [expected], (name, role, errors)
                if role is not None:
                    assert errors[0]["extensions"]["requiredRole"] == minimum, (name, errors)
            else:  # reached: whatever the placeholder arguments do, the role was enough
                assert "requiredRole" not in str(errors), (name, role, errors)
                assert not any("authentication required" in e["message"] for e in errors)


async def test_a_read_key_cannot_mutate_over_a_websocket(gql: GQL, server: LiveServer) -> None:
    token = gql.register("wsro@example.com")["accessToken"]
    read_key = gql.ok(
        'mutation { createApiKey(name: "ro", scopes: ["read"]) { secret } }', token=token
    )["createApiKey"]["secret"]
    async with WS(server.url) as ws:
        assert (await ws.init(apiKey=read_key))["type"] == "connection_ack"
        await ws.subscribe("1", "mutation { markAllNotificationsRead }", {})
        answer = await ws.recv()
    assert answer["type"] == "error", answer
    assert [e["extensions"]["code"] for e in answer["payload"]] == ["FORBIDDEN"]
