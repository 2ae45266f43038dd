"""``cognitionos``: serve | worker | migrate | users | memory | schema."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from cognitionos.config import ConfigError, Settings
from cognitionos.embedded import DataDirInUseError, EmbeddedServices, start_embedded
from cognitionos.observability import configure_logging, get_logger

__all__ = ["main"]

app = typer.Typer(help="CognitionOS: real-time AI orchestration server.", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
memory_app = typer.Typer(help="Maintain agent memory.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
log = get_logger("cognitionos.cli")


def _settings(**overrides: object) -> Settings:
    settings = Settings()
    clean = {k: v for k, v in overrides.items() if v is not None}
    if clean:
        settings = settings.model_copy(update=clean)
    as_json = settings.log_json if settings.log_json is not None else not sys.stdout.isatty()
    configure_logging(level=settings.log_level, json=as_json)
    return settings


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _check_sql_role(settings: Settings) -> None:
    """Refuse to start when SQL steps would run as a role that reaches too much
    (``UnsafeSqlRole``, a ``ConfigError``). Unreachable now: the first SQL step checks."""
    url = settings.sql_step_database_url
    if not url:
        return
    from cognitionos.services.workflows import SqlPool, UnsafeSqlRole

    async def check() -> None:
        pool = SqlPool(url, size=1)
        try:
            await pool.verify()
        finally:
            await pool.aclose()

    try:
        asyncio.run(check())
    except UnsafeSqlRole:
        raise
    except Exception as exc:
        log.warning("could not check the SQL steps' role yet", error=str(exc))


def _with_database(settings: Settings) -> tuple[Settings, EmbeddedServices | None]:
    """Commands other than serve attach to (or start) the embedded PostgreSQL only."""
    if settings.database_url:
        return settings, None
    if settings.is_production:
        raise _fail("DATABASE_URL is not set (production never starts embedded services)")
    return start_embedded(settings, redis=False, lock=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
) -> None:
    """Start the server. With no DATABASE_URL/REDIS_URL: embedded services + worker."""
    import uvicorn

    from cognitionos.app import create_app, server_config
    from cognitionos.db import migrate

    settings = _settings(host=host, port=port)
    embedded: EmbeddedServices | None = None
    try:
        settings.check_production()
        if settings.embedded:
            settings, embedded = start_embedded(settings)
            for what in embedded.started:
                log.info("embedded service started", service=what)
            log.info("data directory", path=str(settings.data_dir))
        settings = settings.with_dev_secret()
        assert settings.database_url is not None
        migrate(settings.database_url)
        _check_sql_role(settings)
        asgi = create_app(settings)
    except (ConfigError, DataDirInUseError) as exc:
        if embedded is not None:
            embedded.stop()
        raise _fail(str(exc)) from None
    where = f"http://{settings.host}:{settings.port}"
    if settings.graphiql:
        log.info("GraphiQL ready", url=f"{where}/graphql")
    log.info(
        "serving",
        url=where,
        env=settings.env.value,
        worker="in-process" if settings.run_worker_in_process else "separate",
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; end with a
    # clean exit instead, so the embedded services below are stopped too.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        server = uvicorn.Server(server_config(asgi))
        server.run()
    finally:
        if embedded is not None:
            embedded.stop()
    if not server.started:  # the port was taken, or the lifespan failed
        raise typer.Exit(code=3)


@app.command()
def worker() -> None:
    """Run the arq worker (production: a separate process per replica)."""
    settings = _settings()
    try:
        settings.check_production()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not settings.database_url or not settings.redis_url:
        raise _fail(
            "set DATABASE_URL and REDIS_URL to run a separate worker; "
            "in the embedded mode `cognitionos serve` runs the worker in-process"
        )
    try:
        _check_sql_role(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    from cognitionos.runtime import run_worker

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Apply database migrations (the release step)."""
    from cognitionos.db import migrate as run_migrations

    settings, embedded = _with_database(_settings())
    try:
        assert settings.database_url is not None
        run_migrations(settings.database_url)
        typer.echo("migrations applied")
    finally:
        if embedded is not None:
            embedded.stop()


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="The user's email (login).")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the ADMIN role.")] = False,
    role: Annotated[str, typer.Option(help="ADMIN, MEMBER or VIEWER.")] = "MEMBER",
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a user. The password is prompted for, or read from stdin when piped."""
    from cognitionos.db import create_engine, create_sessionmaker
    from cognitionos.db import migrate as run_migrations
    from cognitionos.db.models import Role
    from cognitionos.services.auth import AccountPolicy, ClientInfo, create_user
    from cognitionos.services.errors import CognitionError

    try:
        chosen = Role.ADMIN if admin else Role(role.upper())
    except ValueError:
        raise _fail(f"unknown role {role!r}; use ADMIN, MEMBER or VIEWER") from None
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings, embedded = _with_database(_settings())

    async def run() -> str:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                user = await create_user(
                    session,
                    policy=AccountPolicy(
                        bcrypt_rounds=settings.bcrypt_rounds,
                        password_min_length=settings.password_min_length,
                    ),
                    email=email,
                    password=password,
                    full_name=full_name,
                    role=chosen,
                    client=ClientInfo(user_agent="cognitionos-cli"),
                )
                return f"created {user.role.value} {user.email} ({user.id})"
        finally:
            await engine.dispose()

    try:
        assert settings.database_url is not None
        run_migrations(settings.database_url)
        typer.echo(asyncio.run(run()))
    except CognitionError as exc:
        raise _fail(exc.message) from None
    finally:
        if embedded is not None:
            embedded.stop()


def _bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    percent = 100 * done // total if total else 100
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {percent}%{end}")
    sys.stderr.flush()


@memory_app.command("reembed")
def reembed_memories(
    batch: Annotated[int, typer.Option(help="Memories embedded per batch.")] = 256,
) -> None:
    """Re-embed every memory with the configured embedder and dimension (resumable)."""
    from cognitionos.db import create_engine, create_sessionmaker
    from cognitionos.db import migrate as run_migrations
    from cognitionos.services.memory import build_embedder
    from cognitionos.services.memory.reembed import reembed

    settings, embedded = _with_database(_settings())

    async def run() -> int:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=2)
        try:
            embedder = build_embedder(settings)
            return await reembed(create_sessionmaker(engine), embedder, batch=batch, progress=_bar)
        finally:
            await engine.dispose()

    try:
        assert settings.database_url is not None
        run_migrations(settings.database_url)
        done = asyncio.run(run())
        typer.echo(f"re-embedded {done} memories")
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        if embedded is not None:
            embedded.stop()


@app.command("schema")
def export_schema(
    output: Annotated[Path | None, typer.Option(help="Write the SDL here.")] = None,
) -> None:
    """Print the GraphQL schema (SDL)."""
    from cognitionos.web.schema import build_schema

    sdl = build_schema(Settings(introspection=True)).as_str() + "\n"
    if output is None:
        typer.echo(sdl, nl=False)
    else:
        output.write_text(sdl)


def main() -> None:
    app()
