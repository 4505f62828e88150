"""Every lead as the team saw it when it decided to call: the rows all analytics count.

The decision time is the first touch (:func:`leadheat.predict.asof.decision_time`: for a lead
closed untouched, just before its outcome; for an open, untouched lead, its arrival). What the
lead *was* then — temperature, grade, heat, age — comes from replaying its history cut at that
instant with the playbook, so a later sales call or the sale itself never colours the picture.

Whether it converted: won within ``horizon`` of the decision is 1; lost, disqualified, won
later, or no win once the horizon has passed is 0; an open lead whose horizon has not passed
yet is censored (``None``) and left out of rates rather than counted as lost.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from leadheat.playbook import Playbook
from leadheat.predict.asof import cut, decision_time, label
from leadheat.scoring.lead import facts_at
from leadheat.scoring.temperature import classify, grade
from leadheat.store.models import Enrollment, SlaClock, Touch
from leadheat.store.training import Lived, load_everything

DEFAULT_HORIZON = timedelta(days=90)
"""A win counts when it comes within this long of the first touch (``--horizon``)."""


@dataclass(slots=True)
class Decided:
    """One lead at its decision time, and whether it converted.

    Not frozen, though nothing changes one: the report makes one per lead, and a frozen
    dataclass's ``__init__`` costs four times as much (5 s of CPU at a million leads)."""

    lead_id: int
    created_at: datetime
    decided_at: datetime
    touched: bool
    response: timedelta | None
    """From the moment the lead asked for attention to the first touch: the SLA clock's start
    if one ran, else its latest interest signal, else its arrival. ``None`` when untouched."""
    temperature: str
    grade: str
    heat: float
    source: str | None
    campaign: str | None
    rep: str | None
    """The lead's owner, else whoever made the first touch."""
    label: int | None
    qualified_at: datetime | None
    """When the lead first stated BANT evidence (need, budget, timeline, authority): what a
    rep's qualifying call collects."""
    won_at: datetime | None
    closed_at: datetime | None
    """The first outcome of any kind (won, lost, disqualified)."""

    @property
    def age(self) -> timedelta:
        """How old the lead was when it was first contacted (its age at the decision)."""
        return self.decided_at - self.created_at


def decide(
    lead: Lived,
    book: Playbook,
    horizon: timedelta,
    now: datetime,
    asked_at: datetime | None = None,
    touch_rep: str | None = None,
) -> Decided:
    """One lead at its decision time (``asked_at``: when its SLA clock started, if one did).

    >>> from datetime import UTC
    >>> from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
    >>> from leadheat.playbook import default_playbook
    >>> t = datetime(2026, 1, 5, tzinfo=UTC)
    >>> history = LeadHistory({"source": "ads"}, [EventRecord("form_submit", t)],
    ...                       outcomes=[OutcomeRecord("won", t + 20 * timedelta(days=1))])
    >>> lead = Lived(1, t, history, [t + timedelta(minutes=3)], "won")
    >>> row = decide(lead, default_playbook(), timedelta(days=90), t + timedelta(days=400))
    >>> row.temperature, row.label, row.response, row.source
    ('warm', 1, datetime.timedelta(seconds=180), 'ads')
    """
    first_touch = lead.touches[0] if lead.touches else None
    outcomes = lead.history.outcomes
    at = decision_time(lead.created_at, first_touch, outcomes)
    heat, facts, _, _ = facts_at(cut(lead.history, at), book, at)
    heat_then = heat.at(at)
    verdict = classify(heat_then, facts, at, book)
    response = None
    if first_touch is not None and at == first_touch:
        signals = [
            e.at
            for e in lead.history.events
            if e.at <= at and book.points_for(e.type, e.properties) > 0
        ]
        start = asked_at if asked_at is not None and asked_at <= at else None
        start = start or max(signals, default=lead.created_at)
        response = at - max(start, lead.created_at)
    attributes = lead.history.attributes
    won = [o.at for o in outcomes if o.outcome == "won"]
    owner = attributes.get("owner")
    return Decided(
        lead_id=lead.lead_id,
        created_at=lead.created_at,
        decided_at=at,
        touched=response is not None,
        response=response,
        temperature=verdict.temperature.value,
        grade=grade(facts.fit, facts.disqualified, heat_then, book),
        heat=heat_then,
        source=text_of(attributes.get("source")),
        campaign=text_of(attributes.get("campaign")),
        rep=text_of(owner) or touch_rep,
        label=label(outcomes, at, horizon, now),
        qualified_at=min((e.stated_at for e in lead.history.evidence), default=None),
        won_at=min(won, default=None),
        closed_at=min((o.at for o in outcomes), default=None),
    )


def text_of(value: object) -> str | None:
    """An attribute as a group's name: ``None`` when empty."""
    return None if value is None or str(value).strip() == "" else str(value)


@dataclass(frozen=True)
class Story:
    """What the store knows by ``now`` about the leads that arrived since ``since``: their
    histories, when each one's SLA clock started and who touched it first."""

    now: datetime
    leads: list[Lived]
    asked_at: dict[int, datetime]
    first_rep: dict[int, str | None]
    sequences: dict[int, list[str]] = field(default_factory=dict)
    """The nurture sequences each lead was enrolled in by ``now``."""

    def decisions(
        self,
        book: Playbook,
        horizon: timedelta = DEFAULT_HORIZON,
        deadline: float | None = None,
    ) -> list[Decided]:
        """Every lead at its decision time, scored by ``book``; past ``deadline`` (a
        ``time.monotonic()`` value) it stops with :class:`TooLongError`, between two leads."""
        decided: list[Decided] = []
        for lead in self.leads:
            if deadline is not None and time.monotonic() > deadline:
                raise TooLongError(f"stopped after {len(decided)} of {len(self.leads)} leads")
            decided.append(
                decide(
                    lead,
                    book,
                    horizon,
                    self.now,
                    self.asked_at.get(lead.lead_id),
                    self.first_rep.get(lead.lead_id),
                )
            )
        return decided


class TooLongError(TimeoutError):
    """A computation over the team's history passed its time limit (a backtest asked over
    HTTP, where the limit keeps one request from holding a worker for long)."""


def load_story(
    connection: Connection,
    now: datetime,
    *,
    since: datetime | None = None,
    lead_ids: Sequence[int] | None = None,
) -> Story:
    """Every lead that arrived in ``[since, now)`` (or these leads), with only what was known
    by ``now``."""
    lived = [
        _known_by(lead, now)
        for lead in load_everything(connection, lead_ids)
        if lead.created_at < now and (since is None or lead.created_at >= since)
    ]
    first: dict[int, tuple[datetime, str | None]] = {}
    for lead_id, at, rep in connection.execute(
        select(Touch.lead_id, Touch.occurred_at, Touch.rep).where(Touch.occurred_at <= now)
    ):
        if lead_id not in first or at < first[lead_id][0]:
            first[lead_id] = (at, rep)
    starts: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, started in connection.execute(
        select(SlaClock.lead_id, SlaClock.started_at).where(SlaClock.started_at <= now)
    ):
        starts[lead_id].append(started)
    asked: dict[int, datetime] = {}
    for lead in lived:
        touched = lead.touches[0] if lead.touches else None
        begun = [s for s in starts.get(lead.lead_id, []) if touched is not None and s <= touched]
        if begun:
            asked[lead.lead_id] = max(begun)
    reps = {lead: rep for lead, (_, rep) in first.items()}
    return Story(now, lived, asked, reps, enrolled(connection, now))


def enrolled(connection: Connection, now: datetime) -> dict[int, list[str]]:
    """The nurture sequences each lead was enrolled in by ``now``, by lead."""
    sequences: dict[int, list[str]] = defaultdict(list)
    for lead_id, sequence in connection.execute(
        select(Enrollment.lead_id, Enrollment.sequence)
        .where(Enrollment.enrolled_at <= now)
        .order_by(Enrollment.lead_id, Enrollment.sequence)
    ):
        sequences[lead_id].append(sequence)
    return dict(sequences)


def _known_by(lead: Lived, now: datetime) -> Lived:
    """The lead as it stood at ``now``: a report as of a past date ignores what came later."""
    return Lived(
        lead.lead_id,
        lead.created_at,
        cut(lead.history, now),
        [t for t in lead.touches if t <= now],
        lead.status,
    )
