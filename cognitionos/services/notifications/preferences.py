"""Per-user, per-channel preferences: on/off, destination, quiet hours in a time zone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models import Channel, NotificationPreference
from cognitionos.services.errors import BadUserInput

__all__ = ["PreferenceInput", "list_preferences", "quiet_until", "set_preference"]


@dataclass
class PreferenceInput:
    channel: Channel
    enabled: bool | None = None
    destination: str | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str | None = None
    clear_quiet_hours: bool = False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadUserInput(f"unknown time zone {name!r}", field="timezone") from None


def quiet_until(pref: NotificationPreference | None, now: datetime) -> datetime | None:
    """When the quiet window ``now`` falls in ends (UTC), or None when it is not quiet.
    A window may run over midnight (22:00 to 07:00)."""
    if pref is None or pref.quiet_start is None or pref.quiet_end is None:
        return None
    start, end = pref.quiet_start, pref.quiet_end
    if start == end:
        return None
    local = now.astimezone(_zone(pref.timezone))
    at = local.timetz().replace(tzinfo=None)
    day = local.date()
    if start < end:
        quiet, end_day = start <= at < end, day
    elif at >= start:
        quiet, end_day = True, day + timedelta(days=1)
    else:
        quiet, end_day = at < end, day
    if not quiet:
        return None
    ends = datetime.combine(end_day, end, tzinfo=local.tzinfo)
    return ends.astimezone(UTC)


async def list_preferences(
    session: AsyncSession, user_id: uuid.UUID
) -> list[NotificationPreference]:
    stmt = select(NotificationPreference).where(NotificationPreference.user_id == user_id)
    return list((await session.scalars(stmt.order_by(NotificationPreference.channel))).all())


async def set_preference(
    session: AsyncSession, *, user_id: uuid.UUID, data: PreferenceInput
) -> NotificationPreference:
    """Create or change the user's preference for one channel. Commits."""
    if data.timezone is not None:
        _zone(data.timezone)
    if (data.quiet_start is None) != (data.quiet_end is None):
        raise BadUserInput("quiet hours need both a start and an end", field="quietHoursEnd")
    if data.destination is not None and data.channel is Channel.IN_APP:
        raise BadUserInput("in-app notifications have no destination", field="destination")
    values: dict[str, object] = {"updated_at": datetime.now(UTC)}
    if data.enabled is not None:
        values["enabled"] = data.enabled
    if data.destination is not None:
        values["destination"] = data.destination.strip() or None
    if data.quiet_start is not None:
        values["quiet_start"], values["quiet_end"] = data.quiet_start, data.quiet_end
    if data.clear_quiet_hours:
        values["quiet_start"] = values["quiet_end"] = None
    if data.timezone is not None:
        values["timezone"] = data.timezone
    stmt = insert(NotificationPreference).values(
        user_id=user_id,
        channel=data.channel,
        enabled=values.get("enabled", True),
        destination=values.get("destination"),
        quiet_start=values.get("quiet_start"),
        quiet_end=values.get("quiet_end"),
        timezone=values.get("timezone", "UTC"),
        updated_at=values["updated_at"],
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[NotificationPreference.user_id, NotificationPreference.channel],
            set_=values,
        )
    )
    await session.commit()
    pref = await session.get(
        NotificationPreference, (user_id, data.channel), populate_existing=True
    )
    assert pref is not None
    return pref
