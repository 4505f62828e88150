"""How many conversions a campaign list should bring, from the history of similar leads.

A lead on the list is open now, at some age, with some temperature and source. Its analogues
are past leads *at the same point of their lives*: for each age bucket, every past lead still
open at that age (the bucket's start), scored as of then — its temperature at that instant —
and whether it was won within ``horizon`` after (only leads watched that long count). The
analogues' conversion rate in the lead's cell — same temperature, age bucket and source — is
its expected chance; where a cell holds fewer than ``min_similar`` analogues the match widens
(temperature and age, then temperature alone, then everyone), and says so.

The interval accounts for both kinds of doubt: the past rates are estimates (each cell's rate
is drawn from its Beta(won + ½, lost + ½) posterior, Jeffreys' prior) and the list itself is
a sample (its conversions are drawn binomially). The 2.5th and 97.5th percentiles of many
draws, from a fixed seed, give the interval: the same list gives the same answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from leadheat.analytics.breakdowns import AGE_BUCKETS, UNKNOWN, bucket_of
from leadheat.playbook import Playbook
from leadheat.scoring.fit import FitResult, score_fit
from leadheat.scoring.lead import LeadHistory, facts_at
from leadheat.scoring.temperature import classify
from leadheat.store.training import Lived

MIN_SIMILAR = 30
"""Past leads a cell needs before its rate is used: fewer, and the match widens."""
DRAWS = 4000
SEED = 20261129


@dataclass(frozen=True)
class Analog:
    """A past lead at one age: how it stood then, and whether it converted within the horizon."""

    temperature: str
    age_bucket: str
    source: str
    won: bool


def analogues(
    leads: Sequence[Lived], book: Playbook, horizon: timedelta, now: datetime
) -> list[Analog]:
    """Every past lead at the start of every age bucket it reached open and was watched
    ``horizon`` beyond.

    >>> from datetime import UTC
    >>> from leadheat.playbook import default_playbook
    >>> from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> day = timedelta(days=1)
    >>> deal = [OutcomeRecord("won", t + 3 * day)]
    >>> won = LeadHistory({}, [EventRecord("form_submit", t)], [], deal)
    >>> found = analogues([Lived(1, t, won, [], "won")], default_playbook(), 30 * day, t + 90 * day)
    >>> [(a.age_bucket, a.temperature, a.won) for a in found]
    [('< 1 day', 'warm', True), ('1–7 days', 'warm', True)]
    """
    found = []
    for lead in leads:
        source = _source(lead.history.attributes.get("source"))
        won_at = min((o.at for o in lead.history.outcomes if o.outcome == "won"), default=None)
        closed = min((o.at for o in lead.history.outcomes), default=None)
        fit = score_fit(lead.history.attributes, book.fit.rules, book.fit.qualified_at)
        lower = timedelta(0)
        for name, upper in AGE_BUCKETS:
            at = lead.created_at + lower
            if at + horizon > now or (closed is not None and closed <= at):
                break
            converted = won_at is not None and won_at == closed and won_at <= at + horizon
            temperature = temperature_at(lead.history, book, at, fit)
            found.append(Analog(temperature, name, source, converted))
            if upper is None:
                break
            lower = upper
    return found


def temperature_at(history: LeadHistory, book: Playbook, at: datetime, fit: FitResult) -> str:
    """The lead's temperature at ``at`` from what was known by then (no explanation built:
    this runs for every lead at every age)."""
    heat, facts, _, _ = facts_at(history, book, at, fit=fit)  # it reads nothing after ``at``
    return classify(heat.at(at), facts, at, book).temperature.value


def _source(value: object) -> str:
    return UNKNOWN if value is None or str(value).strip() == "" else str(value)


@dataclass(frozen=True)
class Target:
    """A lead on the campaign list, as it is now."""

    lead_id: int
    temperature: str
    age_bucket: str
    source: str


@dataclass(frozen=True)
class Cell:
    """One group of list leads matched to the same past leads."""

    match: str
    """``temperature+age+source``, ``temperature+age``, ``temperature`` or ``everyone``."""
    temperature: str | None
    age: str | None
    source: str | None
    leads: int
    past_leads: int
    past_won: int

    @property
    def rate(self) -> float:
        return self.past_won / self.past_leads if self.past_leads else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "temperature": self.temperature,
            "age": self.age,
            "source": self.source,
            "leads": self.leads,
            "past_leads": self.past_leads,
            "past_won": self.past_won,
            "rate": self.rate if self.past_leads else None,
            "expected": self.leads * self.rate,
        }


@dataclass(frozen=True)
class Expectation:
    leads: int
    expected: float
    low: float
    high: float
    """The 95 % interval of the number of conversions."""
    cells: list[Cell]

    def as_json(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "expected": self.expected,
            "low": self.low,
            "high": self.high,
            "cells": [c.as_json() for c in self.cells],
        }


Key = Callable[[str, str, str], tuple[str | None, str | None, str | None]]
MATCHES: tuple[tuple[str, Key], ...] = (
    ("temperature+age+source", lambda t, a, s: (t, a, s)),
    ("temperature+age", lambda t, a, s: (t, a, None)),
    ("temperature", lambda t, a, s: (t, None, None)),
    ("everyone", lambda t, a, s: (None, None, None)),
)


def target(
    lead_id: int, temperature: str, created_at: datetime, source: str | None, now: datetime
) -> Target:
    return Target(lead_id, temperature, bucket_of(now - created_at, AGE_BUCKETS), _source(source))


def expect(
    targets: Sequence[Target],
    past: Sequence[Analog],
    *,
    min_similar: int = MIN_SIMILAR,
    draws: int = DRAWS,
) -> Expectation:
    """Expected conversions of ``targets`` from the ``past`` leads like them.

    >>> history = [Analog("hot", "< 1 day", "ads", True)] * 40
    >>> history += [Analog("hot", "< 1 day", "ads", False)] * 60
    >>> result = expect([Target(7, "hot", "< 1 day", "ads")] * 10, history)
    >>> result.expected, result.cells[0].match
    (4.0, 'temperature+age+source')
    >>> 0 <= result.low < 4 < result.high <= 10
    True
    """
    tallies: list[tuple[Counter[tuple[str | None, ...]], Counter[tuple[str | None, ...]]]] = []
    for _, key in MATCHES:
        leads: Counter[tuple[str | None, ...]] = Counter()
        won: Counter[tuple[str | None, ...]] = Counter()
        for r in past:
            k = key(r.temperature, r.age_bucket, r.source)
            leads[k] += 1
            won[k] += r.won
        tallies.append((leads, won))
    groups: Counter[tuple[int, tuple[str | None, ...]]] = Counter()
    for item in targets:
        for level, (_, key) in enumerate(MATCHES):
            k = key(item.temperature, item.age_bucket, item.source)
            if tallies[level][0][k] >= min_similar or level == len(MATCHES) - 1:
                groups[(level, k)] += 1
                break
    cells = [
        Cell(MATCHES[level][0], k[0], k[1], k[2], n, tallies[level][0][k], tallies[level][1][k])
        for (level, k), n in sorted(groups.items(), key=lambda g: (-g[1], g[0][0]))
    ]
    generator = np.random.default_rng(SEED)
    totals = np.zeros(draws)
    for cell in cells:
        p = generator.beta(cell.past_won + 0.5, cell.past_leads - cell.past_won + 0.5, draws)
        totals += generator.binomial(cell.leads, p)
    expected = float(sum(c.leads * c.rate for c in cells))
    low, high = (float(v) for v in np.percentile(totals, [2.5, 97.5])) if cells else (0.0, 0.0)
    return Expectation(len(targets), expected, low, high, cells)
