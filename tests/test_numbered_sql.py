"""Hand-written statements sent straight to asyncpg: ``:name`` parameters become ``$n``
once, casts and literals are left alone, and the rows come back from a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

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
