"""Storing lead states computed elsewhere (a Spark re-score) in place of the current ones.

The rows say everything a lead's state holds (fit, facts, activity, heat keys); writing them
is what :func:`leadheat.store.state.rebuild` writes, so a lead re-scored on a cluster reads
back exactly like one re-scored in process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from leadheat.store.driver import execute_many, select_in


@dataclass(frozen=True)
class ScoredLead:
    """One lead's state; instants in microseconds, ``None`` for never."""

    lead_id: int
    fit: float
    qualified: bool
    disqualified: bool
    evidence_until: int | None
    status: str
    events_count: int
    first_at: int | None
    last_engaged_at: int | None
    churned_at: int | None
    keys: Sequence[tuple[int, int, float]]
    """``(half_life_us, whole, frac)`` per half-life with heat."""


def write_scores(connection: Connection, version: int, scored: Sequence[ScoredLead]) -> int:
    """Replace these leads' states and heat keys; returns how many leads had a state.

    Leads the database does not hold are skipped (a source may be newer than the store).
    ``created_at`` moves back to the first event when the history starts earlier, as it
    does when the events are recorded.
    """
    known = {
        row[0]
        for row in select_in(
            connection,
            "SELECT lead_id FROM lead_states WHERE lead_id IN",
            [s.lead_id for s in scored],
        )
    }
    rows = [s for s in scored if s.lead_id in known]
    execute_many(
        connection, "DELETE FROM heat_keys WHERE lead_id = ?", [(s.lead_id,) for s in rows]
    )
    execute_many(
        connection,
        "INSERT INTO heat_keys (lead_id, half_life_us, whole, frac) VALUES (?, ?, ?, ?)",
        [(s.lead_id, *key) for s in rows for key in s.keys],
    )
    execute_many(
        connection,
        "UPDATE lead_states SET playbook_version = ?, fit = ?, qualified = ?, disqualified = ?, "
        "evidence_until = ?, status = ?, last_engaged_at = ?, churned_at = ?, events_count = ? "
        "WHERE lead_id = ?",
        [
            (
                version,
                s.fit,
                s.qualified,
                s.disqualified,
                s.evidence_until,
                s.status,
                s.last_engaged_at,
                s.churned_at,
                s.events_count,
                s.lead_id,
            )
            for s in rows
        ],
    )
    execute_many(
        connection,
        "UPDATE leads SET created_at = ? WHERE id = ? AND created_at > ?",
        [(s.first_at, s.lead_id, s.first_at) for s in rows if s.first_at is not None],
    )
    return len(rows)
