"""Bulk reads and writes straight through the DB-API driver.

Bulk paths (imports, re-scoring) move hundreds of thousands of rows; going through the driver
with plain tuples skips SQLAlchemy's per-row compilation and type processing, which would
otherwise cost more than the database itself. Values are passed as stored: instants as
integer microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Connection

CHUNK = 500
"""Values per ``IN (...)`` query: far below every backend's parameter limit."""

Item = TypeVar("Item")


def chunked(items: Sequence[Item]) -> Iterator[Sequence[Item]]:
    """``items`` in slices of :data:`CHUNK`, for ``IN (...)`` queries."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _native(connection: Connection, sql: str) -> str:
    return sql if connection.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def execute_many(connection: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``executemany`` of ``sql`` (written with ``?`` markers) over ``rows``."""
    if rows:
        connection.exec_driver_sql(_native(connection, sql), list(rows))


def select_all(connection: Connection, sql: str, *parameters: Any) -> list[Any]:
    """Rows of ``sql`` (written with ``?`` markers) as plain tuples."""
    return list(connection.exec_driver_sql(_native(connection, sql), parameters).all())


def select_blocks(
    connection: Connection, sql: str, *parameters: Any, size: int = 100_000
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of ``sql`` in blocks of ``size`` tuples straight from the DB-API cursor: a scan
    of millions of rows is turned into arrays a block at a time, never held as rows whole."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_native(connection, sql), parameters)
        while block := cursor.fetchmany(size):
            yield list(block)
    finally:
        cursor.close()


def select_in(connection: Connection, sql: str, values: Sequence[Any], *before: Any) -> list[Any]:
    """Rows of ``sql``, which ends in ``IN``, for ``values`` in chunks.

    ``before`` are the parameters of any ``?`` markers earlier in ``sql``.
    """
    rows: list[Any] = []
    for chunk in chunked(values):
        query = _native(connection, f"{sql} ({', '.join(['?'] * len(chunk))})")
        rows.extend(connection.exec_driver_sql(query, (*before, *chunk)).all())
    return rows


def select_tuples_in(
    connection: Connection, sql: str, values: Sequence[Any], then: str = ""
) -> list[tuple[Any, ...]]:
    """:func:`select_in` straight from the DB-API cursor: plain tuples, no result row
    object each (reading twenty leads' histories, the rows cost more than the queries).
    ``then``: what follows the ``IN`` list (an ``ORDER BY``: rows in order within each
    :data:`CHUNK` of ``values``)."""
    rows: list[tuple[Any, ...]] = []
    cursor = connection.connection.cursor()
    try:
        for chunk in chunked(values):
            marks = ", ".join(["?"] * len(chunk))
            cursor.execute(_native(connection, f"{sql} ({marks}) {then}"), chunk)
            rows.extend(cursor.fetchall())
    finally:
        cursor.close()
    return rows
