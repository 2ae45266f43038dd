"""The event log: append in the caller's transaction, publish after commit, replay."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.events import Event
from cognitionos.services.auth.changes import (
    STAMP_TTL_SECONDS,
    CredentialChange,
    new_stamp,
    stamp_key,
)

__all__ = [
    "agents_channel",
    "append_event",
    "channel_for",
    "credentials_channel",
    "list_events",
    "notifications_channel",
    "publish_credential_changes",
    "publish_events",
    "stamp_users",
    "step_output_channel",
    "version_at",
]

CHANNEL_PREFIX = "cognitionos:events:"


def channel_for(stream_type: str, stream_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{stream_type}:{stream_id}"


def notifications_channel(user_id: uuid.UUID) -> str:
    return f"cognitionos:notifications:{user_id}"


def agents_channel() -> str:
    return "cognitionos:agents"


def step_output_channel(step_id: uuid.UUID) -> str:
    return f"cognitionos:step-output:{step_id}"


def credentials_channel() -> str:
    return "cognitionos:credentials"


async def append_event(
    session: AsyncSession,
    *,
    stream_type: str,
    stream_id: uuid.UUID,
    type: str,
    data: dict[str, Any] | None = None,
    actor: uuid.UUID | None = None,
    outbox: list[Event] | None = None,
    version: int | None = None,
) -> Event:
    """Append to a stream, inserted with the caller's next flush or commit.

    Callers serialize the writers of one stream (a row lock on its owner) and pass the
    next ``version`` they keep on that row; without it, ``max(version) + 1`` is read.
    The unique (stream, version) index guards both."""
    if version is None:
        await session.flush()
        current = await session.scalar(
            select(func.coalesce(func.max(Event.version), 0)).where(Event.stream_id == stream_id)
        )
        version = int(current or 0) + 1
    event = Event(
        stream_type=stream_type,
        stream_id=stream_id,
        version=version,
        type=type,
        data=data or {},
        actor=actor,
    )
    session.add(event)
    if outbox is not None:
        outbox.append(event)
    return event


async def publish_events(redis: Redis, events: Iterable[Event]) -> None:
    """After commit: tell every replica. Best effort; subscribers backfill from the log."""
    pipe = redis.pipeline(transaction=False)
    count = 0
    for event in events:
        message = {
            "position": event.position,
            "streamType": event.stream_type,
            "streamId": str(event.stream_id),
            "version": event.version,
            "type": event.type,
            "data": event.data,
        }
        pipe.publish(channel_for(event.stream_type, event.stream_id), json.dumps(message))
        count += 1
    if count:
        await pipe.execute()


async def publish_credential_changes(redis: Redis, changes: Iterable[CredentialChange]) -> None:
    """After commit: every replica re-checks the websockets these changes may affect, and
    the next request of each user, in any replica, reads their standing again (its stamp
    moved before the announcement goes out)."""
    unique = list(dict.fromkeys(changes))
    if not unique:
        return
    pipe = redis.pipeline(transaction=False)
    for user_id in dict.fromkeys(change.user_id for change in unique):
        pipe.set(stamp_key(user_id), new_stamp(), ex=STAMP_TTL_SECONDS)
    for change in unique:
        pipe.publish(credentials_channel(), json.dumps(change.as_message()))
    await pipe.execute()


async def stamp_users(redis: Redis, user_ids: Iterable[uuid.UUID]) -> None:
    """After commit of a change to user rows that no connection must re-check (a login's
    bookkeeping): the next request of each reads the row again."""
    unique = list(dict.fromkeys(user_ids))
    if not unique:
        return
    pipe = redis.pipeline(transaction=False)
    for user_id in unique:
        pipe.set(stamp_key(user_id), new_stamp(), ex=STAMP_TTL_SECONDS)
    await pipe.execute()


async def list_events(
    session: AsyncSession,
    *,
    stream_id: uuid.UUID,
    after: int | None = None,
    after_version: int | None = None,
    limit: int = 1000,
) -> Sequence[Event]:
    """A stream's events in order, after a global ``position`` or a stream ``version``."""
    stmt = select(Event).where(Event.stream_id == stream_id)
    if after is not None:
        stmt = stmt.where(Event.position > after)
    if after_version is not None:
        stmt = stmt.where(Event.version > after_version)
    return (await session.scalars(stmt.order_by(Event.version).limit(limit))).all()


async def version_at(session: AsyncSession, *, stream_id: uuid.UUID, position: int) -> int:
    """The stream's version as of a position (0 before its first event)."""
    found = await session.scalar(
        select(func.coalesce(func.max(Event.version), 0)).where(
            Event.stream_id == stream_id, Event.position <= position
        )
    )
    return int(found or 0)
