"""Channel names on Redis pub/sub; everything lives under ``cognitionos:``."""

from __future__ import annotations

import uuid

from cognitionos.services.events import channel_for

__all__ = ["agents_channel", "channel_for", "notifications_channel", "step_output_channel"]


def notifications_channel(user_id: uuid.UUID) -> str:
    return f"cognitionos:notifications:{user_id}"


def agents_channel() -> str:
    return "cognitionos:agents"


def step_output_channel(step_id: uuid.UUID) -> str:
    return f"cognitionos:step-output:{step_id}"
