"""A lead's temperature through time, exactly: when it turned hot, warm or cold.

Temperature rises only when something is recorded (an event, evidence, an outcome) and
falls only by cooling, whose instants the forecast gives (heat crossing a threshold,
evidence going stale, the warm window closing). So scoring the lead at each recorded
instant, and following the forecast between them, gives every change with no sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadheat.playbook import Playbook
from leadheat.scoring.lead import LeadHistory, LeadScore, score_history
from leadheat.scoring.temperature import Temperature

RANK = {Temperature.COLD: 0, Temperature.WARM: 1, Temperature.HOT: 2}


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
    found: list[Spell] = []
    instants = _instants(history, start, end)
    for index, at in enumerate(instants):
        until = instants[index + 1] if index + 1 < len(instants) else end
        score = score_history(history, book, at)
        stretch = [(score.temperature, at)]
        if score.hot_until is not None and score.hot_until < until:
            stretch.append((Temperature.WARM, score.hot_until))
        if score.warm_until is not None and score.warm_until < until:
            stretch.append((Temperature.COLD, score.warm_until))
        for temperature, begins in stretch:
            if found and found[-1].temperature is temperature:
                last = found[-1]
                found[-1] = Spell(temperature, last.start, max(until, last.end), last.score)
            elif found and found[-1].end > begins:
                last = found[-1]
                found[-1] = Spell(last.temperature, last.start, begins, last.score)
                found.append(Spell(temperature, begins, until, score))
            else:
                found.append(Spell(temperature, begins, until, score))
    return [spell for spell in found if spell.end > spell.start or spell.start == end]
