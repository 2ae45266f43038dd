"""Hand-written statements sent straight to asyncpg: ``:name`` parameters become ``$n``
once, casts and literals are left alone, and the rows come back from a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from cognitionos.db import create_engine, create_reader
from cognitionos.db.rows import fetch_numbered, numbered
from tests.conftest import Stack


def test_named_parameters_become_numbers_once_and_casts_stay() -> None:
    statement = numbered(
        "SELECT :a::text, CAST(:b AS int[]), :a || ':not_a_parameter', x::float8 FROM t "
        "WHERE y = :b_2"
    )
    assert statement.sql == (
        "SELECT $1::text, CAST($2 AS int[]), $1 || ':not_a_parameter', x::float8 FROM t "
        "WHERE y = $3"
    )
    assert statement.names == ("a", "b", "b_2")
    assert numbered("SELECT :a") is numbered("SELECT :a")  # converted once


def test_a_numbered_statement_runs_on_the_sessions_connection(stack: Stack) -> None:
    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(stack.database_url, pool_size=1)
        try:
            async with create_reader(engine)() as session:
                rows = await fetch_numbered(
                    session,
                    numbered(
                        "SELECT :word::text || '!' AS said, :n::int * 2 AS twice, :id::uuid, "
                        "jsonb_build_object('k', :word::text) AS doc"
                    ),
                    {"word": "hi", "n": 21, "id": uuid.UUID(int=7), "unused": 1},
                )
            return [tuple(r) for r in rows]
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == [("hi!", 42, uuid.UUID(int=7), {"k": "hi"})]


def test_a_connection_that_died_is_not_handed_out_again(stack: Stack) -> None:
    """A statement sent past SQLAlchemy still lets the pool drop a dead connection: the
    call that meets it fails, the next one gets a new connection."""

    async def run() -> list[str]:
        engine = create_engine(stack.database_url, pool_size=1, pre_ping=False)
        reader = create_reader(engine)
        who = numbered("SELECT pg_backend_pid()")
        said = []
        try:
            async with reader() as session:
                pid = (await fetch_numbered(session, who, {}))[0][0]
            killer = await asyncpg.connect(stack.dsn)
            await killer.execute("SELECT pg_terminate_backend($1)", pid)
            await killer.close()
            for _ in range(2):
                try:
                    async with reader() as session:
                        again = (await fetch_numbered(session, who, {}))[0][0]
                    said.append("same" if again == pid else "new")
                except Exception as error:  # the call that meets the dead connection
                    said.append(type(error).__name__)
            return said
        finally:
            await engine.dispose()

    said = asyncio.run(run())
    assert said[-1] == "new", said
