"""A lead's whole score from its history, as of any ``now``: the reference every faster path
(the stored state, the index, bulk re-scoring) must agree with, and the source of explanations.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadheat.playbook import Playbook
from leadheat.scoring.evidence import (
    EvidenceItem,
    EvidenceState,
    EvidenceStatus,
    assess,
    required_fresh_until,
)
from leadheat.scoring.fit import FitResult, score_fit
from leadheat.scoring.heat import Engagement, Heat
from leadheat.scoring.temperature import LeadFacts, Temperature, classify, forecast, grade
from leadheat.scoring.wording import format_number
from leadheat.times import relative

OUTCOMES = ("won", "lost", "disqualified")


@dataclass(frozen=True)
class EventRecord:
    type: str
    at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    event_id: str = ""


@dataclass(frozen=True)
class OutcomeRecord:
    outcome: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class LeadHistory:
    """Everything scoring reads about one lead."""

    attributes: Mapping[str, Any]
    events: Sequence[EventRecord] = ()
    evidence: Sequence[EvidenceItem] = ()
    outcomes: Sequence[OutcomeRecord] = ()


@dataclass(frozen=True)
class SignalHeat:
    """The heat one event type contributes now, for the explanation. A type whose events
    are worth less than 0 points (a negative signal, or a rule such as an unsubscribe link)
    has a second entry for those, with ``heat < 0``: what pulls the lead's heat down."""

    type: str
    events: int
    heat: float
    last_at: datetime

    @property
    def pulls_down(self) -> bool:
        return self.heat < 0


@dataclass(frozen=True)
class LeadScore:
    """Every number the product shows for a lead at one instant, with its reasons."""

    at: datetime
    heat: float
    signals: tuple[SignalHeat, ...]
    fit: FitResult
    qualified: bool
    status: str
    temperature: Temperature
    reason: str
    grade: str
    evidence: dict[str, EvidenceStatus]
    hot_until: datetime | None
    warm_until: datetime | None
    previously_engaged: bool
    last_engaged_at: datetime | None
    events_seen: int
    probability: float | None = None
    hot_from: datetime | None = None
    """Not hot now, but hot by itself then, as a negative signal fades (:class:`Forecast`)."""

    @property
    def pulled_down(self) -> tuple[SignalHeat, ...]:
        """The negative signals and what each takes off heat now, most first."""
        return tuple(sorted((s for s in self.signals if s.heat < 0), key=lambda s: s.heat))


def evidence_in(
    values: Mapping[str, Any], stated_at: datetime, book: Playbook, source: str
) -> list[EvidenceItem]:
    """BANT evidence carried by an event's properties or a lead's attributes.

    >>> from datetime import UTC
    >>> from leadheat.playbook import Playbook
    >>> [i.kind for i in evidence_in({"budget": "10k", "url": "/"},
    ...      datetime(2024, 1, 1, tzinfo=UTC), Playbook(), "form")]
    ['budget']
    """
    names = book.evidence_names
    return [
        EvidenceItem(names[name], str(value), stated_at, source)
        for name, value in values.items()
        if name in names and value is not None and str(value).strip()
    ]


def status_at(outcomes: Sequence[OutcomeRecord], now: datetime) -> str:
    """``open`` or the latest outcome recorded by ``now``."""
    known = [o for o in outcomes if o.at <= now]
    return max(known, key=lambda o: o.at).outcome if known else "open"


def facts_at(
    history: LeadHistory,
    book: Playbook,
    now: datetime,
    probability: float | None = None,
    fit: FitResult | None = None,
) -> tuple[Heat, LeadFacts, FitResult, str]:
    """Heat and the facts temperature needs, from the history known at ``now`` (and the
    model's stored probability, which history cannot give). ``fit``: the lead's fit, when the
    caller replays one lead at many instants (fit does not change with time)."""
    heat = Heat()
    last_engaged: datetime | None = None
    churned: datetime | None = None
    churn_types = set(book.temperature.churn_events)
    for event in history.events:
        if event.at > now:
            continue
        points = book.points_for(event.type, event.properties)
        if points != 0:  # less than 0: a negative signal, which pulls heat down
            heat.add(Engagement(event.at, points, book.half_life_for(event.type)))
        if points > 0:  # interest: only what adds heat
            last_engaged = event.at if last_engaged is None else max(last_engaged, event.at)
        if event.type in churn_types:
            churned = event.at if churned is None else max(churned, event.at)
    if fit is None:
        fit = score_fit(history.attributes, book.fit.rules, book.fit.qualified_at)
    status = status_at(history.outcomes, now)
    known_evidence = [item for item in history.evidence if item.stated_at <= now]
    facts = LeadFacts(
        qualified=fit.qualified and status != "disqualified",
        fit=fit.points,
        disqualified=bool(fit.disqualified_by) or status == "disqualified",
        evidence_until=required_fresh_until(
            known_evidence, book.temperature.hot_requires, book.evidence.ttl
        ),
        last_engaged_at=last_engaged,
        churned_at=churned,
        probability=probability,
    )
    return heat, facts, fit, status


def facts_through(
    history: LeadHistory, book: Playbook, instants: Sequence[datetime], fit: FitResult
) -> Iterator[tuple[Heat, LeadFacts]]:
    """:func:`facts_at` at each of ``instants`` (in ascending order), in one pass over the
    events: each event is folded once, in the order ``facts_at`` folds it (the history's
    order, which is time order), so the heat keys are the same to the bit. The yielded
    ``Heat`` goes on changing after the next instant is asked for: use it at once.

    Keep in step with :func:`facts_at` (the follow-up state's tests compare the two paths).
    """
    heat = Heat()
    last_engaged: datetime | None = None
    churned: datetime | None = None
    churn_types = set(book.temperature.churn_events)
    events = sorted(history.events, key=lambda event: event.at)
    required, ttl = book.temperature.hot_requires, book.evidence.ttl
    never_said = required_fresh_until((), required, ttl)
    facts: LeadFacts | None = None
    worth: dict[str, tuple[float, timedelta]] = {}
    """Points and half-life by event type, for events without properties (most of them)."""
    index = 0
    for now in instants:
        changed = False
        adding: list[tuple[datetime, float, timedelta]] = []
        while index < len(events) and events[index].at <= now:
            event = events[index]
            index += 1
            if event.properties:
                points = book.points_for(event.type, event.properties)
                span = book.half_life_for(event.type)
            elif event.type in worth:
                points, span = worth[event.type]
            else:
                points = book.points_for(event.type, event.properties)
                span = book.half_life_for(event.type)
                worth[event.type] = points, span
            if points != 0:  # less than 0: a negative signal, which pulls heat down
                adding.append((event.at, points, span))
            if points > 0:  # interest: only what adds heat
                last_engaged = event.at if last_engaged is None else max(last_engaged, event.at)
                changed = True
            if event.type in churn_types:
                churned = event.at if churned is None else max(churned, event.at)
                changed = True
        if adding:
            heat.fold(adding)
        if facts is None or changed or history.outcomes or history.evidence:
            status = status_at(history.outcomes, now) if history.outcomes else "open"
            facts = LeadFacts(
                qualified=fit.qualified and status != "disqualified",
                fit=fit.points,
                disqualified=bool(fit.disqualified_by) or status == "disqualified",
                evidence_until=(
                    required_fresh_until(
                        [item for item in history.evidence if item.stated_at <= now],
                        required,
                        ttl,
                    )
                    if history.evidence
                    else never_said
                ),
                last_engaged_at=last_engaged,
                churned_at=churned,
            )
        yield heat, facts


def score_history(
    history: LeadHistory, book: Playbook, now: datetime, probability: float | None = None
) -> LeadScore:
    """Score one lead from scratch at ``now``; only what happened by ``now`` counts
    (``probability``: the model's, when one was trained)."""
    heat, facts, fit, status = facts_at(history, book, now, probability)
    by_type: dict[str, list[EventRecord]] = defaultdict(list)
    for event in history.events:
        if event.at <= now:
            by_type[event.type].append(event)
    signals = []
    for event_type, events in by_type.items():
        span = book.half_life_for(event_type)
        worth = [(e, book.points_for(event_type, e.properties)) for e in events]
        raising = [(e, p) for e, p in worth if p >= 0]
        lowering = [(e, p) for e, p in worth if p < 0]
        for part in (raising, lowering):
            if part:
                contribution = math.fsum(
                    p * 2.0 ** (-((now - e.at) / span)) for e, p in part if p != 0
                )
                last = max(e.at for e, _ in part)
                signals.append(SignalHeat(event_type, len(part), contribution, last))
    signals.sort(key=lambda s: (-s.heat, s.type))
    heat_now = heat.at(now)
    verdict = classify(heat_now, facts, now, book)
    kinds = list(
        dict.fromkeys([*book.temperature.hot_requires, "need", "budget", "timeline", "authority"])
    )
    return LeadScore(
        at=now,
        heat=heat_now,
        signals=tuple(signals),
        fit=fit,
        qualified=facts.qualified,
        status=status,
        temperature=verdict.temperature,
        reason=verdict.reason,
        grade=grade(fit.points, facts.disqualified, heat_now, book),
        evidence=assess(history.evidence, kinds, now, book.evidence.ttl),
        hot_until=(f := forecast(heat, facts, verdict, now, book)).hot_until,
        warm_until=f.warm_until,
        previously_engaged=verdict.previously_engaged,
        last_engaged_at=facts.last_engaged_at,
        events_seen=sum(len(v) for v in by_type.values()),
        probability=probability,
        hot_from=f.hot_from,
    )


def signals_said(score: LeadScore, top: int = 3) -> str:
    """What the lead did, in words: its ``top`` signals by heat, each with how often and how
    long ago (a rep reads "demo request 2h 0m ago", not "heat 62.4 >= 20").

    >>> from leadheat.playbook import default_playbook
    >>> from datetime import UTC, timedelta
    >>> now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    >>> seen = [EventRecord("demo_request", now - timedelta(hours=2))] + [
    ...     EventRecord("email_click", now - timedelta(minutes=m)) for m in (5, 30, 90)]
    >>> signals_said(score_history(LeadHistory({}, seen), default_playbook(), now))
    'demo request 2h 0m ago, email click ×3 (last 5m 0s ago)'
    """
    said = []
    for signal in [s for s in score.signals if s.heat > 0][:top]:
        name = signal.type.replace("_", " ")
        ago = relative(signal.last_at, score.at)
        said.append(
            f"{name} ×{signal.events} (last {ago})" if signal.events > 1 else f"{name} {ago}"
        )
    return ", ".join(said)


def pulled_down_said(score: LeadScore, top: int = 3) -> str:
    """What pulled heat down, in words: the ``top`` negative signals with what each takes
    off heat now; empty when none does.

    >>> from leadheat.playbook import parse_playbook
    >>> from datetime import UTC, timedelta
    >>> book = parse_playbook('[signals.demo_request]\\npoints = 30\\n'
    ...     '[signals.careers_view]\\npoints = -10\\nhalf_life = "1d"')
    >>> now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    >>> seen = [EventRecord("demo_request", now - timedelta(hours=2)),
    ...     EventRecord("careers_view", now - timedelta(days=1))]
    >>> pulled_down_said(score_history(LeadHistory({}, seen), book, now))
    'pulled down by careers view -5 (1d 0h ago)'
    """
    said = [
        f"{s.type.replace('_', ' ')} {s.heat:.3g}"
        + (f" ×{s.events} (last {relative(s.last_at, score.at)})" if s.events > 1 else "")
        + ("" if s.events > 1 else f" ({relative(s.last_at, score.at)})")
        for s in score.pulled_down[:top]
    ]
    return "pulled down by " + ", ".join(said) if said else ""


def evidence_said(score: LeadScore) -> str:
    """The evidence the lead gave that is still fresh, with what it said (shortened): empty
    when there is none."""
    fresh = [
        f"{kind} {_short(status.value)}".rstrip()
        for kind, status in score.evidence.items()
        if status.state is EvidenceState.FRESH
    ]
    return "evidence: " + ", ".join(fresh) if fresh else ""


def _short(value: str | None, width: int = 40) -> str:
    text = " ".join((value or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def what_it_did(score: LeadScore) -> str:
    """Why a rep should call, as the queue shows it: what the lead did and the evidence it
    gave (the webhook's alert says the same inside :func:`one_line_reason`)."""
    parts = (signals_said(score), pulled_down_said(score), evidence_said(score))
    return "; ".join(part for part in parts if part)


def one_line_reason(score: LeadScore) -> str:
    """Why the lead is at its temperature, short enough for a list or an alert."""
    parts = [f"{score.temperature.value} {score.grade}"]
    if said := signals_said(score):
        parts.append(said)
    if lowered := pulled_down_said(score):
        parts.append(lowered)
    matched = list(
        dict.fromkeys(
            c.label or c.field for c in score.fit.checks if c.matched and not c.disqualify
        )
    )
    fit = format_number(score.fit.points)
    parts.append(f"fit {fit}" + (f" ({', '.join(matched)})" if matched else ""))
    if evidence := evidence_said(score):
        parts.append(evidence)
    return "; ".join(parts)
