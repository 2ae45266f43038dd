"""Embedded PostgreSQL + Redis for a benchmark run, migrated, removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cognitionos.db import migrate
from cognitionos.embedded import EmbeddedPostgres, EmbeddedRedis


@dataclass
class Stack:
    data: Path
    database_url: str
    redis_url: str


@contextlib.asynccontextmanager
async def embedded_stack(prefix: str) -> AsyncIterator[Stack]:
    data = Path(tempfile.mkdtemp(prefix=prefix))
    postgres = EmbeddedPostgres(data, delete_on_stop=True)
    postgres.start()
    postgres.ensure_database()
    cache = EmbeddedRedis(data)
    cache.start()
    try:
        await asyncio.to_thread(migrate, postgres.url())
        yield Stack(data=data, database_url=postgres.url(), redis_url=cache.url)
    finally:
        cache.stop()
        postgres.stop()
