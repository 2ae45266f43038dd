"""Channel names on Redis pub/sub; everything lives under ``cognitionos:``."""

from __future__ import annotations

from cognitionos.services.events import (
    agents_channel,
    channel_for,
    credentials_channel,
    notifications_channel,
    step_output_channel,
)

__all__ = [
    "agents_channel",
    "channel_for",
    "credentials_channel",
    "notifications_channel",
    "step_output_channel",
]
