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


def load_snapshot(connection: Connection, name: str) -> Snapshot | None:
    """The view's latest snapshot, or ``None`` before the first one is computed."""
    row = connection.execute(
        select(ViewSnapshot.computed_at, ViewSnapshot.body).where(ViewSnapshot.name == name)
    ).first()
    if row is None:
        return None
    return Snapshot(name, row.computed_at, json.loads(row.body))
