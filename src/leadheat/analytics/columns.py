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
from leadheat.predict.asof import decision_time, label
from leadheat.scoring.evidence import EvidenceItem, required_fresh_until
from leadheat.scoring.fit import fit_summary
from leadheat.scoring.lead import OutcomeRecord, status_at
from leadheat.scoring.temperature import grade
from leadheat.store.driver import select_all
from leadheat.store.models import COMMON_FIELDS
from leadheat.times import from_micros, to_micros

NEVER = np.iinfo(np.int64).min
"""An instant that is not: no interest signal, no churn (events may precede 1970)."""
_LOG2_E = 1 / math.log(2)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Lead:
    """What a lead is, whatever the instant: its fit and the attributes the report groups by."""

    lead_id: int
    created_at: datetime
    fit: float
    qualified: bool
    disqualified: bool
    source: Any
    campaign: Any
    owner: Any


@dataclass(frozen=True)
class Columns:
    """Every lead not merged away, ids ascending, and what the store knew of it by ``now``:
    its events as columns (lead ``i``'s are ``offsets[i]:offsets[i + 1]``, in the replay's
    order), and its evidence, outcomes, first touch and SLA starts as rows."""

    now: datetime
    leads: list[Lead]
    lead_ids: Ints
    created_us: Ints
    fit_qualified: npt.NDArray[np.bool_]
    fit_disqualified: npt.NDArray[np.bool_]
    offsets: Ints
    at_us: Ints
    points: Floats
    key: npt.NDArray[np.intp]
    """Each event's heat key: an index into ``spans_us``/``negative``; ``-1``: no heat."""
    churn: npt.NDArray[np.bool_]
    spans_us: Ints
    negative: npt.NDArray[np.bool_]
    evidence: dict[int, list[EvidenceItem]]
    """By lead slot (its index in ``leads``), only leads with evidence."""
    outcomes: dict[int, list[OutcomeRecord]]
    """By lead slot, in time order, only leads with outcomes."""
    first_touch: dict[int, tuple[datetime, str | None]]
    """By lead slot: the first touch and who made it."""
    sla_starts: dict[int, list[datetime]]
    """By lead slot: when each of its SLA clocks started."""

    def slot_of(self, lead_ids: Sequence[int]) -> npt.NDArray[np.intp]:
        """The slots of these leads (they must be among :attr:`lead_ids`)."""
        return np.searchsorted(self.lead_ids, np.asarray(lead_ids, dtype=np.int64))

    def fold(self, slots: npt.NDArray[np.intp], at_us: Ints) -> Folded:
        """Each lead ``slots[q]``'s heat and interest at ``at_us[q]``, from its events by then."""
        order = np.lexsort((at_us, slots))
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

    def arrived(self, since: datetime | None) -> npt.NDArray[np.intp]:
        """The slots of the leads that arrived in ``[since, now)``."""
        wanted = self.created_us < to_micros(self.now)
        if since is not None:
            wanted &= self.created_us >= to_micros(since)
        return np.flatnonzero(wanted)

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


def load_columns(connection: Connection, book: Playbook, now: datetime) -> Columns:
    """Every lead not merged away, with only what the store knew by ``now``."""
    now_us = to_micros(now)
    rule_fields = {rule.field for rule in book.fit.rules}
    rows = select_all(
        connection,
        f"SELECT id, created_at, attributes, {', '.join(COMMON_FIELDS)} FROM leads "
        "WHERE merged_into_id IS NULL ORDER BY id",
    )
    fits: dict[tuple[Any, ...], tuple[float, bool, bool]] = {}
    leads = []
    for lead_id, created_us, said, *common in rows:
        attributes = json.loads(said) if isinstance(said, str) else dict(said or {})
        for name, value in zip(COMMON_FIELDS, common, strict=True):
            if value is not None:
                attributes[name] = value
        seen = tuple(attributes.get(name) for name in sorted(rule_fields))
        fit = fits.get(seen)
        if fit is None:
            fit = fits[seen] = fit_summary(attributes, book.fit.rules, book.fit.qualified_at)
        leads.append(
            Lead(
                lead_id,
                from_micros(created_us),
                *fit,
                attributes.get("source"),
                attributes.get("campaign"),
                attributes.get("owner"),
            )
        )
    lead_ids = np.array([lead.lead_id for lead in leads], dtype=np.int64)
    created_us = np.array([to_micros(lead.created_at) for lead in leads], dtype=np.int64)

    def slot(lead_id: int) -> int | None:
        found = int(np.searchsorted(lead_ids, lead_id))
        return found if found < len(lead_ids) and lead_ids[found] == lead_id else None

    ruled = sorted(name for name, signal in book.signals.items() if signal.rules)
    properties = (
        f"CASE WHEN type IN ({', '.join('?' * len(ruled))}) THEN properties END"
        if ruled
        else "NULL"
    )
    events = select_all(
        connection,
        f"SELECT lead_id, occurred_at, id, type, {properties} FROM events WHERE occurred_at <= ?",
        *ruled,
        now_us,
    )
    event_leads = np.fromiter((e[0] for e in events), dtype=np.int64, count=len(events))
    at_us = np.fromiter((e[1] for e in events), dtype=np.int64, count=len(events))
    ids = np.fromiter((e[2] for e in events), dtype=np.int64, count=len(events))
    order = np.lexsort((ids, at_us, event_leads))
    event_slots = np.searchsorted(lead_ids, event_leads[order])
    kept = (event_slots < len(lead_ids)) & (
        lead_ids[np.minimum(event_slots, max(len(lead_ids) - 1, 0))] == event_leads[order]
    )
    order, event_slots = order[kept], event_slots[kept]
    type_codes: dict[str, int] = {}
    codes = np.fromiter(
        (type_codes.setdefault(e[3], len(type_codes)) for e in events),
        dtype=np.intp,
        count=len(events),
    )[order]
    types = list(type_codes)
    points = np.array([book.points_for(name) for name in types], dtype=np.float64)[codes]
    if ruled:
        ruled_codes = np.array([type_codes.get(name, -1) for name in ruled], dtype=np.intp)
        for index in np.flatnonzero(np.isin(codes, ruled_codes)).tolist():
            event = events[order[index]]
            said = json.loads(event[4]) if isinstance(event[4], str) else event[4]
            points[index] = book.points_for(event[3], said)
    half_life = np.array([book.half_life_for(name) // timedelta(microseconds=1) for name in types])
    signed = np.where(points < 0, -1, 1) * half_life[codes] if len(codes) else np.zeros(0, int)
    spans, key = np.unique(signed, return_inverse=True)
    key = np.where(points == 0, -1, key.reshape(-1)).astype(np.intp)
    churn_types = set(book.temperature.churn_events)
    churn = np.array([name in churn_types for name in types], dtype=np.bool_)[codes]
    offsets = np.zeros(len(lead_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(event_slots, minlength=len(lead_ids)), out=offsets[1:])

    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    for lead_id, kind, value, stated_us, source in select_all(
        connection,
        "SELECT lead_id, kind, value, stated_at, source FROM evidence WHERE stated_at <= ? "
        "ORDER BY id",
        now_us,
    ):
        if (found := slot(lead_id)) is not None:
            evidence[found].append(EvidenceItem(kind, value, from_micros(stated_us), source))
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    for lead_id, outcome, at, reason in select_all(
        connection,
        "SELECT lead_id, outcome, occurred_at, reason FROM outcomes WHERE occurred_at <= ? "
        "ORDER BY occurred_at, id",
        now_us,
    ):
        if (found := slot(lead_id)) is not None:
            outcomes[found].append(OutcomeRecord(outcome, from_micros(at), reason))
    first_touch: dict[int, tuple[int, str | None]] = {}
    for lead_id, at, rep in select_all(
        connection,
        "SELECT lead_id, occurred_at, rep FROM touches WHERE occurred_at <= ? ORDER BY id",
        now_us,
    ):
        found = slot(lead_id)
        if found is not None and (found not in first_touch or at < first_touch[found][0]):
            first_touch[found] = (at, rep)
    starts: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, started in select_all(
        connection, "SELECT lead_id, started_at FROM sla_clocks WHERE started_at <= ?", now_us
    ):
        if (found := slot(lead_id)) is not None:
            starts[found].append(from_micros(started))
    return Columns(
        now=now,
        leads=leads,
        lead_ids=lead_ids,
        created_us=created_us,
        fit_qualified=np.array([lead.qualified for lead in leads], dtype=np.bool_),
        fit_disqualified=np.array([lead.disqualified for lead in leads], dtype=np.bool_),
        offsets=offsets,
        at_us=at_us[order],
        points=points,
        key=key,
        churn=churn,
        spans_us=np.abs(spans).astype(np.int64),
        negative=spans < 0,
        evidence=dict(evidence),
        outcomes=dict(outcomes),
        first_touch={k: (from_micros(at), rep) for k, (at, rep) in first_touch.items()},
        sla_starts=dict(starts),
    )


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
    status: list[str]


def judge(columns: Columns, book: Playbook, slots: npt.NDArray[np.intp], at_us: Ints) -> Judged:
    """:func:`~leadheat.scoring.temperature.classify` of lead ``slots[q]`` at ``at_us[q]``,
    as :func:`~leadheat.scoring.lead.facts_at` replays it (no model probability), for many
    queries at once."""
    rules = book.temperature
    folded = columns.fold(slots, at_us)
    status = ["open"] * len(slots)
    for q in np.flatnonzero(np.isin(slots, list(columns.outcomes))).tolist():
        status[q] = columns.status(int(slots[q]), from_micros(int(at_us[q])))
    dq_status = np.array([s == "disqualified" for s in status], dtype=bool)
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
    fit = np.array([lead.fit for lead in columns.leads], dtype=np.float64)[slots]
    return Judged(temperature, fit, heat, engaged, qualified, disqualified, status)


def _us(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def decision_rows(
    columns: Columns, book: Playbook, horizon: timedelta, since: datetime | None
) -> list[Decided]:
    """Every lead that arrived in ``[since, now)`` at its decision time, as
    :meth:`~leadheat.analytics.decisions.Story.decisions` finds it."""
    now = columns.now
    slots = columns.arrived(since)
    decided_at: list[datetime] = []
    for s in slots.tolist():
        lead = columns.leads[s]
        touch = columns.first_touch.get(s)
        decided_at.append(
            decision_time(lead.created_at, None if touch is None else touch[0],
                          columns.outcomes.get(s, ()))
        )  # fmt: skip
    at_us = np.array([to_micros(at) for at in decided_at], dtype=np.int64)
    judged = judge(columns, book, slots, at_us)
    grades = _grades(book, judged)
    heats = judged.heat.tolist()
    temperatures = judged.temperature.tolist()
    engaged = judged.engaged.tolist()
    rows = []
    for q, s in enumerate(slots.tolist()):
        lead = columns.leads[s]
        at = decided_at[q]
        touch = columns.first_touch.get(s)
        response = None
        if touch is not None and at == touch[0]:
            begun = [started for started in columns.sla_starts.get(s, ()) if started <= at]
            start = max(begun) if begun else None
            if start is None:
                start = lead.created_at if engaged[q] == NEVER else from_micros(engaged[q])
            response = at - max(start, lead.created_at)
        outcomes = columns.outcomes.get(s, ())
        evidence = columns.evidence.get(s, ())
        won = [o.at for o in outcomes if o.outcome == "won"]
        rows.append(
            Decided(
                lead_id=lead.lead_id,
                created_at=lead.created_at,
                decided_at=at,
                touched=response is not None,
                response=response,
                temperature=temperatures[q],
                grade=grades[q],
                heat=heats[q],
                source=text_of(lead.source),
                campaign=text_of(lead.campaign),
                rep=text_of(lead.owner) or (None if touch is None else touch[1]),
                label=label(outcomes, at, horizon, now),
                qualified_at=min((e.stated_at for e in evidence), default=None),
                won_at=min(won, default=None),
                closed_at=min((o.at for o in outcomes), default=None),
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
    open_now = np.array([s == "open" for s in judged.status], dtype=bool)
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
