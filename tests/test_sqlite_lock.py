"""SQLite's write lock held by another process (the follow-up keeper, a CLI command): a
write waits for it and starts as soon as it is free, and gives up after the busy timeout."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from leadheat.store import database
from leadheat.store.database import make_engine, write_transaction, writer

HELD = 0.35
"""Seconds the other connection holds the lock: long enough that SQLite's own busy handler
sleeps 25 to 100 ms between looks."""


def _engine(tmp_path: Path) -> tuple[str, Engine]:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    return str(path), engine


def _held_then_freed(path: str, seconds: float) -> tuple[threading.Thread, list[float]]:
    """A connection of its own (as another process's) holds the write lock for ``seconds``;
    the list gets the instant it let go."""
    freed: list[float] = []
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        freed.append(time.monotonic())
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(5)
    return thread, freed


def test_a_write_starts_as_soon_as_the_lock_is_free(tmp_path: Path) -> None:
    path, engine = _engine(tmp_path)
    gaps = []
    for _ in range(5):
        thread, freed = _held_then_freed(path, HELD)
        with write_transaction(writer(engine)) as connection:
            started = time.monotonic()
            connection.execute(text("INSERT INTO t VALUES (1)"))
        thread.join()
        gaps.append(started - freed[0])
    assert statistics.median(gaps) < 0.03, gaps  # polled, not slept on for up to 100 ms
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 5
        # the rest of a transaction keeps the busy timeout
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000


def test_a_write_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, engine = _engine(tmp_path)
    monkeypatch.setattr(database, "BUSY_TIMEOUT", 0.2)
    thread, _ = _held_then_freed(path, 1.5)
    started = time.monotonic()
    with (
        pytest.raises(Exception, match="database is locked"),
        write_transaction(writer(engine)) as connection,
    ):
        connection.execute(text("INSERT INTO t VALUES (1)"))
    assert time.monotonic() - started < 1.2  # its own deadline, not the other's release
    thread.join()
    with write_transaction(writer(engine)) as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))  # the lock is free again
