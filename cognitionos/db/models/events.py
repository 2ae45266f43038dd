"""The append-only event log, written in the same transaction as the state it records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cognitionos.db.base import Base, utcnow

__all__ = ["Event"]


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),)

    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    stream_type: Mapped[str] = mapped_column(String(32))
    stream_id: Mapped[uuid.UUID] = mapped_column(index=True)
    version: Mapped[int]
    type: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    actor: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
