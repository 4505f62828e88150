"""How many conversions a campaign list should bring, from the history of similar leads.

Each lead on the list is matched to past leads like it — same temperature, lead age bucket and
source — as they were at their first touch. The cell's past conversion rate is the lead's
expected chance; where a cell holds fewer than ``min_similar`` past leads the match widens
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
from datetime import datetime
from typing import Any

import numpy as np

from leadheat.analytics.breakdowns import AGE_BUCKETS, UNKNOWN, bucket_of
from leadheat.analytics.decisions import Decided

MIN_SIMILAR = 30
"""Past leads a cell needs before its rate is used: fewer, and the match widens."""
DRAWS = 4000
SEED = 20261129


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
    return Target(lead_id, temperature, bucket_of(now - created_at, AGE_BUCKETS), source or UNKNOWN)


def expect(
    targets: Sequence[Target],
    past: Sequence[Decided],
    *,
    min_similar: int = MIN_SIMILAR,
    draws: int = DRAWS,
) -> Expectation:
    """Expected conversions of ``targets`` from the decided, uncensored ``past`` leads.

    >>> from datetime import UTC, timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def past(label):
    ...     return Decided(1, t, t, True, None, "hot", "A1", 30.0, "ads", None, None,
    ...                    label, None, None, None)
    >>> history = [past(1)] * 40 + [past(0)] * 60
    >>> result = expect([Target(7, "hot", "< 1 day", "ads")] * 10, history)
    >>> result.expected, result.cells[0].match
    (4.0, 'temperature+age+source')
    >>> 0 <= result.low < 4 < result.high <= 10
    True
    """
    known = [r for r in past if r.label is not None]
    tallies: list[tuple[Counter[tuple[str | None, ...]], Counter[tuple[str | None, ...]]]] = []
    for _, key in MATCHES:
        leads: Counter[tuple[str | None, ...]] = Counter()
        won: Counter[tuple[str | None, ...]] = Counter()
        for r in known:
            k = key(r.temperature, bucket_of(r.age, AGE_BUCKETS), r.source or UNKNOWN)
            leads[k] += 1
            won[k] += r.label or 0
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
