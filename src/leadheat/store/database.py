"""Opening a database: engine settings per dialect and migrations to the newest schema."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from leadheat.store.reader import Reader

DEFAULT_URL = "sqlite:///leadheat.db"
MIGRATIONS = Path(__file__).with_name("migrations")


WRITE = "leadheat_write"
"""Execution option of connections that will write (see :func:`writer`)."""


POOL_OPTIONS = {
    "pool_size": int,
    "max_overflow": int,
    "pool_timeout": float,
    "pool_recycle": int,
}
"""Connection pool settings a PostgreSQL URL may carry in its query string, e.g.
``postgresql+psycopg://leadheat@db/leadheat?pool_size=10&max_overflow=5``: one URL sizes the
pool of every ``serve`` and ``worker`` process, whatever starts it."""
START_LOCK = 0x1EAD4EA7
"""The PostgreSQL advisory lock that serialises schema migrations and first set-up, so that
several processes starting at once against one database do not race to create it."""
PLAYBOOK_LOCK = 0x1EAD9B00
"""The PostgreSQL advisory lock between applying a playbook (exclusive) and writes that score
(shared): a write either ends before the new version's re-score begins, or begins after it
committed and sees the new version. (SQLite's write lock already serialises them.)"""


def in_memory(url: str | URL) -> bool:
    """Whether the database lives in this process only (another process cannot open it).

    >>> in_memory("sqlite://"), in_memory("sqlite:///:memory:"), in_memory("sqlite:////tmp/x.db")
    (True, True, False)
    """
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


BUSY_TIMEOUT = 30.0
"""Seconds a SQLite connection waits for a lock another process holds (``sqlite3``'s
``timeout``)."""
LOCK_POLL = (0.0002, 0.002)
"""Seconds between looks at SQLite's write lock while another process holds it: the first,
and the most, growing by half at each look."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout, and transactions
    that begin the way they will end (see :func:`writer`).

    WAL lets readers (the CLI, the API) see a consistent snapshot while an import writes.
    PostgreSQL connections are pooled (sizes from :data:`POOL_OPTIONS` in the URL) and
    checked before use, so a restarted server costs one failed ping, not a failed request.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options: dict[str, Any] = {}
        for name, kind in POOL_OPTIONS.items():
            if name in parsed.query:
                value = parsed.query[name]
                text = value if isinstance(value, str) else value[-1]
                try:
                    options[name] = kind(text)
                except ValueError:
                    raise ValueError(
                        f"database URL: {name}={text!r} is not a number (e.g. {name}=10)"
                    ) from None
        parsed = parsed.difference_update_query(POOL_OPTIONS)
        return create_engine(parsed, pool_pre_ping=True, **options)
    if in_memory(parsed):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        # last in, first out: with writers taking turns (write_transaction), the next one gets
        # the connection the last one used, whose page cache the last commit left valid
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT}, pool_use_lifo=True)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class _ConnectionReader:
    """A :class:`~leadheat.store.reader.Reader` on a SQLAlchemy connection (and whatever
    transaction it is in)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [dict(row) for row in self._connection.execute(text(sql), params or {}).mappings()]


def reader_of(connection: Connection) -> Reader:
    """Reads written over :class:`~leadheat.store.reader.Reader` (a lead's history, the
    current playbook), run on ``connection``."""
    return _ConnectionReader(connection)


def writer(engine: Engine) -> Engine:
    """The engine for transactions that write.

    On SQLite they begin with ``BEGIN IMMEDIATE``, taking the write lock before reading:
    a deferred transaction that reads, then writes after another writer committed, fails at
    once with "database is locked" (the busy timeout cannot help it), which concurrent API
    requests would hit.
    """
    return engine.execution_options(**{WRITE: True})


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
WRITE_LOCK_WAIT = 30.0
"""Seconds a writer waits for its turn in the process before it asks SQLite (and its busy
timeout) anyway: the same as the busy timeout."""


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction on ``engine`` (a :func:`writer`), committed when the block ends.

    On a SQLite file, the threads of one process take turns here first. SQLite has one
    writer at a time; threads that ask it together (an API serving several requests) would
    each wait in its busy handler, which sleeps and polls (1, 2, 5 … 100 ms), so that the
    lock is free long before a sleeper looks again: a batch that takes a few milliseconds
    waited tens. Waiting on a lock instead, each writer starts the moment the previous one
    has committed. Other processes still meet SQLite's busy timeout.
    """
    lock = _write_lock(engine)
    held = lock is not None and lock.acquire(timeout=WRITE_LOCK_WAIT)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        if held and lock is not None:
            lock.release()


def _write_lock(engine: Engine) -> threading.Lock | None:
    """The lock of this process's writers to one SQLite file (``None``: not a SQLite file,
    or an in-memory database, which has one connection anyway)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or in_memory(url):
        return None
    name = str(url.database)  # a file's: in_memory() said so
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(name)
        if lock is None:  # one lock per file, however its name is written
            lock = _WRITE_LOCKS.setdefault(str(Path(name).resolve()), threading.Lock())
            _WRITE_LOCKS[name] = lock
        return lock


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITE, False):
        _begin_immediate(connection.connection.driver_connection)
    else:
        connection.exec_driver_sql("BEGIN")


def _begin_immediate(raw: Any) -> None:
    """``BEGIN IMMEDIATE``, looking again every fraction of a millisecond while another
    process (the follow-up keeper, a CLI command) holds the write lock.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between looks, so a lock held
    3 ms cost a waiting write 8, and one held a third of a second cost it 80 ms more
    (``tests/test_sqlite_lock.py``). The server's writes wait like this whenever the keeper
    stores what it computed. Only this first statement polls; the rest of the transaction
    keeps the busy timeout, for the rare lock a reader meets (the WAL being reset).
    """
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        wait, deadline = LOCK_POLL[0], time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(wait)
            wait = min(wait * 1.5, LOCK_POLL[1])
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is there).

    Alembic is imported here, not at the top: only ``init`` and starting a server migrate,
    and a command that only reads should not pay for loading it."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        hold_start_lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def hold_playbook_lock(connection: Connection, *, exclusive: bool) -> None:
    """Wait for, then hold until this transaction ends, :data:`PLAYBOOK_LOCK` (PostgreSQL):
    ``exclusive`` to apply a playbook, shared to score by the current one."""
    if connection.dialect.name == "postgresql":
        kind = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        cursor = connection.connection.cursor()  # every scoring write: the driver's own cursor
        try:
            cursor.execute(f"SELECT {kind}({PLAYBOOK_LOCK})")
        finally:
            cursor.close()


def hold_start_lock(connection: Connection) -> None:
    """Wait for, then hold until this transaction ends, :data:`START_LOCK` (PostgreSQL;
    SQLite's write lock already serialises)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({START_LOCK})")


def is_initialised(engine: Engine) -> bool:
    return inspect(engine).has_table("playbook_versions")


class MergedMeanwhileError(Exception):
    """A lead a write found was merged into another by a transaction that committed while
    the write waited for its lock (PostgreSQL); the write runs again and finds the lead it
    went to (:meth:`leadheat.core.Core.write` retries it as a lost race)."""
