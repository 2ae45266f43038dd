"""A database and a Redis of their own, for tests with real worker processes: no other
worker in the test session can pick up their steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cognitionos.embedded import EmbeddedRedis
from tests.conftest import TEST_SECRET, Stack

__all__ = ["Isolated"]


class Isolated:
    def __init__(
        self, stack: Stack, cache: EmbeddedRedis, database: str, engine: dict[str, Any]
    ) -> None:
        self.stack = stack
        self.cache = cache
        self.database_url = stack.postgres.url(database)
        self.engine = engine  # settings shared by the web process and the workers

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "database_url": self.database_url,
            "redis_url": self.cache.url,
            "worker_in_process": False,
            **self.engine,
            **extra,
        }

    def worker(self, log: Path) -> subprocess.Popen[bytes]:
        """A ``cognitionos worker`` process configured like the web process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.cache.url,
            SECRET_KEY=TEST_SECRET,
            COGNITIONOS_ENV="test",
        )
        for name, value in self.engine.items():
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"COGNITIONOS_{name.upper()}"] = text
        with log.open("ab") as out:  # the child keeps its own descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "cognitionos", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
