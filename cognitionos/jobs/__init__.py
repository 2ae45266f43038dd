"""arq worker: settings, job functions, enqueue helpers."""

from __future__ import annotations

from cognitionos.jobs.worker import create_worker, redis_settings, supervise

__all__ = ["create_worker", "redis_settings", "supervise"]
