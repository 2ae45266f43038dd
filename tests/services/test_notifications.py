"""Delivery on its own database with a controllable clock: every channel against a real
local peer, quiet hours, retries, rate limits, dedup, digests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from cognitionos.db import create_engine, create_sessionmaker, migrate
from cognitionos.db.models import Channel, Notification, Priority, Role, User
from cognitionos.services.auth import Principal
from cognitionos.services.notifications import (
    NotificationInput,
    PreferenceInput,
    create_template,
    deliver_due,
    send_notification,
    set_preference,
    verify,
    webhook_secret,
)
from cognitionos.services.templating import TemplateRenderer
from tests.conftest import Stack
from tests.peers import HttpPeer, SmtpPeer

DATABASE = "cognitionos_notify"


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[HttpPeer, SmtpPeer]]:
    http, smtp = HttpPeer().start(), SmtpPeer().start()
    yield http, smtp
    http.stop()
    smtp.stop()


@pytest.fixture(scope="module")
def database(stack: Stack) -> str:
    stack.postgres.ensure_database(DATABASE)
    migrate(stack.postgres.url(DATABASE))
    return stack.postgres.url(DATABASE)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Env:
    def __init__(
        self,
        stack: Stack,
        sessionmaker: Any,
        renderer: TemplateRenderer,
        http: HttpPeer,
        smtp: SmtpPeer,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.renderer = renderer
        self.http, self.smtp = http, smtp
        self.clock = Clock()
        self.settings = stack.settings(
            http_allow_hosts=["127.0.0.1"],
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            sms_base_url=http.url("twilio"),
            twilio_account_sid="AC123",
            twilio_auth_token="tok",
            sms_from="+15550001111",
            notification_rate_limit=3,
            notification_digest_seconds=300,
        )
        self.user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER)
        self.admin = Principal(user_id=uuid.uuid4(), role=Role.ADMIN)

    async def users(self) -> None:
        async with self.sessionmaker() as session:
            for p, email in ((self.user, "ada@example.com"), (self.admin, "root@example.com")):
                session.add(User(id=p.user_id, email=email, password_hash="x", role=p.role))
            await session.commit()

    async def send(self, who: Principal | None = None, **fields: Any) -> Notification:
        fields.setdefault("user_id", self.user.user_id)
        async with self.sessionmaker() as session:
            n = await send_notification(
                session,
                settings=self.settings,
                renderer=self.renderer,
                principal=who or self.user,
                data=NotificationInput(**fields),
            )
        # Created "now" on the controllable clock.
        async with self.sessionmaker() as session:
            await session.execute(
                text("UPDATE notifications SET created_at = :t, scheduled_for = :t WHERE id = :id"),
                {"t": self.clock.now, "id": n.id},
            )
            await session.commit()
        return n

    async def prefer(self, channel: Channel, **fields: Any) -> None:
        async with self.sessionmaker() as session:
            await set_preference(
                session, user_id=self.user.user_id, data=PreferenceInput(channel=channel, **fields)
            )

    async def tick(self) -> int:
        return await deliver_due(self.sessionmaker, self.settings, None, clock=self.clock)

    async def get(self, n: Notification) -> Notification:
        async with self.sessionmaker() as session:
            row = await session.get(Notification, n.id)
            assert row is not None
            return row


@pytest.fixture
async def env(
    stack: Stack, database: str, renderer: TemplateRenderer, peers: tuple[HttpPeer, SmtpPeer]
) -> AsyncIterator[Env]:
    engine = create_engine(database, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        await session.execute(
            text(
                "TRUNCATE notifications, notification_preferences, notification_templates, "
                "users CASCADE"
            )
        )
        await session.commit()
    for peer in peers:
        peer.reset()
    built = Env(stack, sessionmaker, renderer, *peers)
    await built.users()
    yield built
    await engine.dispose()


async def test_in_app_is_delivered_and_members_notify_only_themselves(env: Env) -> None:
    n = await env.send(subject="Hi", body="Welcome aboard")
    assert n.status.value == "PENDING"
    assert await env.tick() == 1
    row = await env.get(n)
    assert (row.status.value, row.attempts) == ("DELIVERED", 1)
    assert row.delivered_at is not None
    from cognitionos.services.errors import Forbidden

    with pytest.raises(Forbidden):
        await env.send(user_id=env.admin.user_id, body="hello boss")
    other = await env.send(env.admin, body="From the admin")  # admins notify anyone
    assert other.user_id == env.user.user_id


async def test_webhook_is_signed_and_the_receiver_can_verify_it(env: Env) -> None:
    await env.prefer(Channel.WEBHOOK, destination=env.http.url("hook"))
    n = await env.send(channel=Channel.WEBHOOK, subject="Deploy", body="v2 is live", data={"v": 2})
    await env.tick()
    (got,) = env.http.on("/hook")
    payload = json.loads(got.body)
    assert payload["id"] == str(n.id) and payload["data"] == {"v": 2}
    ts, sig = got.headers["x-cognitionos-timestamp"], got.headers["x-cognitionos-signature"]
    secret = webhook_secret(env.settings)
    assert verify(secret, got.body, ts, sig)
    assert not verify(secret, got.body + b" ", ts, sig)  # tampered body
    assert not verify(secret, got.body, ts, sig, now=int(ts) + 301)  # a replay too late
    assert (await env.get(n)).status.value == "DELIVERED"


async def test_email_reaches_a_real_smtp_server(env: Env) -> None:
    n = await env.send(channel=Channel.EMAIL, subject="Your report", body="It is attached.")
    await env.tick()
    (mail,) = env.smtp.handler.messages
    assert mail["To"] == "ada@example.com" and mail["Subject"] == "Your report"
    assert mail["X-CognitionOS-Notification"] == str(n.id)
    assert mail.get_payload().strip() == "It is attached."
    assert (await env.get(n)).status.value == "SENT"


async def test_slack_teams_and_sms_payloads(env: Env) -> None:
    await env.prefer(Channel.SLACK, destination=env.http.url("slack"))
    await env.prefer(Channel.TEAMS, destination=env.http.url("teams"))
    await env.prefer(Channel.SMS, destination="+15557654321")
    for channel in (Channel.SLACK, Channel.TEAMS, Channel.SMS):
        await env.send(
            channel=channel, subject="Build", body="Build 42 passed", priority=Priority.HIGH
        )
    await env.tick()
    (slack,) = env.http.on("/slack")
    body = json.loads(slack.body)
    assert body["text"] == "Build\n\nBuild 42 passed"
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Build"}}
    (teams,) = env.http.on("/teams")
    card = json.loads(teams.body)
    assert (card["@type"], card["title"], card["text"]) == (
        "MessageCard",
        "Build",
        "Build 42 passed",
    )
    (sms,) = env.http.on("/twilio/2010-04-01/Accounts/AC123/Messages.json")
    assert sms.form == {
        "To": "+15557654321",
        "From": "+15550001111",
        "Body": "Build\n\nBuild 42 passed",
    }
    assert sms.headers["authorization"].startswith("Basic ")


async def test_quiet_hours_hold_until_the_window_ends_and_critical_goes_through(env: Env) -> None:
    # 12:00 UTC is 14:00 in Paris (summer): inside 13:00-15:00.
    await env.prefer(
        Channel.IN_APP, quiet_start=time(13, 0), quiet_end=time(15, 0), timezone="Europe/Paris"
    )
    held = await env.send(body="Can wait")
    urgent = await env.send(body="Server down", priority=Priority.CRITICAL)
    await env.tick()
    row = await env.get(held)
    assert row.status.value == "PENDING" and "quiet hours" in (row.reason or "")
    assert row.scheduled_for == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert (await env.get(urgent)).status.value == "DELIVERED"
    env.clock.advance(59 * 60)
    await env.tick()
    assert (await env.get(held)).status.value == "PENDING"
    env.clock.advance(60)
    await env.tick()
    assert (await env.get(held)).status.value == "DELIVERED"  # never dropped


async def test_a_peer_failing_twice_then_succeeding_gets_it_on_the_third_attempt(env: Env) -> None:
    await env.prefer(Channel.WEBHOOK, destination=env.http.url("flaky"))
    env.http.fail(503, 500)
    n = await env.send(channel=Channel.WEBHOOK, body="eventually")
    await env.tick()
    first = await env.get(n)
    assert first.status.value == "PENDING" and "503" in (first.reason or "")
    delay = (first.scheduled_for - env.clock.now).total_seconds()
    assert 7.5 <= delay <= 15  # 15 s base, half of it jitter
    env.clock.advance(15)
    await env.tick()
    second = await env.get(n)
    assert (
        second.attempts == 2 and 15 <= (second.scheduled_for - env.clock.now).total_seconds() <= 30
    )
    env.clock.advance(30)
    await env.tick()
    third = await env.get(n)
    assert (third.status.value, third.attempts) == ("DELIVERED", 3)
    assert len(env.http.on("/flaky")) == 3


async def test_a_hopeless_4xx_fails_at_once_and_attempts_are_capped(env: Env) -> None:
    await env.prefer(Channel.WEBHOOK, destination=env.http.url("gone"))
    env.http.fail(410)
    gone = await env.send(channel=Channel.WEBHOOK, body="x")
    await env.tick()
    row = await env.get(gone)
    assert row.status.value == "FAILED" and "410" in (row.reason or "") and row.attempts == 1
    env.http.fail(*[500] * 8)
    doomed = await env.send(channel=Channel.WEBHOOK, body="y")
    for _ in range(8):
        await env.tick()
        env.clock.advance(3600)
    row = await env.get(doomed)
    assert (row.status.value, row.attempts) == ("FAILED", 8)


async def test_suppressed_when_turned_off_or_without_destination(env: Env) -> None:
    await env.prefer(Channel.IN_APP, enabled=False)
    off = await env.send(body="muted")
    nowhere = await env.send(channel=Channel.SLACK, body="where?")
    await env.tick()
    assert (await env.get(off)).reason == "IN_APP is turned off"
    row = await env.get(nowhere)
    assert row.status.value == "SUPPRESSED" and "no SLACK destination" in (row.reason or "")


async def test_rate_limit_defers_the_excess_instead_of_dropping_it(env: Env) -> None:
    sent = [await env.send(body=f"n{i}") for i in range(5)]
    await env.tick()
    statuses = [(await env.get(n)).status.value for n in sent]
    assert statuses.count("DELIVERED") == 3 and statuses.count("PENDING") == 2
    urgent = await env.send(body="now", priority=Priority.CRITICAL)
    await env.tick()
    assert (await env.get(urgent)).status.value == "DELIVERED"  # CRITICAL skips the limit
    env.clock.advance(61)
    await env.tick()
    assert {(await env.get(n)).status.value for n in sent} == {"DELIVERED"}


async def test_dedup_key_returns_the_first_within_24_hours(env: Env) -> None:
    async def send(body: str) -> Notification:
        async with env.sessionmaker() as session:
            return await send_notification(
                session,
                settings=env.settings,
                renderer=env.renderer,
                principal=env.user,
                data=NotificationInput(user_id=env.user.user_id, body=body, dedup_key="invoice-7"),
            )

    first = await send("once")
    assert (await send("twice")).id == first.id
    async with env.sessionmaker() as session:
        await session.execute(
            text("UPDATE notifications SET created_at = now() - interval '25 hours'")
        )
        await session.commit()
    later = await send("a day later")
    assert later.id != first.id and later.body == "a day later"


async def test_low_priority_is_sent_as_one_digest(env: Env) -> None:
    await env.prefer(Channel.WEBHOOK, destination=env.http.url("digest"))
    low = []
    for i in range(3):
        low.append(
            await env.send(
                channel=Channel.WEBHOOK,
                subject=f"Like #{i}",
                body="Someone liked it",
                priority=Priority.LOW,
            )
        )
        env.clock.advance(1)
    await env.tick()
    assert env.http.on("/digest") == []  # gathering
    env.clock.advance(301)
    await env.tick()
    (digest,) = env.http.on("/digest")
    payload = json.loads(digest.body)
    assert payload["subject"] == "3 notifications"
    assert payload["body"].splitlines() == [f"- Like #{i}: Someone liked it" for i in range(3)]
    rows = [await env.get(n) for n in low]
    assert {r.status.value for r in rows} == {"DELIVERED"}
    assert {r.digest_id for r in rows} == {low[0].id}


async def test_templates_render_and_a_missing_variable_is_a_clear_error(env: Env) -> None:
    from cognitionos.services.errors import BadUserInput

    async with env.sessionmaker() as session:
        await create_template(
            session,
            principal=env.admin,
            key="welcome",
            channel=Channel.IN_APP,
            subject="Welcome, {{ name }}",
            body="Your plan: {{ plan }}.",
        )
    n = await env.send(template="welcome", data={"name": "Ada", "plan": "Pro"})
    assert (n.subject, n.body) == ("Welcome, Ada", "Your plan: Pro.")
    with pytest.raises(BadUserInput) as caught:
        await env.send(template="welcome", data={"name": "Ada"})
    assert "plan" in caught.value.message and caught.value.field == "data"
