"""Playbook versions: every applied playbook is kept, and every score names its version."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from leadheat.playbook import Playbook, parse_playbook
from leadheat.store.reader import Reader
from leadheat.times import from_micros

if TYPE_CHECKING:
    from sqlalchemy import Connection

# SQLAlchemy and the tables are imported by the functions that write or list versions: reading
# the current one is SQL over a Reader, which `leadheat show` runs on SQLite's own driver.


@dataclass(frozen=True)
class StoredPlaybook:
    version: int
    playbook: Playbook
    source: str
    applied_at: datetime


def current_playbook(reader: Reader) -> StoredPlaybook | None:
    rows = reader.rows(
        "SELECT version, source, applied_at FROM playbook_versions ORDER BY version DESC LIMIT 1"
    )
    if not rows:
        return None
    [row] = rows
    return StoredPlaybook(
        row["version"],
        parse_playbook(row["source"], f"playbook version {row['version']}"),
        row["source"],
        from_micros(row["applied_at"]),
    )


def current_version(connection: Connection) -> int | None:
    """The newest version's number: one look at the primary key's index, cheap enough for
    every write transaction to ask whether the playbook it scores by is still the current
    (on the driver's own cursor: SQLAlchemy's layers cost thirty times the look itself)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute("SELECT max(version) FROM playbook_versions")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row is not None and row[0] is not None else None


def add_version(connection: Connection, source: str, now: datetime) -> int:
    """Store a validated playbook as the next version and return its number."""
    from sqlalchemy import func, insert, select

    from leadheat.store.models import PlaybookVersion

    book = parse_playbook(source)
    version = (connection.execute(select(func.max(PlaybookVersion.version))).scalar() or 0) + 1
    connection.execute(
        insert(PlaybookVersion).values(
            version=version,
            name=book.name,
            source=source,
            sha256=hashlib.sha256(source.encode()).hexdigest(),
            applied_at=now,
        )
    )
    return version


def history(connection: Connection) -> list[tuple[int, str, datetime, str]]:
    """``(version, name, applied_at, sha256)``, oldest first."""
    from sqlalchemy import select

    from leadheat.store.models import PlaybookVersion

    return [
        (row.version, row.name, row.applied_at, row.sha256)
        for row in connection.execute(
            select(
                PlaybookVersion.version,
                PlaybookVersion.name,
                PlaybookVersion.applied_at,
                PlaybookVersion.sha256,
            ).order_by(PlaybookVersion.version)
        )
    ]
