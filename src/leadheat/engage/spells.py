"""A lead's temperature through time, exactly: when it turned hot, warm or cold.

Temperature rises only when something is recorded (an event, evidence, an outcome) and
falls only by cooling, whose instants the forecast gives (heat crossing a threshold,
evidence going stale, the warm window closing). So scoring the lead at each recorded
instant, and following the forecast between them, gives every change with no sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from leadheat.playbook import Playbook
from leadheat.scoring.lead import LeadHistory, LeadScore, score_history
from leadheat.scoring.temperature import Temperature

RANK = {Temperature.COLD: 0, Temperature.WARM: 1, Temperature.HOT: 2}
P = TypeVar("P")


@dataclass(frozen=True)
class Spell:
    """The lead was at ``temperature`` from ``start`` until ``end`` (exclusive)."""

    temperature: Temperature
    start: datetime
    end: datetime
    score: LeadScore
    """The score at the recorded instant the spell's stretch began from."""


def _instants(history: LeadHistory, start: datetime, end: datetime) -> list[datetime]:
    """``start`` and every recorded instant in (start, end], in order."""
    found = {event.at for event in history.events}
    found.update(item.stated_at for item in history.evidence)
    found.update(outcome.at for outcome in history.outcomes)
    return [start, *sorted(at for at in found if start < at <= end)]


def spells(history: LeadHistory, book: Playbook, start: datetime, end: datetime) -> list[Spell]:
    """The lead's temperatures over [start, end], adjacent equal spells merged.

    >>> from datetime import UTC, timedelta
    >>> from leadheat.playbook import parse_playbook
    >>> from leadheat.scoring.lead import EventRecord
    >>> book = parse_playbook('[signals.demo]\\npoints = 40\\n[temperature]\\n'
    ...     'hot_requires = []\\n[fit]\\nqualified_at = 0')
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> found = spells(LeadHistory({}, [EventRecord("demo", t)]), book, t, t + timedelta(days=60))
    >>> [(s.temperature.value, (s.start - t).days, (s.end - t).days) for s in found]
    [('hot', 0, 7), ('warm', 7, 30), ('cold', 30, 60)]
    """

    def judge(at: datetime) -> tuple[Temperature, datetime | None, datetime | None, LeadScore]:
        score = score_history(history, book, at)
        return score.temperature, score.hot_until, score.warm_until, score

    return [
        Spell(run.temperature, run.start, run.end, run.first)
        for run in runs(_instants(history, start, end), end, judge)
    ]


@dataclass(frozen=True)
class Run(Generic[P]):
    """A spell as :func:`runs` finds it: ``first`` is what the judge said where it began."""

    temperature: Temperature
    start: datetime
    end: datetime
    first: P


def runs(
    instants: Sequence[datetime],
    end: datetime,
    judge: Callable[[datetime], tuple[Temperature, datetime | None, datetime | None, P]],
) -> list[Run[P]]:
    """The temperatures over [instants[0], end]: at each instant the ``judge``'s temperature,
    then its forecast (warm from ``hot_until``, cold from ``warm_until``) until the next
    instant; adjacent equal spells merged. :func:`spells` judges by scoring the history
    anew; the follow-up state (:mod:`leadheat.engage.followup`) by a lighter judge, through
    the same merging, so that the two cannot disagree on where a spell begins."""
    # Spells as [temperature, start, end, first] lists while they merge: one Run each at
    # the end rather than one per instant.
    found: list[list[Any]] = []
    last: list[Any] | None = None
    count = len(instants)
    for index, at in enumerate(instants):
        until = instants[index + 1] if index + 1 < count else end
        temperature_now, hot_until, warm_until, said = judge(at)
        stretch = [(temperature_now, at)]
        if hot_until is not None and hot_until < until:
            stretch.append((Temperature.WARM, hot_until))
        if warm_until is not None and warm_until < until:
            stretch.append((Temperature.COLD, warm_until))
        for temperature, begins in stretch:
            if last is not None and last[0] is temperature:
                last[2] = max(last[2], until)
                continue
            if last is not None and last[2] > begins:
                last[2] = begins
            last = [temperature, begins, until, said]
            found.append(last)
    return [
        Run(temperature, start, stop, first)
        for temperature, start, stop, first in found
        if stop > start or start == end
    ]
