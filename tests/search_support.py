"""What the search tests share: an admin's token and a workflow made through the API."""

from __future__ import annotations

from typing import Any

from tests.support import CREATE_WORKFLOW, GQL

__all__ = ["admin", "workflow"]


def admin(gql: GQL, db: Any, email: str = "admin@example.com") -> str:
    gql.register(email)
    db("UPDATE users SET role = 'ADMIN' WHERE email = $1", email)
    return str(gql.login(email).json()["data"]["login"]["accessToken"])


def workflow(gql: GQL, token: str, key: str, name: str, **extra: Any) -> str:
    steps = extra.pop(
        "steps", [{"key": "render", "kind": "TRANSFORM", "config": {"template": "ok"}}]
    )
    payload = {"key": key, "version": "1.0.0", "name": name, "steps": steps, **extra}
    return str(gql.ok(CREATE_WORKFLOW, {"input": payload}, token=token)["createWorkflow"]["id"])
