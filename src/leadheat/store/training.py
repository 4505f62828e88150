"""Reading the store's history for the predictive model, and keeping the trained models as
numbered versions.

History is read in bulk (one query per table, grouped in memory); ``predict/examples.py`` cuts
each lead's at its decision time before the feature builder sees it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select, update

from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.store.driver import execute_many
from leadheat.store.fields import lead_attributes
from leadheat.store.models import (
    Event,
    EvidenceRow,
    Lead,
    LeadState,
    Outcome,
    PredictionModel,
    Touch,
)
from leadheat.times import to_micros


@dataclass(frozen=True)
class Lived:
    """One lead's whole story, as stored."""

    lead_id: int
    created_at: datetime
    history: LeadHistory
    touches: list[datetime]
    status: str


FEW = 500
"""Up to this many leads, :func:`load_everything` reads only their rows (by index)."""


def load_everything(connection: Connection, lead_ids: Sequence[int] | None = None) -> list[Lived]:
    """Every lead (or these) with its events, evidence, outcomes and touches."""
    leads = select(Lead).where(Lead.merged_into_id.is_(None))
    if lead_ids is not None:
        leads = leads.where(Lead.id.in_(list(lead_ids)))
    rows = list(connection.execute(leads.order_by(Lead.id)).mappings())
    wanted = {row["id"] for row in rows}
    few = lead_ids is not None and len(wanted) <= FEW

    def about(column: Any) -> list[ColumnElement[bool]]:
        """A few leads' rows are found by their index; many, by one scan of the table."""
        return [column.in_(sorted(wanted))] if few else []

    events: dict[int, list[EventRecord]] = defaultdict(list)
    for lead_id, kind, at, properties in connection.execute(
        select(Event.lead_id, Event.type, Event.occurred_at, Event.properties)
        .where(*about(Event.lead_id))
        .order_by(Event.lead_id, Event.occurred_at, Event.id)
    ):
        if lead_id in wanted:
            events[lead_id].append(EventRecord(kind, at, properties or {}))
    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    for row in connection.execute(
        select(EvidenceRow).where(*about(EvidenceRow.lead_id)).order_by(EvidenceRow.id)
    ):
        if row.lead_id in wanted:
            evidence[row.lead_id].append(
                EvidenceItem(row.kind, row.value, row.stated_at, row.source)
            )
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    outcome_rows = (
        select(Outcome).where(*about(Outcome.lead_id)).order_by(Outcome.occurred_at, Outcome.id)
    )
    for done in connection.execute(outcome_rows):
        if done.lead_id in wanted:
            record = OutcomeRecord(done.outcome, done.occurred_at, done.reason)
            outcomes[done.lead_id].append(record)
    touches: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, at in connection.execute(
        select(Touch.lead_id, Touch.occurred_at).where(*about(Touch.lead_id))
    ):
        if lead_id in wanted:
            touches[lead_id].append(at)
    status = {
        int(lead_id): str(state)
        for lead_id, state in connection.execute(
            select(LeadState.lead_id, LeadState.status).where(*about(LeadState.lead_id))
        )
    }
    return [
        Lived(
            lead_id=row["id"],
            created_at=row["created_at"],
            history=LeadHistory(
                lead_attributes(row), events[row["id"]], evidence[row["id"]], outcomes[row["id"]]
            ),
            touches=sorted(touches[row["id"]]),
            status=status.get(row["id"], "open"),
        )
        for row in rows
    ]


def store_model(
    connection: Connection,
    *,
    trained_at: datetime,
    horizon: timedelta,
    playbook_version: int,
    rows: int,
    positives: int,
    censored: int,
    event_types: Sequence[str],
    evaluation: dict[str, Any],
    document: str,
) -> int:
    version = (
        int(
            connection.execute(
                select(PredictionModel.version).order_by(PredictionModel.version.desc()).limit(1)
            ).scalar_one_or_none()
            or 0
        )
        + 1
    )
    connection.execute(
        insert(PredictionModel).values(
            version=version,
            trained_at=trained_at,
            horizon_us=horizon // timedelta(microseconds=1),
            playbook_version=playbook_version,
            rows=rows,
            positives=positives,
            censored=censored,
            event_types=list(event_types),
            evaluation=evaluation,
            document=document,
        )
    )
    return version


def latest_model(connection: Connection) -> Any:
    """The newest model row, or ``None``."""
    return connection.execute(
        select(PredictionModel).order_by(PredictionModel.version.desc()).limit(1)
    ).first()


def store_probabilities(
    connection: Connection, probabilities: Sequence[tuple[int, float]], at: datetime
) -> None:
    execute_many(
        connection,
        "UPDATE lead_states SET probability = ?, probability_at = ? WHERE lead_id = ?",
        [(p, to_micros(at), lead) for lead, p in probabilities],
    )


def clear_probabilities(connection: Connection) -> None:
    connection.execute(update(LeadState).values(probability=None, probability_at=None))
