"""Notifications over GraphQL, live delivery, and workflows that notify."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cognitionos.services.notifications import verify, webhook_secret
from tests.conftest import Stack
from tests.peers import HttpPeer
from tests.support import EXECUTE, GQL, LiveServer
from tests.test_workflows import create, run
from tests.ws_support import WS

SEND = """mutation($i: SendNotificationInput!) { sendNotification(input: $i) {
    id status channel subject body priority } }"""
INBOX = """query($u: Boolean) { notifications(unreadOnly: $u) { edges { node {
    id subject body status } } } unreadCount }"""
PREFER = """mutation($i: NotificationPreferenceInput!) { updateNotificationPreference(input: $i) {
    channel enabled destination quietHoursStart quietHoursEnd timezone } }"""
LIVE = "subscription { notificationReceived { id subject body channel status } }"


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


@pytest.fixture
def peer() -> Iterator[HttpPeer]:
    started = HttpPeer().start()
    yield started
    started.stop()


def me(gql: GQL, token: str) -> str:
    return str(gql.ok("{ me { id } }", token=token)["me"]["id"])


def wait_for(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


async def test_send_reaches_the_live_inbox_and_can_be_marked_read(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = await asyncio.to_thread(gql.member)
    user_id = me(gql, token)
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("n", LIVE, {})
        await asyncio.sleep(0.3)
        sent = gql.ok(
            SEND, {"i": {"userId": user_id, "subject": "Hello", "body": "First!"}}, token=token
        )["sendNotification"]
        assert sent["status"] == "PENDING"
        (live,) = await ws.collect("n", limit=1)
    assert live["data"]["notificationReceived"] == {
        "id": sent["id"],
        "subject": "Hello",
        "body": "First!",
        "channel": "IN_APP",
        "status": "DELIVERED",
    }
    inbox = gql.ok(INBOX, {"u": True}, token=token)
    assert inbox["unreadCount"] == 1
    marked = gql.ok(
        "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }",
        {"ids": [sent["id"]]},
        token=token,
    )
    assert marked["markNotificationsRead"] == 1
    assert gql.ok(INBOX, {"u": True}, token=token)["unreadCount"] == 0
    all_of_them = gql.ok(INBOX, {"u": False}, token=token)["notifications"]["edges"]
    assert [e["node"]["status"] for e in all_of_them] == ["READ"]


def test_preferences_templates_and_rights(gql: GQL, db: Any) -> None:
    token = gql.member()
    pref = gql.ok(
        PREFER,
        {
            "i": {
                "channel": "SLACK",
                "destination": "https://hooks.slack.com/services/T/B/X",
                "quietHoursStart": "22:00:00",
                "quietHoursEnd": "07:00:00",
                "timezone": "America/New_York",
            }
        },
        token=token,
    )["updateNotificationPreference"]
    assert pref == {
        "channel": "SLACK",
        "enabled": True,
        "destination": "https://hooks.slack.com/services/T/B/X",
        "quietHoursStart": "22:00:00",
        "quietHoursEnd": "07:00:00",
        "timezone": "America/New_York",
    }
    bad = gql.error(PREFER, {"i": {"channel": "SLACK", "timezone": "Mars/Olympus"}}, token=token)
    assert (bad["extensions"]["code"], bad["extensions"]["field"]) == ("BAD_USER_INPUT", "timezone")
    other = gql.register("other@example.com")
    denied = gql.error(SEND, {"i": {"userId": other["user"]["id"], "body": "hi"}}, token=token)
    assert denied["extensions"]["code"] == "FORBIDDEN"
    template = """mutation($i: NotificationTemplateInput!) { createNotificationTemplate(input: $i) {
        key channel } }"""
    spec = {"key": "k", "channel": "IN_APP", "body": "Hi {{ name }}"}
    assert gql.error(template, {"i": spec}, token=token)["extensions"]["code"] == "FORBIDDEN"
    gql.register("root@example.com")
    db("UPDATE users SET role = 'ADMIN' WHERE email = 'root@example.com'")
    root = gql.login("root@example.com").json()["data"]["login"]["accessToken"]
    assert gql.ok(template, {"i": spec}, token=root)["createNotificationTemplate"] == {
        "key": "k",
        "channel": "IN_APP",
    }
    missing = gql.error(
        SEND, {"i": {"userId": me(gql, token), "template": "k", "data": {}}}, token=token
    )
    assert missing["extensions"]["field"] == "data" and "name" in missing["message"]


async def test_a_failing_workflow_notifies_in_app_live_and_by_signed_webhook(
    engine_server: LiveServer, gql: GQL, peer: HttpPeer, stack: Stack
) -> None:
    token = await asyncio.to_thread(gql.member)
    gql.ok(PREFER, {"i": {"channel": "WEBHOOK", "destination": peer.url("hook")}}, token=token)
    create(
        gql,
        token,
        "doomed",
        [{"key": "boom", "kind": "TRANSFORM", "config": {"template": "{{ inputs.missing }}"}}],
    )
    async with WS(engine_server.url) as ws:
        await ws.init(token)
        await ws.subscribe("n", LIVE, {})
        await asyncio.sleep(0.3)
        gql.ok(EXECUTE, {"input": {"workflowKey": "doomed", "inputs": {}}}, token=token)
        (live,) = await ws.collect("n", limit=1)
    note = live["data"]["notificationReceived"]
    assert note["subject"] == "Workflow doomed failed" and note["channel"] == "IN_APP"
    assert "missing" in note["body"]
    (hook,) = await asyncio.to_thread(wait_for, lambda: peer.on("/hook"))
    secret = webhook_secret(stack.settings())
    assert verify(
        secret,
        hook.body,
        hook.headers["x-cognitionos-timestamp"],
        hook.headers["x-cognitionos-signature"],
    )
    payload = json.loads(hook.body)
    assert payload["subject"] == "Workflow doomed failed"
    assert payload["data"]["status"] == "FAILED" and payload["data"]["workflowKey"] == "doomed"


def test_notify_steps_send_from_workflows_once(gql: GQL) -> None:
    token = gql.member()
    gql.ok(PREFER, {"i": {"channel": "IN_APP", "enabled": True}}, token=token)
    create(
        gql,
        token,
        "tell",
        [
            {
                "key": "say",
                "kind": "NOTIFY",
                "config": {
                    "subject": "Report for {{ inputs.who }}",
                    "body": "Ready.",
                    "priority": "HIGH",
                },
            }
        ],
    )
    done = run(gql, token, "tell", {"who": "Ada"})
    assert done["status"] == "SUCCEEDED", done
    created = done["steps"][0]["output"]
    subjects = wait_for(
        lambda: (
            [
                e["node"]["subject"]
                for e in gql.ok(INBOX, {"u": True}, token=token)["notifications"]["edges"]
                if e["node"]["status"] == "DELIVERED"
            ]
            if len(gql.ok(INBOX, {"u": True}, token=token)["notifications"]["edges"]) >= 2
            else None
        )
    )
    assert sorted(subjects) == ["Report for Ada", "Workflow tell succeeded"]
    assert created["status"] == "PENDING"


def test_steps_list_in_definition_order_and_waiting_for_approval_notifies(gql: GQL) -> None:
    token = gql.member()
    keys = ["zeta", "alpha", "mid"]  # not alphabetical
    steps: list[dict[str, Any]] = [
        {"key": k, "kind": "TRANSFORM", "config": {"template": k}} for k in keys
    ]
    steps.append(
        {"key": "sign", "kind": "APPROVAL", "config": {"prompt": "OK?"}, "dependsOn": keys}
    )
    create(gql, token, "gated", steps)
    waiting = run(gql, token, "gated")
    assert waiting["status"] == "WAITING"
    assert [s["stepKey"] for s in waiting["steps"]] == [*keys, "sign"]
    edges = wait_for(lambda: gql.ok(INBOX, {"u": True}, token=token)["notifications"]["edges"])
    assert [e["node"]["subject"] for e in edges] == ["Workflow gated is waiting for approval"]
