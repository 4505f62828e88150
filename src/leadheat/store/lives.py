"""A few leads' whole stories, read straight through the driver for the follow-up state.

:func:`leadheat.store.training.load_everything` reads any number of leads through the ORM,
every column typed and every JSON document decoded. The follow-up state recomputes the few
leads each write touches (an HTTP batch: twenty), where that per-row processing cost more than
the recompute itself. Here each table is one plain query over the leads' indexes, instants
are converted once, and an event's properties are decoded only when the playbook has a rule
that reads them (:meth:`leadheat.playbook.Playbook.points_for`): the history is the one
scoring sees, not the one an export shows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection

from leadheat.playbook import Playbook
from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.store.driver import select_tuples_in
from leadheat.store.fields import COMMON_FIELDS
from leadheat.store.training import Lived
from leadheat.times import from_micros

_UNREAD: Mapping[str, Any] = MappingProxyType({})
"""The properties of an event no playbook rule reads."""


def _document(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def load_lives(connection: Connection, lead_ids: Sequence[int], book: Playbook) -> list[Lived]:
    """These leads (those not merged away), each with its events, evidence, outcomes and
    touches, in :func:`~leadheat.store.training.load_everything`'s order; event properties
    only where ``book`` reads them."""
    wanted = sorted(set(lead_ids))
    columns = ", ".join(f"l.{name}" for name in COMMON_FIELDS)
    leads = select_tuples_in(
        connection,
        f"SELECT l.id, l.created_at, l.attributes, s.status, {columns} FROM leads l "
        "LEFT JOIN lead_states s ON s.lead_id = l.id "
        "WHERE l.merged_into_id IS NULL AND l.id IN",
        wanted,
    )
    ruled = {name for name, signal in book.signals.items() if signal.rules}
    events: dict[int, list[EventRecord]] = defaultdict(list)
    # In order by the index on (lead_id, occurred_at), whose rows end with the event's id
    # (SQLite's rowid); the leads come sorted, so chunk after chunk keeps the order.
    rows = select_tuples_in(
        connection,
        f"SELECT lead_id, type, occurred_at, {'properties' if ruled else 'NULL'} "
        "FROM events WHERE lead_id IN",
        wanted,
        "ORDER BY lead_id, occurred_at, id",
    )
    listed: list[EventRecord] = []
    current = None
    for lead_id, kind, at, properties in rows:
        if lead_id != current:
            current, listed = lead_id, events[lead_id]
        said = (_document(properties) or {}) if kind in ruled else _UNREAD
        listed.append(EventRecord(kind, from_micros(at), said))
    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    for lead_id, kind, value, stated_at, source, _ in sorted(
        select_tuples_in(
            connection,
            "SELECT lead_id, kind, value, stated_at, source, id FROM evidence WHERE lead_id IN",
            wanted,
        ),
        key=lambda row: (row[0], row[5]),
    ):
        evidence[lead_id].append(EvidenceItem(kind, value, from_micros(stated_at), source))
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    for lead_id, outcome, at, reason, _ in sorted(
        select_tuples_in(
            connection,
            "SELECT lead_id, outcome, occurred_at, reason, id FROM outcomes WHERE lead_id IN",
            wanted,
        ),
        key=lambda row: (row[0], row[2], row[4]),
    ):
        outcomes[lead_id].append(OutcomeRecord(outcome, from_micros(at), reason))
    touches: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, at in select_tuples_in(
        connection, "SELECT lead_id, occurred_at FROM touches WHERE lead_id IN", wanted
    ):
        touches[lead_id].append(from_micros(at))
    found = []
    for lead_id, created_at, attributes, status, *common in sorted(leads):
        merged = dict(_document(attributes) or {})
        merged.update(
            (name, value)
            for name, value in zip(COMMON_FIELDS, common, strict=True)
            if value is not None
        )
        found.append(
            Lived(
                lead_id=lead_id,
                created_at=from_micros(created_at),
                history=LeadHistory(merged, events[lead_id], evidence[lead_id], outcomes[lead_id]),
                touches=sorted(touches[lead_id]),
                status=status or "open",
            )
        )
    return found
