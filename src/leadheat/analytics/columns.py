"""Every lead's facts at its own instants, from the store's columns: the report's fast path.

The report asks, for every lead, what it was at its decision time (its temperature and grade
at the first touch), what each account was then, and how many leads were hot, warm and cold
at eight instants. Replaying each lead's history as Python objects
(:func:`~leadheat.analytics.decisions.decide`, :func:`~leadheat.analytics.pipeline.snapshots`)
costs about 0.3 ms a lead: five minutes at a million leads. Here the events are read once as
columns (one array per field, sorted by lead and time as the replay folds them) and one loop
compiled by numba folds each lead's events up to each instant asked of it.

The fold is :meth:`~leadheat.scoring.heat.Heat.add` step for step (the same float operations
on the same values in the same order, and :func:`math.fsum`'s correctly rounded sum of the
keys' heats), so the heat is the replay's to the bit, and every threshold falls the same way;
the tests hold the two paths equal on generated histories. What is not per event (fit, BANT
evidence, outcomes, the first touch) is read as rows and judged by the same functions the
replay calls, evidence and outcomes only for the few leads that have them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from leadheat.analytics.decisions import Decided, text_of
from leadheat.analytics.pipeline import Snapshot, heat_bin_index, heat_bins
from leadheat.playbook import Playbook
from leadheat.predict.asof import label
from leadheat.scoring.evidence import EvidenceItem, required_fresh_until
from leadheat.scoring.fit import fit_summary
from leadheat.scoring.lead import OutcomeRecord, status_at
from leadheat.scoring.temperature import grade
from leadheat.store.driver import select_blocks
from leadheat.store.fields import COMMON_FIELDS
from leadheat.times import from_micros, instants, to_micros

NEVER = np.iinfo(np.int64).min
"""An instant that is not: no interest signal, no churn (events may precede 1970)."""
_LOG2_E = 1 / math.log(2)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Columns:
    """Every lead not merged away, ids ascending, and what the store knew of it by ``now``.

    Per lead (its *slot*, its index here): arrival, fit, the attributes the report groups
    by, the first touch and the first outcome; its events as columns (lead ``i``'s are
    ``offsets[i]:offsets[i + 1]``, in the replay's order); its evidence, outcomes and SLA
    starts as rows, only for the leads that have them."""

    now: datetime
    lead_ids: Ints
    created_us: Ints
    fit: Floats
    fit_qualified: npt.NDArray[np.bool_]
    fit_disqualified: npt.NDArray[np.bool_]
    source: list[str | None]
    campaign: list[str | None]
    owner: list[str | None]
    offsets: Ints
    at_us: Ints
    points: Floats
    key: npt.NDArray[np.intp]
    """Each event's heat key: an index into ``spans_us``/``negative``; ``-1``: no heat."""
    churn: npt.NDArray[np.bool_]
    spans_us: Ints
    negative: npt.NDArray[np.bool_]
    first_touch_us: Ints
    """:data:`NEVER`: not touched."""
    first_rep: dict[int, str | None]
    """By slot: who made the first touch."""
    evidence: dict[int, list[EvidenceItem]]
    outcomes: dict[int, list[OutcomeRecord]]
    """By slot, in time order."""
    sla_starts: dict[int, list[int]]
    """By slot: when each of its SLA clocks started (µs)."""

    def slot_of(self, lead_ids: Sequence[int] | Ints) -> npt.NDArray[np.intp]:
        """The slots of these leads (they must be among :attr:`lead_ids`)."""
        return np.searchsorted(self.lead_ids, np.asarray(lead_ids, dtype=np.int64))

    def arrived(self, since: datetime | None) -> npt.NDArray[np.intp]:
        """The slots of the leads that arrived in ``[since, now)``."""
        wanted = self.created_us < to_micros(self.now)
        if since is not None:
            wanted &= self.created_us >= to_micros(since)
        return np.flatnonzero(wanted)

    def fold(self, slots: npt.NDArray[np.intp], at_us: Ints) -> Folded:
        """Each lead ``slots[q]``'s heat and interest at ``at_us[q]``, from its events by then."""
        ordered = (slots[1:] > slots[:-1]) | ((slots[1:] == slots[:-1]) & (at_us[1:] >= at_us[:-1]))
        order = np.arange(len(slots)) if ordered.all() else np.lexsort((at_us, slots))
        fold, fsum = kernels()
        terms, engaged, churned = fold(
            self.offsets,
            self.at_us,
            self.points,
            self.key,
            self.spans_us,
            self.negative,
            self.churn,
            np.ascontiguousarray(slots[order], dtype=np.intp),
            np.ascontiguousarray(at_us[order], dtype=np.int64),
            _LOG2_E,
            2.0,
        )
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        terms = terms[back]
        keys = len(self.spans_us)
        rows = np.arange(len(order) + 1, dtype=np.int64) * keys
        raised = fsum(np.where(self.negative, 0.0, terms).reshape(-1), rows)
        negative = (terms != 0) & self.negative
        heat = raised.copy()
        pulled = np.flatnonzero(negative.any(axis=1))
        if len(pulled):  # Heat.at sums every part at once when a negative one is there
            part = terms[pulled]
            heat[pulled] = fsum(part.reshape(-1), rows[: len(pulled) + 1])
        return Folded(heat, raised, engaged[back], churned[back])

    def status(self, slot: int, at: datetime) -> str:
        """``open`` or the latest outcome by ``at`` (:func:`status_at`)."""
        outcomes = self.outcomes.get(slot)
        return "open" if outcomes is None else status_at(outcomes, at)

    def evidence_until(self, slot: int, at: datetime, book: Playbook) -> datetime | None:
        """Until when the evidence known at ``at`` keeps the lead hot (as the replay finds)."""
        known = [item for item in self.evidence.get(slot, ()) if item.stated_at <= at]
        return required_fresh_until(known, book.temperature.hot_requires, book.evidence.ttl)


@dataclass(frozen=True)
class Folded:
    """Per query: the heat (:meth:`Heat.at`), the heat of the events worth more than 0 points
    alone (:meth:`Heat.raised_at`), the latest interest signal and the latest churn
    (:data:`NEVER`: none)."""

    heat: Floats
    raised: Floats
    engaged: Ints
    churned: Ints


def _said(value: Any) -> Any:
    """Stored properties or attributes as a dictionary key: the JSON text as SQLite gives
    it, PostgreSQL's decoded value written back canonically."""
    return value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)


def _decoded(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def load_columns(connection: Connection, book: Playbook, now: datetime) -> Columns:
    """Every lead not merged away, with only what the store knew by ``now``.

    Per lead, only fit and three attributes are kept, each distinct set of the values that
    decide them judged once; per event, four numbers, its points found once per distinct
    type and properties."""
    now_us = to_micros(now)
    grouped = ("source", "campaign", "owner")
    looked_at = sorted({rule.field for rule in book.fit.rules} | set(grouped))
    common = [i for i, name in enumerate(COMMON_FIELDS) if name in looked_at]
    seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    ids: list[int] = []
    created: list[int] = []
    found = []
    for block in select_blocks(
        connection,
        f"SELECT id, merged_into_id, created_at, attributes, {', '.join(COMMON_FIELDS)} "
        "FROM leads ORDER BY id",
    ):
        for lead_id, merged_into, created_us, said, *values in block:
            if merged_into is not None:
                continue
            ids.append(lead_id)
            created.append(created_us)
            case = (_said(said), *[values[i] for i in common])
            facts = seen.get(case)
            if facts is None:
                attributes = _decoded(said)
                for name, value in zip(COMMON_FIELDS, values, strict=True):
                    if value is not None:
                        attributes[name] = value
                judged = fit_summary(attributes, book.fit.rules, book.fit.qualified_at)
                facts = seen[case] = (*judged, *(text_of(attributes.get(n)) for n in grouped))
            found.append(facts)
    lead_ids = np.array(ids, dtype=np.int64)
    fit, qualified, disqualified, source, campaign, owner = (
        (list(column) for column in zip(*found, strict=True)) if found else ([], [], [], [], [], [])
    )
    events = _read_events(connection, book, now_us, lead_ids)
    first_touch_us, first_rep = _first_touches(connection, now_us, lead_ids)

    def rows_of(sql: str) -> tuple[npt.NDArray[np.intp], list[tuple[Any, ...]]]:
        """Rows whose first column is a lead id and fourth (else second) an instant, known by
        ``now``, with the slot of each (``-1``: a lead merged away)."""
        rows = [row for block in select_blocks(connection, sql) for row in block]
        rows = [row for row in rows if row[3 if len(row) > 3 else 1] <= now_us]
        return _slots(lead_ids, np.array([r[0] for r in rows], dtype=np.int64)), rows

    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    slots, rows = rows_of(
        "SELECT lead_id, kind, value, stated_at, source FROM evidence ORDER BY id"
    )
    for at, (_, kind, value, stated_us, said_by) in zip(slots.tolist(), rows, strict=True):
        if at >= 0:
            evidence[at].append(EvidenceItem(kind, value, from_micros(stated_us), said_by))
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    slots, rows = rows_of(
        "SELECT lead_id, outcome, reason, occurred_at FROM outcomes ORDER BY occurred_at, id"
    )
    for at, (_, outcome, reason, occurred_us) in zip(slots.tolist(), rows, strict=True):
        if at >= 0:
            outcomes[at].append(OutcomeRecord(outcome, from_micros(occurred_us), reason))
    starts: dict[int, list[int]] = defaultdict(list)
    slots, rows = rows_of("SELECT lead_id, started_at FROM sla_clocks")
    for at, (_, started_us) in zip(slots.tolist(), rows, strict=True):
        if at >= 0:
            starts[at].append(started_us)
    return Columns(
        now=now,
        lead_ids=lead_ids,
        created_us=np.array(created, dtype=np.int64),
        fit=np.array(fit, dtype=np.float64),
        fit_qualified=np.array(qualified, dtype=np.bool_),
        fit_disqualified=np.array(disqualified, dtype=np.bool_),
        source=source,
        campaign=campaign,
        owner=owner,
        **events,
        first_touch_us=first_touch_us,
        first_rep=first_rep,
        evidence=dict(evidence),
        outcomes=dict(outcomes),
        sla_starts=dict(starts),
    )


def _slots(lead_ids: Ints, wanted: Ints) -> npt.NDArray[np.intp]:
    """The slot of each of ``wanted`` among ``lead_ids`` (ascending); ``-1`` where absent."""
    if len(lead_ids) == 0:
        return np.full(len(wanted), -1, dtype=np.intp)
    at = np.minimum(np.searchsorted(lead_ids, wanted), len(lead_ids) - 1)
    return np.where(lead_ids[at] == wanted, at, -1).astype(np.intp)


def _read_events(connection: Connection, book: Playbook, now_us: int, lead_ids: Ints) -> Any:
    """The events known by ``now_us`` of these leads as the fold's columns, in the replay's
    order (by lead, time, then id)."""
    ruled = sorted(name for name, signal in book.signals.items() if signal.rules)
    properties = (
        f"CASE WHEN type IN ({', '.join('?' * len(ruled))}) THEN properties END"
        if ruled
        else "NULL"
    )
    type_codes: dict[str, int] = {}
    ruled_points: dict[tuple[str, Any], float] = {}

    def by_properties(kind: str, said: Any) -> float:
        case = (kind, _said(said))
        points = ruled_points.get(case)
        if points is None:
            points = ruled_points[case] = book.points_for(kind, _decoded(said))
        return points

    parts: list[tuple[Ints, Ints, Ints, npt.NDArray[np.intp], Floats]] = []
    for block in select_blocks(
        connection,
        f"SELECT lead_id, occurred_at, id, type, {properties} FROM events",  # a scan: no index
        *ruled,
    ):
        leads, instants, numbers, kinds, said = zip(*block, strict=True)  # columns, in C
        for kind in sorted(set(kinds).difference(type_codes)):
            type_codes[kind] = len(type_codes)
        points = np.full(len(block), math.nan)
        for index in np.flatnonzero(np.array(said, dtype=object) != None).tolist():  # noqa: E711
            points[index] = by_properties(kinds[index], said[index])
        parts.append(
            (
                np.array(leads, dtype=np.int64),
                np.array(instants, dtype=np.int64),
                np.array(numbers, dtype=np.int64),
                np.fromiter(map(type_codes.__getitem__, kinds), dtype=np.intp, count=len(kinds)),
                points,
            )
        )
    event_leads, at_us, ids, codes, said_points = (
        np.concatenate(column) if parts else np.zeros(0, dtype)
        for column, dtype in zip(
            zip(*parts, strict=True) if parts else [()] * 5,
            (np.int64, np.int64, np.int64, np.intp, np.float64),
            strict=True,
        )
    )
    order = np.lexsort((ids, at_us, event_leads))
    order = order[at_us[order] <= now_us]
    event_slots = _slots(lead_ids, event_leads[order])
    order, event_slots = order[event_slots >= 0], event_slots[event_slots >= 0]
    types = list(type_codes)
    codes, said_points = codes[order], said_points[order]
    table = np.array([book.points_for(name) for name in types], dtype=np.float64)
    points = np.where(np.isnan(said_points), table[codes] if types else 0.0, said_points)
    half_life = np.array(
        [book.half_life_for(name) // timedelta(microseconds=1) for name in types], dtype=np.int64
    )
    signed = np.where(points < 0, -1, 1) * (half_life[codes] if types else 0)
    spans, key = np.unique(signed[points != 0], return_inverse=True)
    keys = np.full(len(points), -1, dtype=np.intp)
    keys[points != 0] = key.reshape(-1)
    churn_types = set(book.temperature.churn_events)
    churn = np.array([name in churn_types for name in types], dtype=np.bool_)
    offsets = np.zeros(len(lead_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(event_slots, minlength=len(lead_ids)), out=offsets[1:])
    return {
        "offsets": offsets,
        "at_us": np.ascontiguousarray(at_us[order]),
        "points": points,
        "key": keys,
        "churn": churn[codes] if types else np.zeros(0, dtype=np.bool_),
        "spans_us": np.abs(spans).astype(np.int64),
        "negative": spans < 0,
    }


def _first_touches(
    connection: Connection, now_us: int, lead_ids: Ints
) -> tuple[Ints, dict[int, str | None]]:
    """Each lead's first touch by ``now_us`` (:data:`NEVER`: none) and who made it (of two
    at the same instant, the one recorded first)."""
    rows = [
        row
        for block in select_blocks(connection, "SELECT lead_id, occurred_at, id, rep FROM touches")
        for row in block
        if row[1] <= now_us
    ]
    first = np.full(len(lead_ids), NEVER, dtype=np.int64)
    reps: dict[int, str | None] = {}
    if not rows:
        return first, reps
    leads = np.array([r[0] for r in rows], dtype=np.int64)
    at = np.array([r[1] for r in rows], dtype=np.int64)
    order = np.lexsort((np.array([r[2] for r in rows], dtype=np.int64), at, leads))
    slots = _slots(lead_ids, leads[order])
    leading = np.ones(len(order), dtype=bool)
    leading[1:] = slots[1:] != slots[:-1]
    for index in np.flatnonzero(leading & (slots >= 0)).tolist():
        slot = int(slots[index])
        first[slot] = at[order[index]]
        reps[slot] = rows[order[index]][3]
    return first, reps


@dataclass(frozen=True)
class Judged:
    """Leads at instants: temperature (``hot``/``warm``/``cold``), the heat then and the
    facts behind them, one entry per query."""

    temperature: npt.NDArray[np.str_]
    fit: Floats
    heat: Floats
    engaged: Ints
    qualified: npt.NDArray[np.bool_]
    disqualified: npt.NDArray[np.bool_]
    still_open: npt.NDArray[np.bool_]
    """No outcome yet."""


def judge(columns: Columns, book: Playbook, slots: npt.NDArray[np.intp], at_us: Ints) -> Judged:
    """:func:`~leadheat.scoring.temperature.classify` of lead ``slots[q]`` at ``at_us[q]``,
    as :func:`~leadheat.scoring.lead.facts_at` replays it (no model probability), for many
    queries at once."""
    rules = book.temperature
    folded = columns.fold(slots, at_us)
    still_open = np.ones(len(slots), dtype=bool)
    dq_status = np.zeros(len(slots), dtype=bool)
    for q in np.flatnonzero(np.isin(slots, list(columns.outcomes))).tolist():
        status = columns.status(int(slots[q]), from_micros(int(at_us[q])))
        still_open[q] = status == "open"
        dq_status[q] = status == "disqualified"
    qualified = columns.fit_qualified[slots] & ~dq_status
    disqualified = columns.fit_disqualified[slots] | dq_status
    engaged = folded.engaged
    heat = folded.heat
    known = engaged != NEVER
    since = np.where(known, at_us - np.where(known, engaged, 0), 0)
    alive = known & (since <= _us(rules.cold_after)) & ~(known & (folded.churned >= engaged))
    maybe_hot = alive & qualified & (heat >= rules.hot_heat) & (rules.hot_min_probability is None)
    hot = np.zeros(len(slots), dtype=bool)
    for q in np.flatnonzero(maybe_hot).tolist():
        at = from_micros(int(at_us[q]))
        until = columns.evidence_until(int(slots[q]), at, book)
        hot[q] = until is not None and at < until
    warm = alive & ~hot & ((heat >= rules.warm_heat) | (since <= _us(rules.warm_window)))
    temperature = np.where(hot, "hot", np.where(warm, "warm", "cold"))
    return Judged(
        temperature, columns.fit[slots], heat, engaged, qualified, disqualified, still_open
    )


def _us(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def decision_rows(
    columns: Columns, book: Playbook, horizon: timedelta, since: datetime | None
) -> list[Decided]:
    """Every lead that arrived in ``[since, now)`` at its decision time, as
    :meth:`~leadheat.analytics.decisions.Story.decisions` finds it (the decision time as
    :func:`~leadheat.predict.asof.decision_time` sets it, in microseconds)."""
    now = columns.now
    slots = columns.arrived(since)
    created = columns.created_us[slots]
    touch = columns.first_touch_us[slots]
    closed = np.full(len(slots), NEVER, dtype=np.int64)
    closing = [q for q, s in enumerate(slots.tolist()) if s in columns.outcomes]
    for q in closing:
        closed[q] = min(to_micros(o.at) for o in columns.outcomes[int(slots[q])])
    touched = (touch != NEVER) & ((closed == NEVER) | (touch <= closed))
    at_us = np.where(touched, touch, np.where(closed != NEVER, closed - 1, created))
    judged = judge(columns, book, slots, at_us)
    # the response: from the SLA clock's start, else the latest interest signal, else arrival
    start = np.where(judged.engaged != NEVER, judged.engaged, created)
    for q in [q for q, s in enumerate(slots.tolist()) if s in columns.sla_starts]:
        begun = [t for t in columns.sla_starts[int(slots[q])] if t <= at_us[q]]
        if begun:
            start[q] = max(begun)
    response_us = np.where(touched, at_us - np.maximum(start, created), NEVER).tolist()
    horizon_us = _us(horizon)
    censored = (at_us + horizon_us > to_micros(now)).tolist()
    grades = _grades(book, judged)
    created_at, decided_at = instants(created.tolist()), instants(at_us.tolist())
    heats = judged.heat.tolist()
    temperatures = judged.temperature.tolist()
    rows = []
    for q, s in enumerate(slots.tolist()):
        at = decided_at[q]
        outcomes = columns.outcomes.get(s)
        evidence = columns.evidence.get(s)
        won = [o.at for o in outcomes if o.outcome == "won"] if outcomes else []
        response = None if response_us[q] == NEVER else timedelta(microseconds=response_us[q])
        rows.append(
            Decided(
                lead_id=int(columns.lead_ids[s]),
                created_at=created_at[q],
                decided_at=at,
                touched=response is not None,
                response=response,
                temperature=temperatures[q],
                grade=grades[q],
                heat=heats[q],
                source=columns.source[s],
                campaign=columns.campaign[s],
                rep=columns.owner[s] or columns.first_rep.get(s),
                label=(
                    label(outcomes, at, horizon, now) if outcomes else None if censored[q] else 0
                ),
                qualified_at=min(e.stated_at for e in evidence) if evidence else None,
                won_at=min(won, default=None),
                closed_at=min(o.at for o in outcomes) if outcomes else None,
            )
        )
    return rows


def snapshots_at(
    columns: Columns, book: Playbook, since: datetime | None, instants: Sequence[datetime]
) -> list[Snapshot]:
    """The open leads among those that arrived in ``[since, now)`` at each instant, as
    :func:`~leadheat.analytics.pipeline.snapshots` replays them: every lead's events are
    folded once for all the instants."""
    moments = np.array([to_micros(at) for at in instants], dtype=np.int64)
    leads = columns.arrived(since)
    slots = np.repeat(leads, len(moments))
    at_us = np.tile(moments, len(leads))
    arrived = columns.created_us[slots] <= at_us
    slots, at_us = slots[arrived], at_us[arrived]
    judged = judge(columns, book, slots, at_us)
    open_now = judged.still_open
    labels = heat_bins()
    found = []
    for at, moment in zip(instants, moments.tolist(), strict=True):
        mine = open_now & (at_us == moment)
        temperature = judged.temperature[mine]
        bins = np.bincount(heat_bin_index(judged.heat[mine]), minlength=len(labels))
        found.append(
            Snapshot(
                at,
                int(np.count_nonzero(temperature == "hot")),
                int(np.count_nonzero(temperature == "warm")),
                int(np.count_nonzero(temperature == "cold")),
                list(zip(labels, bins.tolist(), strict=True)),
            )
        )
    return found


def _grades(book: Playbook, judged: Judged) -> list[str]:
    """:func:`~leadheat.scoring.temperature.grade` of each query: one call per distinct
    (fit, disqualified, heat digit), each with a heat standing for its digit."""
    rules = book.temperature
    standing = np.where(
        judged.heat >= rules.hot_heat,
        rules.hot_heat,
        np.where(judged.heat >= rules.warm_heat, rules.warm_heat, -math.inf),
    )
    said: dict[tuple[float, bool, float], str] = {}
    found = []
    for case in zip(
        judged.fit.tolist(), judged.disqualified.tolist(), standing.tolist(), strict=True
    ):
        if (known := said.get(case)) is None:
            known = said[case] = grade(case[0], case[1], case[2], book)
        found.append(known)
    return found


Kernels = tuple[Callable[..., tuple[Floats, Ints, Ints]], Callable[[Floats, Ints], Floats]]


def _fold_facts(
    offsets: Ints,
    at_us: Ints,
    points: Floats,
    key: npt.NDArray[np.intp],
    spans_us: Ints,
    negative: npt.NDArray[np.bool_],
    churn: npt.NDArray[np.bool_],
    slots: npt.NDArray[np.intp],
    instants: Ints,
    log2_e: float,
    two: float,
) -> tuple[Floats, Ints, Ints]:
    """Per query (sorted by slot, then instant): the heat each key gives then (negated for a
    negative part; 0 for a key with no event yet), the last interest and the last churn.

    Each lead's events are folded once, in order, as far as each of its queries asks. A key
    is :class:`~leadheat.scoring.heat.HeatKey`'s ``(whole, frac)``, and the steps are
    :meth:`HeatKey.of_event`, :meth:`HeatKey.normalised`, :meth:`HeatKey.plus` and
    :meth:`HeatKey.heat_at` written out operation by operation (one compiled function):
    keep them in step. ``two`` is 2.0 given at run time: with the constant, the compiler
    turns ``2.0**x`` into ``exp2(x)``, which rounds differently from Python's ``pow``.
    """
    n = len(slots)
    keys = len(spans_us)
    terms = np.zeros((n, keys), np.float64)
    engaged = np.full(n, NEVER, np.int64)
    churned = np.full(n, NEVER, np.int64)
    whole = np.zeros(keys, np.int64)
    frac = np.zeros(keys, np.float64)
    has = np.zeros(keys, np.bool_)
    current = -1
    event = 0
    last_engaged = NEVER
    last_churn = NEVER
    for q in range(n):
        slot = slots[q]
        now = instants[q]
        if slot != current:
            current = slot
            event = offsets[slot]
            has[:] = False
            last_engaged = NEVER
            last_churn = NEVER
        end = offsets[slot + 1]
        while event < end and at_us[event] <= now:
            at = at_us[event]
            if churn[event]:
                last_churn = max(last_churn, at)
            k = key[event]
            event += 1
            if k < 0:
                continue
            p = points[event - 1]
            if p > 0:
                last_engaged = max(last_engaged, at)
            span = spans_us[k]
            turns = at // span
            f = (at - turns * span) / span + math.log2(abs(p))  # HeatKey.of_event
            shift = math.floor(f)  # HeatKey.normalised
            f -= shift
            w = turns + shift
            if f >= 1.0:
                w, f = w + 1, 0.0
            if has[k]:  # HeatKey.plus
                if whole[k] > w or (whole[k] == w and frac[k] >= f):
                    high_w, high_f, low_w, low_f = whole[k], frac[k], w, f
                else:
                    high_w, high_f, low_w, low_f = w, f, whole[k], frac[k]
                gap = (low_w - high_w) + (low_f - high_f)
                w, f = high_w, high_f
                if gap >= -1100:
                    f = high_f + math.log1p(two**gap) * log2_e
                    shift = math.floor(f)
                    f -= shift
                    w = high_w + shift
                    if f >= 1.0:
                        w, f = w + 1, 0.0
            whole[k] = w
            frac[k] = f
            has[k] = True
        for k in range(keys):
            if has[k]:  # HeatKey.heat_at
                span = spans_us[k]
                turns = now // span
                exponent = (whole[k] - turns) + (frac[k] - (now - turns * span) / span)
                value = math.inf if exponent > 1023 else two**exponent
                terms[q, k] = -value if negative[k] else value
        engaged[q] = last_engaged
        churned[q] = last_churn
    return terms, engaged, churned


def _fsums(values: Floats, offsets: Ints) -> Floats:
    """:func:`math.fsum` of each group ``values[offsets[g]:offsets[g + 1]]``: CPython's
    algorithm (Shewchuk's exact partials, then the round-half-even correction), so a sum of
    a few heats is the replay's to the bit."""
    groups = len(offsets) - 1
    found = np.zeros(groups, np.float64)
    partials = np.empty(max(len(values), 1) + 1, np.float64)
    for g in range(groups):
        m = 0
        special = 0.0
        for i in range(offsets[g], offsets[g + 1]):
            x = values[i]
            if not math.isfinite(x):
                special += x
                continue
            j = 0
            for k in range(m):
                y = partials[k]
                if abs(x) < abs(y):
                    x, y = y, x
                hi = x + y
                lo = y - (hi - x)
                if lo != 0.0:
                    partials[j] = lo
                    j += 1
                x = hi
            m = j
            if x != 0.0:
                partials[m] = x
                m += 1
        if special != 0.0 or math.isnan(special):
            found[g] = special
            continue
        hi = 0.0
        if m > 0:
            m -= 1
            hi = partials[m]
            lo = 0.0
            while m > 0:
                x = hi
                m -= 1
                y = partials[m]
                hi = x + y
                lo = y - (hi - x)
                if lo != 0.0:
                    break
            if m > 0 and (
                (lo < 0.0 and partials[m - 1] < 0.0) or (lo > 0.0 and partials[m - 1] > 0.0)
            ):
                y = lo * 2.0
                x = hi + y
                if y == x - hi:
                    hi = x
        found[g] = hi
    return found


@functools.cache
def kernels() -> Kernels:
    """The fold and the sums compiled by numba, cached on disk as
    :func:`~leadheat.scoring.rescoring.compiled_fold` is (numba is imported here, not with
    the module)."""
    import numba

    try:
        return (
            numba.njit(cache=True, nogil=True)(_fold_facts),
            numba.njit(cache=True, nogil=True)(_fsums),
        )
    except RuntimeError as error:  # no cache directory: compile in every process
        logging.getLogger(__name__).warning("the report's fold compiles in each process: %s", error)
        return numba.njit(nogil=True)(_fold_facts), numba.njit(nogil=True)(_fsums)
