"""Database: engine and session factory, ORM models, Alembic migrations."""

from __future__ import annotations

from cognitionos.db.base import Base
from cognitionos.db.engine import create_engine, create_reader, create_sessionmaker, migrate

__all__ = ["Base", "create_engine", "create_reader", "create_sessionmaker", "migrate"]
