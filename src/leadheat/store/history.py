"""Reading a lead's history back, for scoring from scratch, explanations and time travel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.store.driver import chunked
from leadheat.store.leads import lead_attributes
from leadheat.store.models import Event, EvidenceRow, Lead, Outcome, Touch


@dataclass(frozen=True)
class TouchRecord:
    kind: str
    at: datetime
    direction: str
    result: str | None
    rep: str | None


def load_lead(connection: Connection, lead_id: int) -> dict[str, Any]:
    return dict(connection.execute(select(Lead).where(Lead.id == lead_id)).mappings().one())


def load_history(connection: Connection, lead_id: int) -> LeadHistory:
    """Everything scoring reads about one lead, in time order."""
    return load_histories(connection, [lead_id])[lead_id]


def load_histories(
    connection: Connection,
    lead_ids: Sequence[int],
    leads: Mapping[int, Mapping[Any, Any]] | None = None,
) -> dict[int, LeadHistory]:
    """:func:`load_history` of many leads in a few queries (per :data:`CHUNK` leads, one per
    table), not a few per lead: a reaction that alerts on twenty leads of one batch would
    otherwise spend more on building statements than the database spends answering them.

    ``leads`` are their ``leads`` rows when the caller has read them already. Ties in time
    keep the order in which rows were stored.
    """
    histories: dict[int, LeadHistory] = {}
    rows = dict(leads or {})
    for chunk in chunked(sorted(set(lead_ids))):
        missing = [lead_id for lead_id in chunk if lead_id not in rows]
        if missing:
            rows.update(
                (row["id"], row)
                for row in connection.execute(select(Lead).where(Lead.id.in_(missing))).mappings()
            )
        events: dict[int, list[EventRecord]] = defaultdict(list)
        for row in connection.execute(
            select(Event.lead_id, Event.type, Event.occurred_at, Event.properties, Event.event_id)
            .where(Event.lead_id.in_(chunk))
            .order_by(Event.lead_id, Event.occurred_at, Event.id)
        ):
            events[row.lead_id].append(
                EventRecord(row.type, row.occurred_at, row.properties or {}, row.event_id)
            )
        evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
        for row in connection.execute(
            select(EvidenceRow)
            .where(EvidenceRow.lead_id.in_(chunk))
            .order_by(EvidenceRow.lead_id, EvidenceRow.stated_at, EvidenceRow.id)
        ):
            evidence[row.lead_id].append(
                EvidenceItem(row.kind, row.value, row.stated_at, row.source)
            )
        outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
        for row in connection.execute(
            select(Outcome)
            .where(Outcome.lead_id.in_(chunk))
            .order_by(Outcome.lead_id, Outcome.occurred_at, Outcome.id)
        ):
            outcomes[row.lead_id].append(OutcomeRecord(row.outcome, row.occurred_at, row.reason))
        for lead_id in chunk:
            histories[lead_id] = LeadHistory(
                lead_attributes(rows[lead_id]),
                events[lead_id],
                evidence[lead_id],
                outcomes[lead_id],
            )
    return histories


def load_touches(connection: Connection, lead_id: int) -> list[TouchRecord]:
    return [
        TouchRecord(row.kind, row.occurred_at, row.direction, row.result, row.rep)
        for row in connection.execute(
            select(Touch).where(Touch.lead_id == lead_id).order_by(Touch.occurred_at)
        )
    ]


def latest_fact_at(connection: Connection) -> datetime | None:
    """The latest instant of any stored event, outcome or evidence.

    The stored state describes the world as of this instant and after; a question about an
    earlier time is answered from history instead.
    """
    latest = [
        connection.execute(select(func.max(column))).scalar()
        for column in (Event.occurred_at, Outcome.occurred_at, EvidenceRow.stated_at)
    ]
    known = [value for value in latest if value is not None]
    return max(known) if known else None
