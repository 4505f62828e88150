"""Finding, creating and merging leads by their identities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, tuple_, update

from leadheat.ingest.keys import LeadKey
from leadheat.store.models import (
    COMMON_FIELDS,
    Event,
    EvidenceRow,
    HeatKeyRow,
    Identity,
    Lead,
    LeadState,
    Outcome,
    Touch,
)
from leadheat.times import to_micros

CHUNK = 500
"""Keys per ``IN (...)`` query: far below every backend's parameter limit."""


def find_leads(connection: Connection, keys: Iterable[LeadKey]) -> dict[LeadKey, int]:
    """Lead ids for the keys that are known, following merges to the surviving lead."""
    wanted = list(dict.fromkeys(keys))
    found: dict[LeadKey, int] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = connection.execute(
            select(Identity.kind, Identity.value, Identity.lead_id).where(
                tuple_(Identity.kind, Identity.value).in_([(k.kind, k.value) for k in chunk])
            )
        )
        for kind, value, lead_id in rows:
            found[LeadKey(kind, value)] = lead_id
    return found


def create_leads(
    connection: Connection,
    keys: Sequence[LeadKey],
    created_at: Mapping[LeadKey, datetime],
    playbook_version: int,
    now: datetime,
) -> dict[LeadKey, int]:
    """New leads, one per key, each with its identity and an empty score state."""
    rows = [
        {
            "attributes": {},
            "created_at": created_at[key],
            "updated_at": now,
            "email": key.value if key.kind == "email" else None,
            "external_id": key.value if key.kind == "external" else None,
        }
        for key in keys
    ]
    ids: dict[LeadKey, int] = {}
    if rows:
        returned = connection.execute(
            insert(Lead).returning(Lead.id, sort_by_parameter_order=True), rows
        )
        ids = dict(zip(keys, returned.scalars(), strict=True))
    if ids:
        connection.execute(
            insert(Identity),
            [{"kind": k.kind, "value": k.value, "lead_id": i} for k, i in ids.items()],
        )
        connection.execute(
            insert(LeadState),
            [
                {
                    "lead_id": i,
                    "playbook_version": playbook_version,
                    "fit": 0.0,
                    "qualified": False,
                    "status": "open",
                    "events_count": 0,
                }
                for i in ids.values()
            ],
        )
    return ids


def add_identity(connection: Connection, lead_id: int, key: LeadKey) -> None:
    """Recognise ``lead_id`` by one more key (the caller checked it is free)."""
    connection.execute(insert(Identity).values(kind=key.kind, value=key.value, lead_id=lead_id))
    column = {"email": "email", "external": "external_id"}.get(key.kind)
    if column:
        connection.execute(
            update(Lead)
            .where(Lead.id == lead_id, getattr(Lead, column).is_(None))
            .values({column: key.value})
        )


def lead_attributes(row: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes fit rules see: the common columns merged over the JSON attributes."""
    merged = dict(row["attributes"] or {})
    for field in COMMON_FIELDS:
        if row[field] is not None:
            merged[field] = row[field]
    return merged


def split_attributes(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Common columns and the rest (which go to the JSON ``attributes``)."""
    common = {k: v for k, v in values.items() if k in COMMON_FIELDS}
    rest = {k: v for k, v in values.items() if k not in COMMON_FIELDS}
    return common, rest


def merge_leads(connection: Connection, keep: int, absorb: int, now: datetime) -> None:
    """Fold lead ``absorb`` into ``keep``: identities, events, touches, outcomes and evidence
    move; attributes ``keep`` lacks are filled from ``absorb``. The caller re-scores ``keep``.
    """
    if keep == absorb:
        return
    for table in (Identity, Event, Touch, Outcome, EvidenceRow):
        connection.execute(update(table).where(table.lead_id == absorb).values(lead_id=keep))
    rows = {
        row.id: row._mapping
        for row in connection.execute(select(Lead).where(Lead.id.in_([keep, absorb])))
    }
    kept, absorbed = rows[keep], rows[absorb]
    filled = {f: absorbed[f] for f in COMMON_FIELDS if kept[f] is None and absorbed[f] is not None}
    attributes = {**(absorbed["attributes"] or {}), **(kept["attributes"] or {})}
    born = min(kept["created_at"], absorbed["created_at"])
    connection.execute(
        update(Lead)
        .where(Lead.id == keep)
        .values(**filled, attributes=attributes, created_at=born, updated_at=now)
    )
    connection.execute(delete(HeatKeyRow).where(HeatKeyRow.lead_id == absorb))
    connection.execute(delete(LeadState).where(LeadState.lead_id == absorb))
    connection.execute(
        update(Lead).where(Lead.id == absorb).values(merged_into_id=keep, updated_at=now)
    )
    connection.execute(
        update(Lead).where(Lead.merged_into_id == absorb).values(merged_into_id=keep)
    )


def earliest(connection: Connection, lead_ids: Sequence[int]) -> dict[int, int]:
    """``created_at`` (microseconds) of each lead, for moving it earlier on late history."""
    found: dict[int, int] = {}
    for start in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[start : start + CHUNK]
        for lead_id, created in connection.execute(
            select(Lead.id, Lead.created_at).where(Lead.id.in_(chunk))
        ):
            found[lead_id] = to_micros(created)
    return found
