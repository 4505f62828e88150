"""Suggested merges: two leads that public collection says are one person, kept for a person
(or a secret key) to confirm or dismiss.

A publishable key sits in a web page, so anyone can send what it sends. Stitching an
anonymous visitor to a lead is safe; merging two leads that each already have an email or an
external id on such a word alone is not (``track`` as ``userId: "x"``, then ``identify`` ``x``
with someone else's email would fold their lead into one the sender made). Those pairs are
recorded here instead, one open suggestion per pair.

>>> from datetime import UTC, datetime
>>> from sqlalchemy import create_engine, insert
>>> from leadheat.store.models import Base, Lead
>>> engine = create_engine("sqlite://")
>>> Base.metadata.create_all(engine)
>>> now = datetime(2026, 11, 1, tzinfo=UTC)
>>> with engine.begin() as connection:
...     _ = connection.execute(insert(Lead), [
...         {"id": i, "attributes": {}, "created_at": now, "updated_at": now} for i in (1, 2)])
...     suggest(connection, [(2, 1, "identify named both")], "api:3f9a0c1d", now)
...     suggest(connection, [(1, 2, "again, the other way")], "api:3f9a0c1d", now)
...     [(s.lead_id, s.into_lead_id, s.status) for s in list_suggestions(connection)]
[(1, 2, 1)]
[]
[(2, 1, 'open')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from leadheat.store.models import SuggestedMerge

STATUSES = ("open", "confirmed", "dismissed")


@dataclass(frozen=True)
class Suggestion:
    """One suggested merge: ``lead_id`` would be merged into ``into_lead_id``."""

    id: int
    lead_id: int
    into_lead_id: int
    reason: str
    source: str
    created_at: datetime
    status: str
    resolved_at: datetime | None
    resolved_by: str | None


def _suggestion(row: Any) -> Suggestion:
    return Suggestion(
        row.id,
        row.lead_id,
        row.into_lead_id,
        row.reason,
        row.source,
        row.created_at,
        row.status,
        row.resolved_at,
        row.resolved_by,
    )


def suggest(
    connection: Connection,
    pairs: Sequence[tuple[int, int, str]],
    source: str,
    now: datetime,
) -> list[tuple[int, int, int]]:
    """Record ``(lead_id, into_lead_id, reason)`` suggestions, except for pairs (either way
    round) that already have an open one; returns ``(id, lead_id, into_lead_id)`` of each
    new one."""
    ids: list[tuple[int, int, int]] = []
    for lead_id, into, reason in pairs:
        if lead_id == into:
            continue
        pending = connection.execute(
            select(SuggestedMerge.id).where(
                SuggestedMerge.status == "open",
                or_(
                    (SuggestedMerge.lead_id == lead_id) & (SuggestedMerge.into_lead_id == into),
                    (SuggestedMerge.lead_id == into) & (SuggestedMerge.into_lead_id == lead_id),
                ),
            )
        ).first()
        if pending is not None:
            continue
        created = connection.execute(
            insert(SuggestedMerge)
            .values(
                lead_id=lead_id,
                into_lead_id=into,
                reason=reason,
                source=source,
                created_at=now,
                status="open",
            )
            .returning(SuggestedMerge.id)
        ).scalar_one()
        ids.append((created, lead_id, into))
    return ids


def list_suggestions(
    connection: Connection,
    *,
    status: str | None = "open",
    lead_id: int | None = None,
    limit: int = 100,
) -> list[Suggestion]:
    """Suggestions, newest first: of one status (``None``: all), optionally only those that
    name ``lead_id`` on either side."""
    query = select(SuggestedMerge).order_by(SuggestedMerge.id.desc()).limit(limit)
    if status is not None:
        query = query.where(SuggestedMerge.status == status)
    if lead_id is not None:
        query = query.where(
            or_(SuggestedMerge.lead_id == lead_id, SuggestedMerge.into_lead_id == lead_id)
        )
    return [_suggestion(row) for row in connection.execute(query)]


def find_suggestion(connection: Connection, suggestion_id: int) -> Suggestion | None:
    row = connection.execute(
        select(SuggestedMerge).where(SuggestedMerge.id == suggestion_id)
    ).first()
    return _suggestion(row) if row is not None else None


def resolve(
    connection: Connection, suggestion_id: int, status: str, actor: str, now: datetime
) -> bool:
    """Close an open suggestion as ``confirmed`` or ``dismissed``; ``False`` when there is no
    open suggestion with that id."""
    if status not in STATUSES[1:]:
        raise ValueError(f"status {status!r} must be confirmed or dismissed")
    done = connection.execute(
        update(SuggestedMerge)
        .where(SuggestedMerge.id == suggestion_id, SuggestedMerge.status == "open")
        .values(status=status, resolved_at=now, resolved_by=actor)
    )
    return done.rowcount == 1


def follow_merge(connection: Connection, keep: int, absorb: int, now: datetime) -> None:
    """Lead ``absorb`` was merged into ``keep``: its suggestions now name ``keep``, and an
    open one between the two is settled (the merge it suggested happened)."""
    for column in ("lead_id", "into_lead_id"):
        connection.execute(
            update(SuggestedMerge)
            .where(getattr(SuggestedMerge, column) == absorb)
            .values({column: keep})
        )
    connection.execute(
        update(SuggestedMerge)
        .where(
            SuggestedMerge.status == "open",
            SuggestedMerge.lead_id == SuggestedMerge.into_lead_id,
        )
        .values(status="confirmed", resolved_at=now, resolved_by="merge")
    )
