"""Keeping each lead's score state current: heat keys and the facts temperature needs.

Events update the state in O(1) each (a log-add per key, a max per timestamp). Attributes,
evidence and outcomes re-derive the few facts they affect for that lead only. A playbook
change, or a merge, rebuilds state from history; in bulk that is vectorised per half-life.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Connection,
    bindparam,
    delete,
    insert,
    select,
    type_coerce,
    update,
)

from leadheat.playbook import Playbook
from leadheat.scoring.evidence import EvidenceItem, required_fresh_until
from leadheat.scoring.fit import score_fit
from leadheat.scoring.heat import add_keys, fold_keys
from leadheat.scoring.lead import OutcomeRecord, status_at
from leadheat.store.leads import chunked, lead_attributes
from leadheat.store.models import Event, EvidenceRow, HeatKeyRow, Lead, LeadState, Outcome
from leadheat.times import MAX_INSTANT, from_micros

MICRO = timedelta(microseconds=1)


def lock_states(connection: Connection, lead_ids: Sequence[int]) -> None:
    """Take the row locks of these leads' states, in id order, before reading them.

    Two writers folding events into the same lead would otherwise both read the old key and
    one addition would be lost. SQLite already runs one writer at a time; on PostgreSQL this
    is ``SELECT … FOR UPDATE``, in a fixed order so that two batches cannot deadlock.
    """
    if connection.dialect.name == "sqlite":
        return
    for chunk in chunked(sorted(lead_ids)):
        connection.execute(
            select(LeadState.lead_id)
            .where(LeadState.lead_id.in_(chunk))
            .order_by(LeadState.lead_id)
            .with_for_update()
        ).all()


def fold_engagements(
    connection: Connection,
    book: Playbook,
    lead_ids: np.ndarray,
    at_us: np.ndarray,
    points: np.ndarray,
    half_life_us: np.ndarray,
) -> None:
    """Add new engagements (points > 0) to the stored heat keys of their leads."""
    for span in np.unique(half_life_us):
        mask = half_life_us == span
        leads, whole, frac = fold_keys(lead_ids[mask], at_us[mask], points[mask], int(span))
        stored: dict[int, tuple[int, float]] = {}
        for chunk in chunked(leads.tolist()):
            stored.update(
                (lead, (w, f))
                for lead, w, f in connection.execute(
                    select(HeatKeyRow.lead_id, HeatKeyRow.whole, HeatKeyRow.frac).where(
                        HeatKeyRow.half_life_us == int(span), HeatKeyRow.lead_id.in_(chunk)
                    )
                )
            )
        known = np.array([lead in stored for lead in leads.tolist()], dtype=bool)
        if known.any():
            old = [stored[lead] for lead in leads[known].tolist()]
            old_w = np.array([w for w, _ in old], dtype=np.int64)
            old_f = np.array([f for _, f in old], dtype=np.float64)
            whole[known], frac[known] = add_keys(whole[known], frac[known], old_w, old_f)
            connection.execute(
                update(HeatKeyRow)
                .where(
                    HeatKeyRow.lead_id == bindparam("b_lead"), HeatKeyRow.half_life_us == int(span)
                )
                .values(whole=bindparam("b_whole"), frac=bindparam("b_frac")),
                [
                    {"b_lead": lead, "b_whole": w, "b_frac": f}
                    for lead, w, f in zip(
                        leads[known].tolist(),
                        whole[known].tolist(),
                        frac[known].tolist(),
                        strict=True,
                    )
                ],
            )
        fresh = ~known
        if fresh.any():
            connection.execute(
                insert(HeatKeyRow),
                [
                    {"lead_id": lead, "half_life_us": int(span), "whole": w, "frac": f}
                    for lead, w, f in zip(
                        leads[fresh].tolist(),
                        whole[fresh].tolist(),
                        frac[fresh].tolist(),
                        strict=True,
                    )
                ],
            )


def refresh_facts(
    connection: Connection, book: Playbook, version: int, lead_ids: Sequence[int]
) -> None:
    """Re-derive fit, qualification, evidence freshness and status for these leads.

    Cheap (attributes, evidence and outcome rows of these leads only); called after any
    change to them.
    """
    ids = sorted(set(lead_ids))
    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    rows: list[Mapping[Any, Any]] = []
    for chunk in chunked(ids):
        for said in connection.execute(select(EvidenceRow).where(EvidenceRow.lead_id.in_(chunk))):
            evidence[said.lead_id].append(
                EvidenceItem(said.kind, said.value, said.stated_at, said.source)
            )
        for done in connection.execute(select(Outcome).where(Outcome.lead_id.in_(chunk))):
            outcomes[done.lead_id].append(
                OutcomeRecord(done.outcome, done.occurred_at, done.reason)
            )
        rows.extend(connection.execute(select(Lead).where(Lead.id.in_(chunk))).mappings())
    updates = []
    for row in rows:
        fit = score_fit(lead_attributes(row), book.fit.rules, book.fit.qualified_at)
        status = status_at(outcomes[row["id"]], MAX_INSTANT)
        until = required_fresh_until(
            evidence[row["id"]], book.temperature.hot_requires, book.evidence.ttl
        )
        updates.append(
            {
                "b_lead": row["id"],
                "b_fit": fit.points,
                "b_qualified": fit.qualified and status != "disqualified",
                "b_disqualified": bool(fit.disqualified_by) or status == "disqualified",
                "b_until": until,
                "b_status": status,
                "b_version": version,
            }
        )
    if updates:
        connection.execute(
            update(LeadState)
            .where(LeadState.lead_id == bindparam("b_lead"))
            .values(
                fit=bindparam("b_fit"),
                qualified=bindparam("b_qualified"),
                disqualified=bindparam("b_disqualified"),
                evidence_until=bindparam("b_until"),
                status=bindparam("b_status"),
                playbook_version=bindparam("b_version"),
            ),
            updates,
        )


def note_activity(
    connection: Connection,
    lead_ids: np.ndarray,
    at_us: np.ndarray,
    engaged: np.ndarray,
    churned: np.ndarray,
) -> None:
    """Advance each lead's last engagement, last churn event and event count."""
    order = np.argsort(lead_ids, kind="stable")
    leads_sorted = lead_ids[order]
    leads, starts = np.unique(leads_sorted, return_index=True)
    counts = np.diff(np.append(starts, len(leads_sorted)))
    none = np.int64(-1)
    last_engaged = np.maximum.reduceat(np.where(engaged[order], at_us[order], none), starts)
    last_churn = np.maximum.reduceat(np.where(churned[order], at_us[order], none), starts)
    stored = {}
    for chunk in chunked(leads.tolist()):
        for row in connection.execute(
            select(
                LeadState.lead_id,
                LeadState.last_engaged_at,
                LeadState.churned_at,
                LeadState.events_count,
            ).where(LeadState.lead_id.in_(chunk))
        ):
            stored[row[0]] = row
    updates = []
    for lead, engaged_us, churn_us, count in zip(
        leads.tolist(), last_engaged.tolist(), last_churn.tolist(), counts.tolist(), strict=True
    ):
        _, old_engaged, old_churn, old_count = stored[lead]
        updates.append(
            {
                "b_lead": lead,
                "b_engaged": _later(old_engaged, engaged_us),
                "b_churn": _later(old_churn, churn_us),
                "b_count": old_count + count,
            }
        )
    connection.execute(
        update(LeadState)
        .where(LeadState.lead_id == bindparam("b_lead"))
        .values(
            last_engaged_at=bindparam("b_engaged"),
            churned_at=bindparam("b_churn"),
            events_count=bindparam("b_count"),
        ),
        updates,
    )


def _later(stored: datetime | None, candidate_us: int) -> datetime | None:
    """The later of a stored instant and a batch's (``-1``: the batch has none)."""
    if candidate_us < 0:
        return stored
    candidate = from_micros(candidate_us)
    return candidate if stored is None else max(stored, candidate)


def rebuild(
    connection: Connection, book: Playbook, version: int, lead_ids: Sequence[int] | None = None
) -> int:
    """Recompute the whole state of these leads (all leads if ``None``) from history.

    Used when the playbook changes and after merges; vectorised, so re-scoring every lead is
    one pass over the events table. Returns the number of events read.
    """
    query = select(
        Event.lead_id,
        Event.type,
        type_coerce(Event.occurred_at, BigInteger),
        Event.properties,
    )
    if lead_ids is None:
        ids = [row[0] for row in connection.execute(select(LeadState.lead_id))]
        connection.execute(delete(HeatKeyRow))
        rows = list(connection.execute(query))
    else:
        ids = sorted(set(lead_ids))
        rows = []
        for chunk in chunked(ids):
            connection.execute(delete(HeatKeyRow).where(HeatKeyRow.lead_id.in_(chunk)))
            rows.extend(connection.execute(query.where(Event.lead_id.in_(chunk))))
    for chunk in chunked(ids):
        connection.execute(
            update(LeadState)
            .where(LeadState.lead_id.in_(chunk))
            .values(last_engaged_at=None, churned_at=None, events_count=0)
        )
    if rows:
        fold_history(connection, book, rows)
    refresh_facts(connection, book, version, ids)
    return len(rows)


def fold_history(connection: Connection, book: Playbook, rows: Sequence[Sequence[object]]) -> None:
    """Fold ``(lead_id, type, occurred_at_us, properties)`` rows into the state."""
    lead_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    at_us = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    points = np.fromiter(
        (book.points_for(str(r[1]), r[3]) for r in rows),  # type: ignore[arg-type]
        dtype=np.float64,
        count=len(rows),
    )
    half_life = np.fromiter(
        (book.half_life_for(str(r[1])) // MICRO for r in rows), dtype=np.int64, count=len(rows)
    )
    churn_types = set(book.temperature.churn_events)
    churned = np.fromiter((r[1] in churn_types for r in rows), dtype=bool, count=len(rows))
    engaged = points > 0
    if engaged.any():
        fold_engagements(
            connection, book, lead_ids[engaged], at_us[engaged], points[engaged], half_life[engaged]
        )
    note_activity(connection, lead_ids, at_us, engaged, churned)
