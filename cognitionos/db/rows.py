"""Plain rows for read paths that only show what they load.

Loading an ORM instance costs about 10 µs (identity map, instance state, instrumented
attributes on every read), and an ORM statement's compile step about as much again; a
page of 20 executions with their steps loads 81 rows in three statements, a fifth of the
request's CPU (``bench/http_requests.py``). ``plain_select(Model)`` selects the model's
table columns instead (filter it on ``Model.__table__.c``, not on the ORM attributes).
The rows answer the same attribute names as the model (``row.extra``, not the column's
``metadata``) and are read-only, which is all a GraphQL read needs. Paths that change
rows keep loading instances.
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import ARRAY, Result, Select, inspect, select, type_coerce
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

__all__ = ["Numbered", "fetch_numbered", "numbered", "plain_rows", "plain_select"]

M = TypeVar("M")


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_SHAPES: dict[str, tuple[tuple[Any, ...], Any]] = {}  # model name -> (columns, row type)


def _shape(model: type[Any]) -> tuple[tuple[Any, ...], Any]:
    shape = _SHAPES.get(model.__name__)
    if shape is None:
        attrs = inspect(model).column_attrs
        # Table columns labelled with the attribute names, not the ORM attributes (nor
        # ``attr.columns``, ORM-annotated copies): the statement then skips the ORM's
        # compile and loading steps, which cost as much as the rows.
        table = model.__table__
        columns = tuple(
            _unprocessed(table.c[attr.columns[0].name]).label(attr.key) for attr in attrs
        )
        # A named tuple reads an attribute about ten times faster than a SQLAlchemy Row.
        row = namedtuple(f"{model.__name__}Row", [attr.key for attr in attrs])  # type: ignore[misc]
        shape = _SHAPES[model.__name__] = (columns, row)
    return shape


def _unprocessed(column: Any) -> Any:
    # asyncpg already answers a text[] as a list: SQLAlchemy's ARRAY would copy it again.
    if (
        isinstance(column.type, ARRAY)
        and column.type.item_type.result_processor(_DIALECT, None) is None
    ):
        return type_coerce(column, NullType())
    return column


def plain_select(model: type[Any]) -> Select[Any]:
    """``select(model)`` as rows of the model's attributes, without ORM instances."""
    return select(*_shape(model)[0])


def plain_rows(result: Result[Any], model: type[M]) -> Sequence[M]:
    """The rows of a ``plain_select(model)``, typed as the read-only shape of ``model``."""
    make = _shape(model)[1]._make
    return cast(Sequence[M], [make(row) for row in result])


# -- Hand-written statements, straight to the driver -------------------------------------
#
# A long hand-written statement (search's) through ``session.execute(text(sql))`` costs its
# text parse on every call and SQLAlchemy's result machinery on every row. ``numbered``
# turns its ``:name`` parameters into asyncpg's ``$n`` once per statement, and
# ``fetch_numbered`` runs it on the session's connection, through asyncpg's own prepared
# statement cache: asyncpg records, which read like tuples.

# A quoted literal (kept as it is) or a ``:name`` that is not part of a ``::type`` cast.
_PARAMETER = re.compile(r"('(?:[^']|'')*')|(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Numbered:
    sql: str  # with $1, $2, ...
    names: tuple[str, ...]  # the parameter each number stands for


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> Numbered:
    """``sql`` with its ``:name`` parameters as ``$n`` (``::type`` casts and quoted literals
    are left alone)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        literal, name = match.groups()
        if literal is not None:
            return literal
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Numbered(_PARAMETER.sub(number, sql), tuple(names))


async def fetch_numbered(
    session: AsyncSession, statement: Numbered, params: Mapping[str, Any]
) -> list[Any]:
    """The rows of ``statement`` with ``params``, on ``session``'s connection: for a
    reader (autocommit) session's one statement.

    Past SQLAlchemy, a connection that died is not noticed by the pool: it is invalidated
    here, so the call that met it fails and the next one gets a new connection (SQLAlchemy
    would also retire every older pooled connection; here each one that died fails once).
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        rows: list[Any] = await driver.fetch(statement.sql, *[params[n] for n in statement.names])
    except Exception as error:
        if driver.is_closed():
            await connection.invalidate(error)
        raise
    return rows
