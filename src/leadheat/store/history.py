"""Reading a lead's history back, for scoring from scratch, explanations and time travel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
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
    lead = load_lead(connection, lead_id)
    events = [
        EventRecord(row.type, row.occurred_at, row.properties or {}, row.event_id)
        for row in connection.execute(
            select(Event.type, Event.occurred_at, Event.properties, Event.event_id)
            .where(Event.lead_id == lead_id)
            .order_by(Event.occurred_at, Event.id)
        )
    ]
    evidence = [
        EvidenceItem(row.kind, row.value, row.stated_at, row.source)
        for row in connection.execute(
            select(EvidenceRow)
            .where(EvidenceRow.lead_id == lead_id)
            .order_by(EvidenceRow.stated_at)
        )
    ]
    outcomes = [
        OutcomeRecord(row.outcome, row.occurred_at, row.reason)
        for row in connection.execute(
            select(Outcome).where(Outcome.lead_id == lead_id).order_by(Outcome.occurred_at)
        )
    ]
    return LeadHistory(lead_attributes(lead), events, evidence, outcomes)


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
