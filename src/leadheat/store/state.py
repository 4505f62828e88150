"""Keeping each lead's score state current: heat keys and the facts temperature needs.

Events update the state in O(1) each (a log-add per key, a max per timestamp). Attributes,
evidence and outcomes re-derive the few facts they affect for that lead only. A playbook
change, or a merge, rebuilds state from history; in bulk that is vectorised per half-life.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Connection,
    delete,
    select,
    update,
)

from leadheat.playbook import Accounts, Playbook
from leadheat.scoring.evidence import EvidenceItem, required_fresh_until
from leadheat.scoring.fit import fit_summary
from leadheat.scoring.heat_arrays import add_keys, fold_keys
from leadheat.scoring.lead import OutcomeRecord, status_at
from leadheat.scoring.rescoring import Activity, Keys, SignalTable, fold_activity
from leadheat.store import accounts
from leadheat.store.database import MergedMeanwhileError
from leadheat.store.driver import chunked, execute_many, select_all, select_in
from leadheat.store.fields import COMMON_FIELDS, lead_attributes
from leadheat.store.models import HeatKeyRow, Lead, LeadState
from leadheat.times import MAX_INSTANT, from_micros, to_micros


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


def refuse_merged(connection: Connection, lead_ids: Sequence[int]) -> None:
    """After :func:`lock_states`, before writing to these leads: raise
    :class:`MergedMeanwhileError` when one of them has been merged away.

    On PostgreSQL a write finds its leads by their keys, then waits for their locks; a merge
    that committed meanwhile moved the keys and the events to the lead it kept, and what
    this write stored on the old id would be lost to every view. (SQLite runs one writer at
    a time, so nothing changes between the two.)
    """
    if connection.dialect.name == "sqlite":
        return
    for chunk in chunked(sorted(lead_ids)):
        merged = connection.execute(
            select(Lead.id).where(Lead.id.in_(chunk), Lead.merged_into_id.is_not(None)).limit(1)
        ).first()
        if merged is not None:
            raise MergedMeanwhileError(f"lead {merged[0]} was merged while this write waited")


@dataclass(frozen=True)
class Engagements:
    """New events as the state sees them, column by column (one entry per event)."""

    lead_ids: npt.NDArray[np.int64]
    at_us: npt.NDArray[np.int64]
    points: npt.NDArray[np.float64]
    half_life_us: npt.NDArray[np.int64]
    churned: npt.NDArray[np.bool_]


def engagements(
    book: Playbook,
    lead_ids: npt.NDArray[np.int64],
    types: Sequence[str],
    at_us: npt.NDArray[np.int64],
    properties_of: Callable[[int], Mapping[str, Any] | None],
) -> Engagements:
    """Points, half-life and churn flag of each event, looked up once per event type.

    Only events of a type with property rules have their properties read.
    """
    codes: dict[str, int] = {}
    type_codes = np.fromiter(
        (codes.setdefault(t, len(codes)) for t in types), dtype=np.int64, count=len(types)
    )
    return coded_engagements(book, lead_ids, type_codes, list(codes), at_us, properties_of)


def coded_engagements(
    book: Playbook,
    lead_ids: npt.NDArray[np.int64],
    type_codes: npt.NDArray[np.int64],
    names: Sequence[str],
    at_us: npt.NDArray[np.int64],
    properties_of: Callable[[int], Mapping[str, Any] | None],
) -> Engagements:
    """:func:`engagements` of events whose types come as codes into ``names`` (as
    ``pandas.factorize`` gives them to a Spark partition)."""
    table = SignalTable.of(book, names)
    points = table.points[type_codes]
    for code, name in enumerate(names):
        signal = book.signals.get(name)
        if signal is not None and signal.rules:
            for index in np.flatnonzero(type_codes == code).tolist():
                points[index] = book.points_for(name, properties_of(index))
    return Engagements(
        lead_ids, at_us, points, table.half_life_us[type_codes], table.churn[type_codes]
    )


def fold_batch(
    connection: Connection,
    batch: Engagements,
    fresh: Mapping[int, tuple[int, float, bool, bool, int | None]] | None = None,
    rules: Accounts | None = None,
) -> None:
    """Fold new events into their leads' heat keys, last engagement, last churn, event count
    and ``created_at``: a few array operations per batch and one write per lead. Events
    worth less than 0 points fold into the negative keys (stored under the negated
    half-life, :func:`~leadheat.scoring.heat.signed_span_us`) and are no engagement.

    ``fresh`` maps leads created by this batch, which have no state row yet and nothing
    stored to merge with, to their ``(playbook version, fit, qualified, disqualified,
    evidence_until µs)``. ``rules``: the playbook's ``[accounts]``, whose thresholds the
    accounts of these leads, whose keys the new events add to, are forecast by.
    """
    write_activity(connection, batch_activity(batch), fresh or {}, rules=rules)


def batch_activity(batch: Engagements) -> Activity:
    """Per lead: what a batch of new events adds (one ``fold_keys`` per half-life)."""
    if not len(batch.lead_ids):
        empty = np.zeros(0, dtype=np.int64)
        return Activity(empty, empty, empty, empty, empty, {})
    order = np.argsort(batch.lead_ids, kind="stable")
    leads, starts, counts = np.unique(batch.lead_ids[order], return_index=True, return_counts=True)
    at_sorted = batch.at_us[order]
    engaged = batch.points > 0
    none = np.int64(-1)
    keys: dict[int, Keys] = {}
    heated = batch.points != 0
    signed = np.where(batch.points < 0, -batch.half_life_us, batch.half_life_us)
    for span in np.unique(signed[heated]).tolist():  # negative: a negative signal's part
        mask = heated & (signed == span)
        keys[int(span)] = fold_keys(
            batch.lead_ids[mask], batch.at_us[mask], np.abs(batch.points[mask]), abs(int(span))
        )
    return Activity(
        leads=leads,
        events=counts.astype(np.int64),
        first_at=np.minimum.reduceat(at_sorted, starts),
        last_engaged_at=np.maximum.reduceat(np.where(engaged[order], at_sorted, none), starts),
        churned_at=np.maximum.reduceat(np.where(batch.churned[order], at_sorted, none), starts),
        keys=keys,
    )


def write_activity(
    connection: Connection,
    activity: Activity,
    fresh: Mapping[int, tuple[int, float, bool, bool, int | None]],
    born: Mapping[int, int] | None = None,
    rules: Accounts | None = None,
) -> None:
    """Add ``activity`` to its leads' stored states: heat keys, last engagement, last churn,
    event count, and ``created_at`` moved back to an earlier first event.

    ``fresh`` maps leads with no state row yet to their ``(playbook version, fit, qualified,
    disqualified, evidence_until µs)``; ``born`` gives the ``created_at`` (µs) of fresh leads
    when an earlier write of the same transaction created them, so that it moves too.
    ``rules``: the playbook's ``[accounts]``, by whose thresholds the accounts these keys
    add to are forecast.
    """
    in_batch = set(activity.leads.tolist())
    idle = [(lead, *fit, None, None, 0) for lead, fit in fresh.items() if lead not in in_batch]
    execute_many(connection, _NEW_STATE, idle)  # new leads whose events were all re-deliveries
    if not in_batch:
        return
    known = [lead for lead in activity.leads.tolist() if lead not in fresh]
    stored_state = _stored_states(connection, known)
    stored_keys = _stored_keys(connection, known)
    for span, (key_leads, new_whole, new_frac) in activity.keys.items():
        accounts.add_lead_keys(
            connection, rules or Accounts(), span, key_leads, new_whole.copy(), new_frac.copy()
        )
        old = [stored_keys.get((lead, span)) for lead in key_leads.tolist()]
        had = np.array([item is not None for item in old], dtype=np.bool_)
        whole, frac = new_whole, new_frac
        if had.any():
            old_w = np.array([item[0] for item in old if item is not None], dtype=np.int64)
            old_f = np.array([item[1] for item in old if item is not None], dtype=np.float64)
            whole, frac = new_whole.copy(), new_frac.copy()
            whole[had], frac[had] = add_keys(whole[had], frac[had], old_w, old_f)
        rows = zip(
            key_leads.tolist(), [span] * len(key_leads), whole.tolist(), frac.tolist(), strict=True
        )
        if not known:  # every lead is new: nothing to update
            execute_many(connection, _NEW_KEY, list(rows))
            continue
        execute_many(
            connection,
            _NEW_KEY + " ON CONFLICT (lead_id, half_life_us) "
            "DO UPDATE SET whole = excluded.whole, frac = excluded.frac",
            list(rows),
        )
    born = born or {}
    leads = activity.leads.tolist()
    engaged = _nullable(activity.last_engaged_at)
    churned = _nullable(activity.churned_at)
    counts = activity.events.tolist()
    firsts = activity.first_at.tolist()
    new_states = [
        (lead, *fresh[lead], engaged_us, churn_us, count)
        for lead, engaged_us, churn_us, count in zip(leads, engaged, churned, counts, strict=True)
        if lead in fresh
    ]
    moved = [
        (first, lead)
        for lead, first in zip(leads, firsts, strict=True)
        if lead in born and first < born[lead]
    ]
    states = []
    for lead, engaged_us, churn_us, count, first in zip(
        leads,
        activity.last_engaged_at.tolist(),
        activity.churned_at.tolist(),
        counts,
        firsts,
        strict=True,
    ):
        if lead in fresh:
            continue
        old_engaged, old_churn, old_count, created = stored_state.get(lead, (-1, -1, 0, None))
        states.append(
            (
                _none_if_negative(max(engaged_us, old_engaged)),
                _none_if_negative(max(churn_us, old_churn)),
                old_count + count,
                lead,
            )
        )
        if created is not None and first < created:
            moved.append((first, lead))
    execute_many(connection, _NEW_STATE, new_states)
    execute_many(
        connection,
        "UPDATE lead_states SET last_engaged_at = ?, churned_at = ?, events_count = ? "
        "WHERE lead_id = ?",
        states,
    )
    if moved:
        execute_many(connection, "UPDATE leads SET created_at = ? WHERE id = ?", moved)


_NEW_KEY = "INSERT INTO heat_keys (lead_id, half_life_us, whole, frac) VALUES (?, ?, ?, ?)"
_NEW_STATE = (
    "INSERT INTO lead_states (lead_id, playbook_version, fit, qualified, disqualified, "
    "evidence_until, status, last_engaged_at, churned_at, events_count) "
    "VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)"
)


def _nullable(micros: npt.NDArray[np.int64]) -> list[int | None]:
    """Instants as stored: ``None`` for "never" (negative)."""
    return [None if value < 0 else value for value in micros.tolist()]


def _none_if_negative(micros: int) -> int | None:
    return None if micros < 0 else micros


def _stored_states(
    connection: Connection, lead_ids: Sequence[int]
) -> dict[int, tuple[int, int, int, int]]:
    """``lead → (last engaged µs or -1, last churn µs or -1, events, created_at µs)``."""
    rows = select_in(
        connection,
        "SELECT s.lead_id, s.last_engaged_at, s.churned_at, s.events_count, l.created_at "
        "FROM lead_states s JOIN leads l ON l.id = s.lead_id WHERE s.lead_id IN",
        lead_ids,
    )
    return {
        lead: (-1 if engaged is None else engaged, -1 if churn is None else churn, count, created)
        for lead, engaged, churn, count, created in rows
    }


def _stored_keys(
    connection: Connection, lead_ids: Sequence[int]
) -> dict[tuple[int, int], tuple[int, float]]:
    rows = select_in(
        connection,
        "SELECT lead_id, half_life_us, whole, frac FROM heat_keys WHERE lead_id IN",
        lead_ids,
    )
    return {(lead, span): (whole, frac) for lead, span, whole, frac in rows}


def refresh_facts(
    connection: Connection, book: Playbook, version: int, lead_ids: Sequence[int]
) -> None:
    """Re-derive fit, qualification, evidence freshness and status for these leads.

    Cheap (attributes, evidence and outcome rows of these leads only); called after any
    change to them, and for every lead by a re-score, so rows travel through the driver as
    plain tuples.
    """
    ids = sorted(set(lead_ids))
    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    for lead, kind, value, stated_at, source in select_in(
        connection,
        "SELECT lead_id, kind, value, stated_at, source FROM evidence WHERE lead_id IN",
        ids,
    ):
        evidence[lead].append(EvidenceItem(kind, value, from_micros(stated_at), source))
    for lead, outcome, occurred_at, reason in select_in(
        connection,
        "SELECT lead_id, outcome, occurred_at, reason FROM outcomes WHERE lead_id IN",
        ids,
    ):
        outcomes[lead].append(OutcomeRecord(outcome, from_micros(occurred_at), reason))
    updates = []
    for lead, said, *common in select_in(
        connection, f"SELECT id, attributes, {', '.join(COMMON_FIELDS)} FROM leads WHERE id IN", ids
    ):
        row = dict(zip(COMMON_FIELDS, common, strict=True))
        row["attributes"] = json.loads(said) if isinstance(said, str) else said
        points, qualified, disqualified = fit_summary(
            lead_attributes(row), book.fit.rules, book.fit.qualified_at
        )
        status = status_at(outcomes[lead], MAX_INSTANT)
        until = required_fresh_until(
            evidence[lead], book.temperature.hot_requires, book.evidence.ttl
        )
        updates.append(
            (
                points,
                qualified and status != "disqualified",
                disqualified or status == "disqualified",
                None if until is None else to_micros(until),
                status,
                version,
                lead,
            )
        )
    execute_many(
        connection,
        "UPDATE lead_states SET fit = ?, qualified = ?, disqualified = ?, evidence_until = ?, "
        "status = ?, playbook_version = ? WHERE lead_id = ?",
        updates,
    )


def rebuild(
    connection: Connection, book: Playbook, version: int, lead_ids: Sequence[int] | None = None
) -> int:
    """Recompute the whole state of these leads (all leads if ``None``) from history.

    Used when the playbook changes and after merges. Events are read as columns straight
    from the driver (properties only of event types whose points depend on them) and folded
    by :func:`~leadheat.scoring.rescoring.fold_activity`, so re-scoring every lead is one pass
    over the events table and one write per lead. Returns the number of events read.
    """
    if lead_ids is None:
        ids = [row[0] for row in connection.execute(select(LeadState.lead_id))]
        connection.execute(delete(HeatKeyRow))
        rows = read_events(connection, book)
    else:
        ids = sorted(set(lead_ids))
        rows = []
        for chunk in chunked(ids):
            connection.execute(delete(HeatKeyRow).where(HeatKeyRow.lead_id.in_(chunk)))
            rows.extend(read_events(connection, book, chunk))
    reset = update(LeadState).values(last_engaged_at=None, churned_at=None, events_count=0)
    if lead_ids is None:
        connection.execute(reset)
    else:
        for chunk in chunked(ids):
            connection.execute(reset.where(LeadState.lead_id.in_(chunk)))
    if rows:
        fold_history(connection, book, rows)
    refresh_facts(connection, book, version, ids)
    if lead_ids is None:
        accounts.recompute(connection, book.accounts)
    else:
        stale = connection.info.pop(accounts.STALE, set())
        accounts.recompute(
            connection, book.accounts, stale | set(accounts.accounts_of(connection, ids).values())
        )
    return len(rows)


def read_events(
    connection: Connection, book: Playbook, lead_ids: Sequence[int] | None = None
) -> list[tuple[int, str, int, Any]]:
    """Stored events as ``(lead_id, type, occurred_at µs, properties)`` through the driver.

    Properties are read (and decoded) only for the event types whose points depend on them;
    they are ``None`` for the rest.
    """
    ruled = sorted(name for name, signal in book.signals.items() if signal.rules)
    properties = (
        f"CASE WHEN type IN ({', '.join('?' * len(ruled))}) THEN properties END"
        if ruled
        else "NULL"
    )
    sql = f"SELECT lead_id, type, occurred_at, {properties} FROM events"
    if lead_ids is None:
        found = select_all(connection, sql, *ruled)
    else:
        found = select_in(connection, f"{sql} WHERE lead_id IN", lead_ids, *ruled)
    if not ruled:
        return found
    return [
        (lead, kind, at, json.loads(said) if isinstance(said, str) else said)
        for lead, kind, at, said in found
    ]


def fold_history(connection: Connection, book: Playbook, rows: Sequence[Sequence[Any]]) -> None:
    """Fold stored ``(lead_id, type, occurred_at_us, properties)`` rows into states whose
    activity was reset: one vectorised fold, then one write per lead and half-life."""
    lead_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    at_us = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    types = [str(r[1]) for r in rows]
    batch = engagements(book, lead_ids, types, at_us, lambda i: rows[i][3])
    activity = fold_activity(
        batch.lead_ids, batch.at_us, batch.points, batch.half_life_us, batch.churned
    )
    for span, (leads, whole, frac) in activity.keys.items():
        execute_many(
            connection,
            "INSERT INTO heat_keys (lead_id, half_life_us, whole, frac) VALUES (?, ?, ?, ?)",
            list(
                zip(leads.tolist(), [span] * len(leads), whole.tolist(), frac.tolist(), strict=True)
            ),
        )
    execute_many(
        connection,
        "UPDATE lead_states SET last_engaged_at = ?, churned_at = ?, events_count = ? "
        "WHERE lead_id = ?",
        list(
            zip(
                map(_none_if_negative, activity.last_engaged_at.tolist()),
                map(_none_if_negative, activity.churned_at.tolist()),
                activity.events.tolist(),
                activity.leads.tolist(),
                strict=True,
            )
        ),
    )
    created = dict(
        select_in(
            connection, "SELECT id, created_at FROM leads WHERE id IN", activity.leads.tolist()
        )
    )
    moved = [
        (first, lead)
        for lead, first in zip(activity.leads.tolist(), activity.first_at.tolist(), strict=True)
        if first < created[lead]
    ]
    execute_many(connection, "UPDATE leads SET created_at = ? WHERE id = ?", moved)
