"""Reading with SQL through a small protocol, :class:`Reader`, that SQLite's own driver
answers as well as a SQLAlchemy connection (:func:`leadheat.store.database.reader_of`).

What ``leadheat show`` reads (one lead, its history, the playbook) is written this way once,
and runs on both: on a SQLite file the command then opens it with the standard library's
``sqlite3`` (:class:`SqliteReader`) and never loads SQLAlchemy, whose import alone costs more
than the whole command should (docs/performance.md, "CLI start").

The SQL is the common part of SQLite's and PostgreSQL's, with ``:name`` parameters (which
both ``sqlite3`` and SQLAlchemy's ``text()`` take). Values come back as the drivers hand them
out: instants as integer microseconds, JSON as text on SQLite and decoded on PostgreSQL
(:func:`json_value` reads both).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self


class Reader(Protocol):
    """Rows of a query, each a dict by column name."""

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name0, :name1, …)`` and its parameters: an ``IN`` list of named parameters, which
    neither driver expands from one."""
    params = {f"{name}{n}": value for n, value in enumerate(values)}
    return f"({', '.join(f':{key}' for key in params)})", params


def json_value(value: Any) -> Any:
    """A JSON column's object or array as read: SQLite's driver hands out the text,
    PostgreSQL's the decoded value (the columns hold objects and arrays, never a bare
    string, so text is always JSON to decode)."""
    return json.loads(value) if isinstance(value, str) else value


class SqliteReader:
    """Reads of one SQLite file through ``sqlite3``, all in one transaction (one snapshot, as
    a SQLAlchemy connection's reads are), on a connection that cannot write.

    The file must exist: ``sqlite3`` would create an empty one.
    """

    def __init__(self, path: str) -> None:
        # the busy timeout is the engine's (leadheat.store.database.make_engine)
        self._connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._connection.execute("PRAGMA query_only = ON")
        self._connection.execute("BEGIN")

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        cursor = self._connection.execute(sql, params or {})
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def close(self) -> None:
        self._connection.close()  # what was read needs no commit

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
