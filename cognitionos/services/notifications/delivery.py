"""The delivery loop: every worker sends what is due, a batch at a time.

A due notification (PENDING or QUEUED, ``scheduled_for`` passed) is claimed with
``FOR UPDATE SKIP LOCKED`` and routed:

* its channel turned off, or no destination → SUPPRESSED, with the reason;
* quiet hours (not CRITICAL) → held until the window ends, never dropped;
* LOW priority → held for ``notification_digest_seconds`` after it was created, then sent
  with every other due LOW one of the same user and channel as one digest;
* over the rate limit (not CRITICAL) → held until the window has room, never dropped;
* otherwise QUEUED with a lease (a worker that dies mid-send leaves it to be sent again)
  and sent after the commit.

A failure is retried with exponential backoff and jitter up to ``notification_max_attempts``
(a final error — a 4xx that cannot succeed — fails at once).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models import (
    Channel,
    Notification,
    NotificationPreference,
    NotificationStatus,
    Priority,
    User,
)
from cognitionos.observability import Metrics, get_logger
from cognitionos.services.backoff import backoff
from cognitionos.services.events import notifications_channel
from cognitionos.services.notifications.channels import SENDERS, ChannelError, Message, Outcome
from cognitionos.services.notifications.preferences import quiet_until

__all__ = ["deliver_due", "notification_message"]

log = get_logger("cognitionos.notifications")

_BATCH = 100
_LEASE = timedelta(seconds=60)


def notification_message(n: Notification) -> dict[str, object]:
    """The JSON published on ``notificationReceived``."""
    return {
        "id": str(n.id),
        "channel": n.channel.value,
        "subject": n.subject,
        "body": n.body,
        "data": n.data,
        "priority": n.priority.value,
        "status": n.status.value,
        "createdAt": n.created_at.isoformat(),
    }


@dataclass
class _Send:
    rows: list[Notification]  # one, or the members of a digest
    destination: str | None
    message: Message
    error: ChannelError | None = None
    outcome: str | None = None


@dataclass
class _Plan:
    sends: list[_Send] = field(default_factory=list)


def _hold(n: Notification, until: datetime, reason: str) -> None:
    n.status, n.scheduled_for, n.reason = NotificationStatus.PENDING, until, reason


def _digest(rows: list[Notification]) -> Message:
    first = rows[0]
    lines = [f"- {n.subject}: {n.body}" if n.subject else f"- {n.body}" for n in rows]
    return Message(
        id=str(first.id),
        user_id=str(first.user_id),
        channel=first.channel,
        subject=f"{len(rows)} notifications",
        body="\n".join(lines),
        data={"digest": [str(n.id) for n in rows]},
        priority=Priority.LOW.value,
        created_at=first.created_at.isoformat(),
    )


def _single(n: Notification) -> Message:
    return Message(
        id=str(n.id),
        user_id=str(n.user_id),
        channel=n.channel,
        subject=n.subject,
        body=n.body,
        data=n.data,
        priority=n.priority.value,
        created_at=n.created_at.isoformat(),
    )


async def _route(
    session: AsyncSession, settings: Settings, rows: list[Notification], now: datetime
) -> _Plan:
    pairs = {(n.user_id, n.channel) for n in rows}
    prefs = {
        (p.user_id, p.channel): p
        for p in (
            await session.scalars(
                select(NotificationPreference).where(
                    tuple_(NotificationPreference.user_id, NotificationPreference.channel).in_(
                        list(pairs)
                    )
                )
            )
        ).all()
    }
    emails = dict(
        (
            await session.execute(
                select(User.id, User.email).where(User.id.in_({n.user_id for n in rows}))
            )
        ).all()
    )
    window = now - timedelta(seconds=settings.notification_rate_window_seconds)
    counted = await session.execute(
        select(Notification.user_id, Notification.channel, func.count())
        .where(
            tuple_(Notification.user_id, Notification.channel).in_(list(pairs)),
            Notification.sent_at > window,
            # A digest counts once: by the row that carried it.
            Notification.digest_id.is_(None) | (Notification.digest_id == Notification.id),
        )
        .group_by(Notification.user_id, Notification.channel)
    )
    sent: dict[tuple[uuid.UUID, Channel], int] = {(u, c): k for u, c, k in counted.all()}
    plan = _Plan()
    digests: dict[tuple[uuid.UUID, Channel], list[Notification]] = {}
    retry_later = now + timedelta(seconds=settings.notification_rate_window_seconds / 4)
    limited = "rate limited: waiting for room in the window"

    def destination_of(key: tuple[uuid.UUID, Channel]) -> str | None:
        """The preference's destination; EMAIL falls back to the account's address."""
        pref = prefs.get(key)
        if pref is not None and pref.destination:
            return pref.destination
        return emails.get(key[0]) if key[1] is Channel.EMAIL else None

    def room(key: tuple[uuid.UUID, Channel]) -> bool:
        """Whether one more send fits the user's window on this channel (and take it)."""
        if sent.get(key, 0) >= settings.notification_rate_limit:
            return False
        sent[key] = sent.get(key, 0) + 1
        return True

    for n in rows:
        key = (n.user_id, n.channel)
        pref = prefs.get(key)
        destination = destination_of(key)
        if pref is not None and not pref.enabled:
            n.status, n.reason = NotificationStatus.SUPPRESSED, f"{n.channel.value} is turned off"
            continue
        if SENDERS[n.channel].needs_destination and not destination:
            n.status = NotificationStatus.SUPPRESSED
            n.reason = (
                f"no {n.channel.value} destination: set one with updateNotificationPreference"
            )
            continue
        critical = n.priority is Priority.CRITICAL
        quiet = None if critical else quiet_until(pref, now)
        if quiet is not None:
            _hold(n, quiet, f"quiet hours until {quiet.isoformat()}")
            continue
        if n.priority is Priority.LOW and n.attempts == 0:
            gathered = n.created_at + timedelta(seconds=settings.notification_digest_seconds)
            if gathered > now:
                _hold(n, gathered, "gathering a digest")
                continue
            digests.setdefault(key, []).append(n)
            continue
        if critical:
            sent[key] = sent.get(key, 0) + 1  # counted, never held
        elif not room(key):
            _hold(n, retry_later, limited)
            continue
        plan.sends.append(_Send([n], destination, _single(n)))
    for key, members in digests.items():
        members.sort(key=lambda n: (n.created_at, n.id))
        if not room(key):
            for n in members:
                _hold(n, retry_later, limited)
            continue
        message = _digest(members) if len(members) > 1 else _single(members[0])
        plan.sends.append(_Send(members, destination_of(key), message))
    for send in plan.sends:
        for n in send.rows:
            n.status, n.reason = NotificationStatus.QUEUED, None
            n.attempts += 1
            n.scheduled_for = now + _LEASE
    return plan


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis | None,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """One pass: route and send up to a batch of due notifications. Returns how many
    notifications changed state."""
    now = clock()
    async with sessionmaker() as session:
        rows = list(
            (
                await session.scalars(
                    select(Notification)
                    .where(
                        Notification.status.in_(
                            [NotificationStatus.PENDING, NotificationStatus.QUEUED]
                        ),
                        Notification.scheduled_for <= now,
                    )
                    .order_by(Notification.scheduled_for)
                    .limit(_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if not rows:
            return 0
        plan = await _route(session, settings, rows, now)
        await session.commit()

    async def attempt(send: _Send) -> None:
        try:
            send.outcome = await SENDERS[send.rows[0].channel].send(
                send.message, send.destination, settings
            )
        except ChannelError as exc:
            send.error = exc
        except Exception as exc:  # a bug in a sender must not lose the notification
            log.exception("notification sender raised")
            send.error = ChannelError(f"{type(exc).__name__}: {exc}", retryable=True)

    await asyncio.gather(*(attempt(s) for s in plan.sends))
    delivered: list[Notification] = []
    done = clock()
    async with sessionmaker() as session:
        ids = [row.id for send in plan.sends for row in send.rows]
        current = {
            n.id: n
            for n in (
                await session.scalars(
                    select(Notification).where(Notification.id.in_(ids)).with_for_update()
                )
            ).all()
        }
        for send in plan.sends:
            digest_id = send.rows[0].id if len(send.rows) > 1 else None
            for row in send.rows:
                n = current.get(row.id)
                if n is None or n.status is not NotificationStatus.QUEUED:
                    continue
                if send.error is None:
                    n.status = NotificationStatus(send.outcome or Outcome.SENT)
                    n.sent_at, n.reason, n.digest_id = done, None, digest_id
                    if metrics is not None:  # retries, quiet hours and digests included
                        waited = (done - n.created_at).total_seconds()
                        metrics.notification_latency.labels(n.channel.value).observe(waited)
                    if n.status is NotificationStatus.DELIVERED:
                        n.delivered_at = done
                        if n.channel is Channel.IN_APP:
                            delivered.append(n)
                elif send.error.retryable and n.attempts < settings.notification_max_attempts:
                    delay = backoff(settings.notification_retry_base_seconds, n.attempts - 1)
                    _hold(n, done + timedelta(seconds=delay), f"retrying: {send.error}")
                else:
                    n.status, n.reason = NotificationStatus.FAILED, str(send.error)[:2000]
                if metrics is not None:
                    metrics.notifications.labels(n.channel.value, n.status.value).inc()
        await session.commit()
    if redis is not None and delivered:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for n in delivered:
                    pipe.publish(
                        notifications_channel(n.user_id), json.dumps(notification_message(n))
                    )
                await pipe.execute()
        except Exception:  # the inbox has it; the live push is a courtesy
            log.warning("publishing notifications failed", exc_info=True)
    return len(rows)
