"""Dashboard views kept as JSON snapshots (``view_snapshots``): written by the background
refresh, read by every server process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from leadheat.store.models import ViewSnapshot


@dataclass(frozen=True)
class Snapshot:
    """A view as it was at ``computed_at``."""

    name: str
    computed_at: datetime
    body: dict[str, Any]


def save_snapshot(connection: Connection, snapshot: Snapshot) -> None:
    """Replace the view's snapshot (call inside a transaction, so a reader never sees none)."""
    connection.execute(delete(ViewSnapshot).where(ViewSnapshot.name == snapshot.name))
    connection.execute(
        insert(ViewSnapshot).values(
            name=snapshot.name,
            computed_at=snapshot.computed_at,
            body=json.dumps(snapshot.body, separators=(",", ":")),
        )
    )


def prune_snapshots(connection: Connection, prefix: str, keep: int, kept: str) -> int:
    """Delete the snapshots whose names start with ``prefix`` beyond the ``keep`` most
    recently computed, never ``kept`` (the one just stored); how many went."""
    others = connection.execute(
        select(ViewSnapshot.name)
        .where(ViewSnapshot.name.startswith(prefix, autoescape=True), ViewSnapshot.name != kept)
        .order_by(ViewSnapshot.computed_at.desc(), ViewSnapshot.name)
        .offset(max(0, keep - 1))
    ).scalars()
    gone = list(others)
    if gone:
        connection.execute(delete(ViewSnapshot).where(ViewSnapshot.name.in_(gone)))
    return len(gone)


def load_snapshot(connection: Connection, name: str) -> Snapshot | None:
    """The view's latest snapshot, or ``None`` before the first one is computed."""
    row = connection.execute(
        select(ViewSnapshot.computed_at, ViewSnapshot.body).where(ViewSnapshot.name == name)
    ).first()
    if row is None:
        return None
    return Snapshot(name, row.computed_at, json.loads(row.body))
