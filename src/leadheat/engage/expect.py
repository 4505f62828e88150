"""What a list of old or churned leads will really convert at, from the team's own history.

People quote the hot-lead rate for a win-back blast. The honest number is the rate of leads
*like these* — the same temperature at the same age — in the team's past: for every past
lead and every age mark (7 days, 30 days, 90 days, …) that it reached still open, did it
convert within the horizon after that mark? Grouped by temperature at the mark and age,
each rate comes with a Wilson 95% interval and its sample size.

The analytics it computes with are imported where they are used: ``leadheat tasks`` and
``recover`` load this module's types through :mod:`leadheat.engage.lists`, and the
analytics package (breakdowns, decisions, NumPy) took half of their start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadheat.playbook import Playbook
from leadheat.scoring.fit import score_fit
from leadheat.scoring.lead import status_at
from leadheat.store.training import Lived

SMALL = 30
"""Groups with fewer past leads than this are flagged as small (shown, not hidden)."""
AGE_MARKS: tuple[tuple[int, str], ...] = (
    (0, "0-7d"),
    (7, "7-30d"),
    (30, "30-90d"),
    (90, "90-180d"),
    (180, "180-365d"),
    (365, "1-2y"),
    (730, "2y+"),
)
"""Age buckets by their first day: a lead is counted at the start of each it reaches."""


def age_bucket(age: timedelta) -> str:
    """The bucket of a lead this old.

    >>> age_bucket(timedelta(days=200))
    '180-365d'
    """
    days = age / timedelta(days=1)
    return next(label for first, label in reversed(AGE_MARKS) if days >= first)


@dataclass(frozen=True)
class Rate:
    """Conversion of past leads in one group."""

    temperature: str
    age: str
    leads: int
    won: int

    @property
    def rate(self) -> float:
        return self.won / self.leads if self.leads else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        from leadheat.analytics.rates import wilson

        return wilson(self.won, self.leads)

    def as_row(self) -> dict[str, object]:
        low, high = self.interval
        return {
            "temperature": self.temperature,
            "bucket": self.age,
            "leads": self.leads,
            "won": self.won,
            "rate": self.rate,
            "low": low,
            "high": high,
            "small": self.leads < SMALL,
        }


def marks(
    leads: Iterable[Lived], book: Playbook, horizon: timedelta, now: datetime
) -> dict[tuple[str, str], Rate]:
    """Conversion within ``horizon`` after each age mark, by temperature at the mark and age.

    A lead counts at a mark only if it was still open then and the horizon after the mark
    has passed by ``now`` (a later win could still come: that would bias rates down).
    """
    from leadheat.analytics.expect import temperature_at

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for lead in leads:
        won_at = min((o.at for o in lead.history.outcomes if o.outcome == "won"), default=None)
        fit = score_fit(lead.history.attributes, book.fit.rules, book.fit.qualified_at)
        for first, label in AGE_MARKS:
            mark = lead.created_at + timedelta(days=first)
            if mark + horizon > now:
                break
            if status_at(lead.history.outcomes, mark) != "open":
                break
            temperature = temperature_at(lead.history, book, mark, fit)
            tally = counts[(temperature, label)]
            tally[0] += 1
            tally[1] += int(won_at is not None and mark < won_at <= mark + horizon)
    return {key: Rate(key[0], key[1], n, won) for key, (n, won) in counts.items()}


@dataclass(frozen=True)
class Expectation:
    """The expected conversions of a list, from the rates of its members' groups."""

    members: int
    expected: float
    low: float
    high: float
    sample: int
    """Past lead-marks the expectation rests on."""
    groups: list[tuple[Rate, int]]
    """Each group used, with how many members fall in it."""
    hot: Rate
    """For contrast: the rate of past hot leads, at any age."""

    @property
    def rate(self) -> float:
        return self.expected / self.members if self.members else 0.0


def expect(
    member_groups: Sequence[tuple[str, str]], rates: dict[tuple[str, str], Rate]
) -> Expectation:
    """Expected conversions: each member at its group's rate; the interval adds the groups'
    Wilson bounds (conservative: as if the groups' errors all went the same way)."""
    sizes: dict[tuple[str, str], int] = defaultdict(int)
    for group in member_groups:
        sizes[group] += 1
    used = []
    expected = low = high = 0.0
    sample = 0
    for group, size in sorted(sizes.items()):
        rate = rates.get(group, Rate(group[0], group[1], 0, 0))
        bound_low, bound_high = rate.interval
        expected += size * rate.rate
        low += size * bound_low
        high += size * bound_high
        sample += rate.leads
        used.append((rate, size))
    hot_leads = sum(r.leads for (t, _), r in rates.items() if t == "hot")
    hot_won = sum(r.won for (t, _), r in rates.items() if t == "hot")
    return Expectation(
        len(member_groups),
        expected,
        low,
        high,
        sample,
        used,
        Rate("hot", "any", hot_leads, hot_won),
    )
