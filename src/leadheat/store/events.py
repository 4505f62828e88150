"""Recording events: each stored once per event id, each folded into its lead's score state.

A batch of any size is one pass: resolve (or create) the leads, insert the events that are
new, fold only those into the heat keys. Re-delivering an event, or a whole file, changes
nothing. The caller owns the transaction, so a failing batch leaves no trace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, insert, update

from leadheat.ingest.keys import LeadKey
from leadheat.playbook import Playbook
from leadheat.scoring.lead import evidence_in
from leadheat.store.leads import create_leads, earliest, find_leads
from leadheat.store.models import EvidenceRow, Lead
from leadheat.store.state import (
    MICRO,
    fold_engagements,
    lock_states,
    note_activity,
    refresh_facts,
)
from leadheat.times import from_micros, to_micros

ROWS_PER_INSERT = 1000


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event as it arrives, already validated at the edge."""

    lead: LeadKey
    type: str
    at: datetime
    event_id: str
    properties: dict[str, Any] | None = None


@dataclass
class RecordReport:
    """What a batch did: what came in, what was new, what was a re-delivery."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    leads_created: int = 0
    lead_ids: set[int] = field(default_factory=set)


def derived_event_id(
    lead: LeadKey, event_type: str, at: datetime, properties: dict[str, Any] | None, seen: int
) -> str:
    """A stable id for an event that came without one: the same row, imported again, gets
    the same id; the ``seen``-th identical row within one file stays distinct.

    >>> from datetime import UTC
    >>> key = LeadKey("email", "a@b.co")
    >>> at = datetime(2024, 1, 1, tzinfo=UTC)
    >>> same = derived_event_id(key, "page_view", at, None, 0)
    >>> same == derived_event_id(key, "page_view", at, {}, 0)
    True
    """
    canonical = json.dumps(
        [lead.kind, lead.value, event_type, to_micros(at), properties or {}, seen],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "d-" + hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def record_events(
    connection: Connection,
    book: Playbook,
    version: int,
    events: Sequence[NewEvent],
    now: datetime,
) -> RecordReport:
    """Store the new events of a batch and fold them into their leads' state."""
    report = RecordReport(received=len(events))
    unique: dict[str, NewEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    batch = list(unique.values())
    lead_ids = _resolve(connection, book, version, batch, now, report)
    lock_states(connection, sorted(set(lead_ids.values())))
    stored = _insert_new(connection, batch, lead_ids)
    report.stored = len(stored)
    report.duplicates = report.received - report.stored
    if not stored:
        return report
    new = [e for e in batch if e.event_id in stored]
    ids = np.fromiter((lead_ids[e.lead] for e in new), dtype=np.int64, count=len(new))
    at_us = np.fromiter((to_micros(e.at) for e in new), dtype=np.int64, count=len(new))
    points = np.fromiter(
        (book.points_for(e.type, e.properties) for e in new), dtype=np.float64, count=len(new)
    )
    half_life = np.fromiter(
        (book.half_life_for(e.type) // MICRO for e in new), dtype=np.int64, count=len(new)
    )
    churn_types = set(book.temperature.churn_events)
    churned = np.fromiter((e.type in churn_types for e in new), dtype=bool, count=len(new))
    engaged = points > 0
    if engaged.any():
        fold_engagements(
            connection, book, ids[engaged], at_us[engaged], points[engaged], half_life[engaged]
        )
    note_activity(connection, ids, at_us, engaged, churned)
    _move_created_at(connection, ids, at_us)
    _record_evidence(connection, book, version, new, lead_ids)
    report.lead_ids = set(ids.tolist())
    return report


def _resolve(
    connection: Connection,
    book: Playbook,
    version: int,
    batch: Sequence[NewEvent],
    now: datetime,
    report: RecordReport,
) -> dict[LeadKey, int]:
    first_seen: dict[LeadKey, datetime] = {}
    for event in batch:
        known = first_seen.get(event.lead)
        if known is None or event.at < known:
            first_seen[event.lead] = event.at
    lead_ids = find_leads(connection, first_seen)
    missing = [key for key in first_seen if key not in lead_ids]
    lead_ids.update(create_leads(connection, missing, first_seen, version, now))
    report.leads_created = len(missing)
    return lead_ids


def _insert_new(
    connection: Connection, batch: Sequence[NewEvent], lead_ids: dict[LeadKey, int]
) -> set[str]:
    """Insert, skipping ids already stored; the ids actually inserted come back."""
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    stored: set[str] = set()
    for start in range(0, len(batch), ROWS_PER_INSERT):
        chunk = batch[start : start + ROWS_PER_INSERT]
        row = f"({marker}, {marker}, {marker}, {marker}, {marker})"
        sql = (
            "INSERT INTO events (event_id, lead_id, type, occurred_at, properties) VALUES "
            + ", ".join([row] * len(chunk))
            + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        params: list[object] = []
        for event in chunk:
            params.extend(
                (
                    event.event_id,
                    lead_ids[event.lead],
                    event.type,
                    to_micros(event.at),
                    None if event.properties is None else json.dumps(event.properties),
                )
            )
        stored.update(r[0] for r in connection.exec_driver_sql(sql, tuple(params)))
    return stored


def _move_created_at(connection: Connection, ids: np.ndarray, at_us: np.ndarray) -> None:
    """A lead is as old as its first event, even one that arrives late."""
    order = np.argsort(ids, kind="stable")
    leads, starts = np.unique(ids[order], return_index=True)
    first = np.minimum.reduceat(at_us[order], starts)
    created = earliest(connection, leads.tolist())
    earlier = [
        {"b_lead": lead, "b_created": from_micros(at)}
        for lead, at in zip(leads.tolist(), first.tolist(), strict=True)
        if at < created[lead]
    ]
    if earlier:
        connection.execute(
            update(Lead)
            .where(Lead.id == bindparam("b_lead"))
            .values(created_at=bindparam("b_created")),
            earlier,
        )


def _record_evidence(
    connection: Connection,
    book: Playbook,
    version: int,
    events: Sequence[NewEvent],
    lead_ids: dict[LeadKey, int],
) -> None:
    rows: list[dict[str, Any]] = []
    for event in events:
        if event.properties:
            for item in evidence_in(event.properties, event.at, book, f"event {event.type}"):
                rows.append(
                    {
                        "lead_id": lead_ids[event.lead],
                        "kind": item.kind,
                        "value": item.value,
                        "stated_at": item.stated_at,
                        "source": item.source,
                    }
                )
    if rows:
        connection.execute(insert(EvidenceRow), rows)
        refresh_facts(connection, book, version, [r["lead_id"] for r in rows])
