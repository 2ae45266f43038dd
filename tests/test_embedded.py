"""The zero-config services: data dir lock and embedded Redis."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from cognitionos.embedded import DataDirInUseError, DataDirLock, EmbeddedRedis


def test_data_dir_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirInUseError, match=f"pid {os.getpid()}"):
        DataDirLock(tmp_path).acquire()
    first.release()
    second = DataDirLock(tmp_path)
    second.acquire()  # free again
    second.release()


def test_embedded_redis_starts_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    try:
        assert client.ping()
        assert client.info()["redis_version"].startswith("6.")
    finally:
        client.close()
        server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()
