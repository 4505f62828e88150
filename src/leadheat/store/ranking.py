"""Lists of leads by heat *now*, answered from the forward-decay index.

A lead's heat key does not change as time passes, so "heat ≥ θ now" is a range scan of the
``(half_life_us, whole, frac)`` index from the key that θ has now, and "hottest first" reads
the same index backwards. With several half-lives (per-signal overrides) heat is a sum of
one part per half-life: "heat ≥ θ" needs only the leads with some part ≥ θ/K, verified
afterwards, and "hottest first" is Fagin's threshold algorithm over the per-half-life scans.

Negative signals (events worth less than 0 points) keep their own keys, under the negated
half-life, outside every scan: heat is the positive part less the negative one, so the
positive part bounds it from above. Scans read the positive keys as before, the few rows read
get their exact heat (one primary-key lookup of their negative keys), and a scan stops once
the positive bound of what is left is below what it needs.

Questions about the past (``at`` earlier than the latest stored fact) are answered from
history instead, since the state already holds what happened after.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Connection,
    RowMapping,
    Select,
    select,
    tuple_,
    type_coerce,
    union,
)
from sqlalchemy.orm import aliased

from leadheat.playbook import Playbook
from leadheat.scoring.evidence import EvidenceItem, required_fresh_until
from leadheat.scoring.fit import score_fit
from leadheat.scoring.heat import Heat, HeatKey
from leadheat.scoring.heat_arrays import fold_keys
from leadheat.scoring.lead import OutcomeRecord, status_at
from leadheat.scoring.temperature import LeadFacts, Temperature, Verdict, classify
from leadheat.store.database import reader_of
from leadheat.store.driver import CHUNK, select_tuples_in
from leadheat.store.fields import lead_attributes
from leadheat.store.history import latest_fact_at
from leadheat.store.models import Event, EvidenceRow, HeatKeyRow, Lead, LeadState, Outcome
from leadheat.times import from_micros

MICRO = timedelta(microseconds=1)
PAGE = 256


@dataclass(frozen=True)
class Ranked:
    """A lead's place in a list: its heat now and the verdict on its temperature."""

    lead_id: int
    heat: float
    verdict: Verdict
    facts: LeadFacts
    status: str


def hot_leads(
    connection: Connection, book: Playbook, now: datetime, limit: int | None = None
) -> list[Ranked]:
    """Hot leads that are not already won, hottest first."""
    return list_leads(connection, book, now, limit, Temperature.HOT, exclude_won=True)


def unowned_hot_leads(
    connection: Connection, book: Playbook, now: datetime, limit: int | None = None
) -> list[Ranked]:
    """Hot leads not yet won that nobody owns, hottest first, from the heat index (as of
    the latest facts: the dashboard's question is about now). The leads hot enough by heat
    are read from the top and joined to their lead rows, so a team whose hot leads all have
    owners reads a few index entries, and one that uses no owners reads what Team reads."""
    return _hot_from_index(connection, book, now, limit, exclude_won=True, unowned=True)


def list_leads(
    connection: Connection,
    book: Playbook,
    now: datetime,
    limit: int | None = None,
    temperature: Temperature | None = None,
    exclude_won: bool = False,
) -> list[Ranked]:
    """Leads hottest first, optionally of one temperature; from the index when ``now`` is
    at or after the latest stored fact, else from history."""
    latest = latest_fact_at(reader_of(connection))
    if latest is not None and now < latest:
        ranked = _from_history(connection, book, now)
        chosen = [
            r
            for r in ranked
            if (temperature is None or r.verdict.temperature is temperature)
            and not (exclude_won and r.status == "won")
        ]
        return chosen[:limit] if limit is not None else chosen
    if temperature is Temperature.HOT:
        return _hot_from_index(connection, book, now, limit, exclude_won)
    if temperature is Temperature.WARM:
        return _warm_from_index(connection, book, now, limit)
    chosen = []
    for page in _pages_by_heat(connection, book, now):
        for item in _judge(connection, book, now, page):
            if temperature is None or item.verdict.temperature is temperature:
                chosen.append(item)
                if limit is not None and len(chosen) >= limit:
                    return chosen
    return chosen


def iter_leads(
    connection: Connection,
    book: Playbook,
    now: datetime,
    order: str = "heat",
    temperature: Temperature | None = None,
) -> Iterator[Ranked]:
    """Every lead (of one temperature, if given), hottest or best-fitting first, lazily: a
    page of the API reads only as far as it needs."""
    latest = latest_fact_at(reader_of(connection))
    if latest is not None and now < latest:
        ranked = _from_history(connection, book, now)
        if order == "fit":
            ranked.sort(key=lambda r: (-r.facts.fit, r.lead_id))
        yield from (
            r for r in ranked if temperature is None or r.verdict.temperature is temperature
        )
        return
    if order in ("fit", "probability"):
        column = LeadState.fit if order == "fit" else LeadState.probability
        offset = 0
        while True:
            ids = [
                row[0]
                for row in connection.execute(
                    select(LeadState.lead_id)
                    .order_by(column.desc().nulls_last(), LeadState.lead_id)
                    .limit(PAGE)
                    .offset(offset)
                )
            ]
            if not ids:
                return
            offset += len(ids)
            for item in _judge(connection, book, now, _heats(connection, now, ids)):
                if temperature is None or item.verdict.temperature is temperature:
                    yield item
    if temperature in (Temperature.HOT, Temperature.WARM):
        yield from list_leads(connection, book, now, None, temperature)
        return
    for page in _pages_by_heat(connection, book, now):
        for item in _judge(connection, book, now, page):
            if temperature is None or item.verdict.temperature is temperature:
                yield item


def heat_at_least(book: Playbook, theta: float, now: datetime) -> list[Select[int]]:
    """Leads that *may* have heat ≥ θ now: some part ≥ θ/K. A union of index range scans."""
    share = theta / len(book.positive_half_lives)
    parts = []
    for span in book.positive_half_lives:
        key = HeatKey.threshold(share, now, span)
        parts.append(
            select(HeatKeyRow.lead_id).where(
                HeatKeyRow.half_life_us == span // MICRO,
                tuple_(HeatKeyRow.whole, HeatKeyRow.frac) >= tuple_(key.whole, key.frac),
            )
        )
    return parts


def _union(parts: list[Select[int]]) -> Select[int] | CompoundSelect[int]:
    return parts[0] if len(parts) == 1 else union(*parts)


def _hot_from_index(
    connection: Connection,
    book: Playbook,
    now: datetime,
    limit: int | None,
    exclude_won: bool,
    unowned: bool = False,
) -> list[Ranked]:
    if limit is not None and len(book.positive_half_lives) == 1:
        return _hottest_first(connection, book, now, limit, exclude_won, unowned)
    candidates = _union(heat_at_least(book, book.temperature.hot_heat, now)).subquery()
    query = select(candidates.c.lead_id).join(LeadState, LeadState.lead_id == candidates.c.lead_id)
    query = query.where(LeadState.qualified.is_(True), LeadState.evidence_until > now)
    if exclude_won:
        query = query.where(LeadState.status != "won")
    if unowned:
        query = query.join(Lead, Lead.id == candidates.c.lead_id).where(Lead.owner.is_(None))
    ids = [row[0] for row in connection.execute(query)]
    judged = [
        r
        for r in _judge(connection, book, now, _heats(connection, now, ids))
        if r.verdict.temperature is Temperature.HOT
    ]
    judged.sort(key=lambda r: (-r.heat, r.lead_id))
    return judged[:limit] if limit is not None else judged


def _hottest_first(
    connection: Connection,
    book: Playbook,
    now: datetime,
    limit: int,
    exclude_won: bool,
    unowned: bool = False,
) -> list[Ranked]:
    """The ``limit`` hottest hot leads with one half-life: the heat index read backwards from
    the top, joined to the facts a hot lead must have, and judged from the same rows, a page
    at a time, stopping at ``limit``. A top-50 reads a few hundred index entries however
    many leads are hot: the first page asks for little more than ``limit``. ``unowned``
    keeps the leads nobody owns (a join to their lead rows by key)."""
    (span,) = book.positive_half_lives
    floor = HeatKey.threshold(book.temperature.hot_heat, now, span)
    query = (
        select(HeatKeyRow.whole, HeatKeyRow.frac, LeadState)
        .join(LeadState, LeadState.lead_id == HeatKeyRow.lead_id)
        .where(
            HeatKeyRow.half_life_us == span // MICRO,
            tuple_(HeatKeyRow.whole, HeatKeyRow.frac) >= tuple_(floor.whole, floor.frac),
            LeadState.qualified.is_(True),
            LeadState.evidence_until > now,
        )
        .order_by(HeatKeyRow.whole.desc(), HeatKeyRow.frac.desc(), HeatKeyRow.lead_id.desc())
    )
    if exclude_won:
        query = query.where(LeadState.status != "won")
    if unowned:
        query = query.join(Lead, Lead.id == HeatKeyRow.lead_id).where(Lead.owner.is_(None))
    chosen: list[Ranked] = []
    after: tuple[int, float, int] | None = None
    size = limit + 16
    while True:
        page = query
        if after is not None:
            page = page.where(
                tuple_(HeatKeyRow.whole, HeatKeyRow.frac, HeatKeyRow.lead_id) < tuple_(*after)
            )
        rows = connection.execute(page.limit(size)).mappings().all()
        lowered = (
            _pulled_down(connection, now, [row["lead_id"] for row in rows])
            if book.has_negative_signals
            else {}
        )
        bound = 0.0  # the positive part of the last row read: no lead after it is hotter
        for row in rows:
            bound = HeatKey(row["whole"], row["frac"]).heat_at(now, span)
            heat = bound - lowered.get(row["lead_id"], 0.0)
            facts, status = _facts_of(row)
            verdict = classify(heat, facts, now, book)
            if verdict.temperature is Temperature.HOT:
                chosen.append(Ranked(row["lead_id"], heat, verdict, facts, status))
        chosen.sort(key=lambda r: (-r.heat, r.lead_id))
        if len(rows) < size:
            break
        last = rows[-1]
        after = (last["whole"], last["frac"], last["lead_id"])
        # Enough once the page ends below the last one chosen: leads of equal heat are then
        # all in, and the ties go to the lower lead id as in every other list.
        if len(chosen) >= limit and bound < chosen[limit - 1].heat:
            break
        size = min(4 * size, 4096)
    return chosen[:limit]


def _warm_from_index(
    connection: Connection, book: Playbook, now: datetime, limit: int | None
) -> list[Ranked]:
    by_heat = heat_at_least(book, book.temperature.warm_heat, now)
    window_start = now - book.temperature.warm_window
    recent = select(LeadState.lead_id).where(LeadState.last_engaged_at >= window_start)
    ids: list[int] = sorted({row[0] for row in connection.execute(union(*by_heat, recent))})
    judged = [
        r
        for r in _judge(connection, book, now, _heats(connection, now, ids))
        if r.verdict.temperature is Temperature.WARM
    ]
    judged.sort(key=lambda r: (-r.heat, r.lead_id))
    return judged[:limit] if limit is not None else judged


def judge_leads(
    connection: Connection,
    book: Playbook,
    now: datetime,
    lead_ids: Sequence[int],
    *,
    explain: bool = True,
) -> dict[int, Ranked]:
    """Heat and temperature now of these leads, from their state (leads without one, such
    as a lead being created, are left out); ``explain=False`` leaves the verdicts' reasons
    empty, for a caller that shows none.

    Two queries per :data:`CHUNK` leads, their states and their heat keys, through statements
    built once: every write that reacts judges its leads before and after it."""
    ids = sorted(set(lead_ids))
    facts = _stored_facts(connection, ids)
    heats = _heats(connection, now, [lead for lead in ids if lead in facts])
    judged = {}
    for lead_id, heat in heats:
        lead_facts, status = facts[lead_id]
        judged[lead_id] = Ranked(
            lead_id,
            heat,
            classify(heat, lead_facts, now, book, explain=explain),
            lead_facts,
            status,
        )
    return judged


_STATES_OF = (
    "SELECT lead_id, qualified, fit, disqualified, evidence_until, last_engaged_at, "
    "churned_at, probability, status FROM lead_states WHERE lead_id IN"
)
_KEYS_OF = "SELECT lead_id, half_life_us, whole, frac FROM heat_keys WHERE lead_id IN"


def _stored_facts(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[LeadFacts, str]]:
    """The stored facts and status of these leads (those with a state), read as plain
    tuples: every write that reacts reads them twice, and result rows with their type
    processing cost more than the query."""
    return {
        lead_id: (
            LeadFacts(
                qualified=bool(qualified),
                fit=fit,
                disqualified=bool(disqualified),
                evidence_until=None if evidence_until is None else from_micros(evidence_until),
                last_engaged_at=None if engaged is None else from_micros(engaged),
                churned_at=None if churned is None else from_micros(churned),
                probability=probability,
            ),
            status,
        )
        for (
            lead_id,
            qualified,
            fit,
            disqualified,
            evidence_until,
            engaged,
            churned,
            probability,
            status,
        ) in select_tuples_in(connection, _STATES_OF, ids)
    }


def _heats(connection: Connection, now: datetime, ids: Sequence[int]) -> list[tuple[int, float]]:
    keys: dict[int, Heat] = defaultdict(Heat)
    for lead_id, span_us, whole, frac in select_tuples_in(connection, _KEYS_OF, ids):
        keys[lead_id].set_row(span_us, whole, frac)
    return [(lead_id, keys[lead_id].at(now) if lead_id in keys else 0.0) for lead_id in ids]


def _pulled_down(connection: Connection, now: datetime, ids: Sequence[int]) -> dict[int, float]:
    """What the negative signals take off these leads' heat now (leads without: left out)."""
    keys: dict[int, Heat] = defaultdict(Heat)
    for start in range(0, len(ids), CHUNK):
        for lead_id, span_us, whole, frac in connection.execute(
            select(
                HeatKeyRow.lead_id, HeatKeyRow.half_life_us, HeatKeyRow.whole, HeatKeyRow.frac
            ).where(HeatKeyRow.lead_id.in_(ids[start : start + CHUNK]), HeatKeyRow.half_life_us < 0)
        ):
            keys[lead_id].set_row(span_us, whole, frac)
    return {lead_id: heat.pulled_down_at(now) for lead_id, heat in keys.items()}


def _pages_by_heat(
    connection: Connection, book: Playbook, now: datetime
) -> Iterator[list[tuple[int, float]]]:
    """Every lead in exact descending order of heat now, a page at a time.

    Fagin's threshold algorithm: read each half-life's index in descending key order; a lead
    seen anywhere gets its exact total; it can be emitted once its total is at least the sum
    of the last heats read from each index, which bounds every lead not yet seen (negative
    signals only lower a lead's heat below that bound). Then the leads without a positive
    key: heat 0 without any key, then those whose negative signals put them below 0, with
    those of the scanned leads whose total is below 0.
    """
    spans = book.positive_half_lives
    cursors: dict[timedelta, tuple[int, float, int] | None] = dict.fromkeys(spans)
    exhausted: set[timedelta] = set()
    bound: dict[timedelta, float] = dict.fromkeys(spans, math.inf)
    seen: set[int] = set()
    pending: list[tuple[float, int]] = []
    while True:
        for span in spans:
            if span in exhausted:
                continue
            query = select(HeatKeyRow.whole, HeatKeyRow.frac, HeatKeyRow.lead_id).where(
                HeatKeyRow.half_life_us == span // MICRO
            )
            after = cursors[span]
            if after is not None:
                query = query.where(
                    tuple_(HeatKeyRow.whole, HeatKeyRow.frac, HeatKeyRow.lead_id) < tuple_(*after)
                )
            rows = connection.execute(
                query.order_by(
                    HeatKeyRow.whole.desc(), HeatKeyRow.frac.desc(), HeatKeyRow.lead_id.desc()
                ).limit(PAGE)
            ).all()
            if len(rows) < PAGE:
                exhausted.add(span)
            if rows:
                cursors[span] = tuple(rows[-1])  # type: ignore[assignment]
                bound[span] = HeatKey(rows[-1][0], rows[-1][1]).heat_at(now, span)
            if span in exhausted:
                bound[span] = 0.0
            fresh = [row[2] for row in rows if row[2] not in seen]
            seen.update(fresh)
            for lead_id, heat in _heats(connection, now, fresh):
                heapq.heappush(pending, (-heat, lead_id))
        threshold = math.fsum(bound.values())
        page = []
        while pending and -pending[0][0] >= threshold:
            negative, lead_id = heapq.heappop(pending)
            page.append((lead_id, -negative))
        if page:
            yield page
        if len(exhausted) == len(spans) and (not pending or -pending[0][0] < threshold):
            break
    cold = select(LeadState.lead_id).where(LeadState.lead_id.not_in(select(HeatKeyRow.lead_id)))
    ids = [row[0] for row in connection.execute(cold.order_by(LeadState.lead_id))]
    for start in range(0, len(ids), PAGE):
        yield [(lead_id, 0.0) for lead_id in ids[start : start + PAGE]]
    if not book.has_negative_signals:
        return
    positive = aliased(HeatKeyRow)
    only_negative = select(HeatKeyRow.lead_id).where(  # a key lookup per lead pulled down
        HeatKeyRow.half_life_us < 0,
        ~select(positive.lead_id)
        .where(positive.lead_id == HeatKeyRow.lead_id, positive.half_life_us > 0)
        .exists(),
    )
    below = sorted({row[0] for row in connection.execute(only_negative)})
    left = [(-negative, lead_id) for negative, lead_id in pending]
    left += [(heat, lead_id) for lead_id, heat in _heats(connection, now, below)]
    left.sort(key=lambda item: (-item[0], item[1]))
    for start in range(0, len(left), PAGE):
        yield [(lead_id, heat) for heat, lead_id in left[start : start + PAGE]]


def _judge(
    connection: Connection, book: Playbook, now: datetime, heats: Sequence[tuple[int, float]]
) -> list[Ranked]:
    """Temperature of each ``(lead_id, heat)`` from the stored facts, in the given order."""
    facts = _stored_facts(connection, [lead_id for lead_id, _ in heats])
    ranked = []
    for lead_id, heat in heats:
        lead_facts, status = facts[lead_id]
        ranked.append(
            Ranked(lead_id, heat, classify(heat, lead_facts, now, book), lead_facts, status)
        )
    return ranked


def _facts_of(row: RowMapping) -> tuple[LeadFacts, str]:
    """A lead's stored facts and status, from a row holding its ``lead_states`` columns."""
    return (
        LeadFacts(
            qualified=row["qualified"],
            fit=row["fit"],
            disqualified=row["disqualified"],
            evidence_until=_instant(row["evidence_until"]),
            last_engaged_at=_instant(row["last_engaged_at"]),
            churned_at=_instant(row["churned_at"]),
            probability=row["probability"],
        ),
        row["status"],
    )


def _instant(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return from_micros(value)  # type: ignore[arg-type]


def _from_history(connection: Connection, book: Playbook, now: datetime) -> list[Ranked]:
    """Every lead's temperature at a past ``now``, from the events, evidence and outcomes
    known by then (attributes as they are today). Scans history: time travel is rare."""
    rows = connection.execute(
        select(
            Event.lead_id,
            Event.type,
            type_coerce(Event.occurred_at, BigInteger),
            Event.properties,
        ).where(Event.occurred_at <= now)
    ).all()
    heats: dict[int, Heat] = defaultdict(Heat)
    engaged_at: dict[int, int] = {}
    churned_at: dict[int, int] = {}
    churn_types = set(book.temperature.churn_events)
    if rows:
        lead_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        at_us = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
        points = np.fromiter(
            (book.points_for(r[1], r[3]) for r in rows), dtype=np.float64, count=len(rows)
        )
        spans = np.fromiter(
            (book.half_life_for(r[1]) // MICRO for r in rows), dtype=np.int64, count=len(rows)
        )
        signed = np.where(points < 0, -spans, spans)  # negative: a negative signal's part
        for span in np.unique(signed[points != 0]).tolist():
            mask = (signed == span) & (points != 0)
            leads, whole, frac = fold_keys(
                lead_ids[mask], at_us[mask], np.abs(points[mask]), abs(span)
            )
            for lead, w, f in zip(leads.tolist(), whole.tolist(), frac.tolist(), strict=True):
                heats[lead].set_row(span, w, f)
        for (lead, event_type, at, _), worth in zip(rows, points.tolist(), strict=True):
            if worth > 0:
                engaged_at[lead] = max(engaged_at.get(lead, at), at)
            if event_type in churn_types:
                churned_at[lead] = max(churned_at.get(lead, at), at)
    evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
    for said in connection.execute(select(EvidenceRow).where(EvidenceRow.stated_at <= now)):
        evidence[said.lead_id].append(
            EvidenceItem(said.kind, said.value, said.stated_at, said.source)
        )
    outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
    for done in connection.execute(select(Outcome).where(Outcome.occurred_at <= now)):
        outcomes[done.lead_id].append(OutcomeRecord(done.outcome, done.occurred_at, done.reason))
    ranked = []
    leads_query = select(Lead).where(Lead.merged_into_id.is_(None), Lead.created_at <= now)
    for lead in connection.execute(leads_query).mappings():
        lead_id = lead["id"]
        fit = score_fit(lead_attributes(lead), book.fit.rules, book.fit.qualified_at)
        status = status_at(outcomes[lead_id], now)
        facts = LeadFacts(
            qualified=fit.qualified and status != "disqualified",
            fit=fit.points,
            disqualified=bool(fit.disqualified_by) or status == "disqualified",
            evidence_until=required_fresh_until(
                evidence[lead_id], book.temperature.hot_requires, book.evidence.ttl
            ),
            last_engaged_at=_instant(engaged_at.get(lead_id)),
            churned_at=_instant(churned_at.get(lead_id)),
        )
        heat = heats[lead_id].at(now) if lead_id in heats else 0.0
        ranked.append(Ranked(lead_id, heat, classify(heat, facts, now, book), facts, status))
    ranked.sort(key=lambda r: (-r.heat, r.lead_id))
    return ranked
