"""Test a playbook change against the past before adopting it.

:func:`compare` replays every lead as of its first touch under the current and the candidate
playbook and asks of each how well its temperatures separate the leads that converted:
conversion by band, the ROC-AUC of heat, the share of converters that were hot, and which
leads would have been banded differently.

:func:`sweep_half_lives` asks which decay predicts best on this team's data: heat at each
decision recomputed with one half-life for every signal, judged by ROC-AUC.
:func:`sweep_events` asks the same of an event stream with no recorded outcomes (does heat
from past purchases predict a purchase in the following weeks?), at regular snapshots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from leadheat.analytics.accounts import JudgedAccounts, Members, account_decisions, judge_accounts
from leadheat.analytics.breakdowns import TEMPERATURES, by_temperature
from leadheat.analytics.decisions import DEFAULT_HORIZON, Decided, Story
from leadheat.analytics.rates import Rate, rate, roc_auc, significant
from leadheat.playbook import Decay, Playbook
from leadheat.times import EPOCH, format_duration

MICRO = timedelta(microseconds=1)
SWEEP = tuple(timedelta(days=d) for d in (1, 3, 7, 14, 30, 60, 90, 180, 365))
"""Half-lives tried when none are given: a day to a year."""


@dataclass(frozen=True)
class Judged:
    """How well one playbook's temperatures separated converters from the rest."""

    name: str
    by_temperature: list[Rate]
    roc_auc: float | None
    """Of heat at the first touch, against conversion within the horizon."""
    converters_hot: Rate
    """Converters that were hot at their first touch, out of all converters."""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "by_temperature": [r.as_json() for r in self.by_temperature],
            "roc_auc": self.roc_auc,
            "converters_hot": self.converters_hot.as_json(),
        }


def judge(name: str, rows: Sequence[Decided]) -> Judged:
    known = [r for r in rows if r.label is not None]
    converters = [r for r in known if r.label == 1]
    return Judged(
        name,
        by_temperature(rows),
        roc_auc(significant(np.array([r.heat for r in known])), [r.label == 1 for r in known]),
        rate("hot", sum(r.temperature == "hot" for r in converters), len(converters)),
    )


@dataclass(frozen=True)
class Comparison:
    """The current and the candidate playbook over the same leads."""

    horizon: timedelta
    leads: int
    censored: int
    current: Judged
    candidate: Judged
    rebanded: list[tuple[str, str, int]]
    """``(temperature under current, under candidate, leads)`` for every pair that differs."""
    accounts: tuple[JudgedAccounts, JudgedAccounts] | None = None
    """The current and the candidate ``[accounts]``: leads by their account's temperature."""

    def as_json(self) -> dict[str, Any]:
        return {
            "horizon": format_duration(self.horizon),
            "leads": self.leads,
            "censored": self.censored,
            "current": self.current.as_json(),
            "candidate": self.candidate.as_json(),
            "rebanded": [
                {"from": before, "to": after, "leads": n} for before, after, n in self.rebanded
            ],
            "rebanded_leads": sum(n for _, _, n in self.rebanded),
            "accounts": None
            if self.accounts is None
            else {
                "current": self.accounts[0].as_json(),
                "candidate": self.accounts[1].as_json(),
            },
        }


def compare(
    story: Story,
    current: Playbook,
    candidate: Playbook,
    horizon: timedelta = DEFAULT_HORIZON,
    deadline: float | None = None,
    members: Members | None = None,
) -> Comparison:
    """Both playbooks over every lead of ``story``, as of each lead's first touch (stopped
    at ``deadline``, see :meth:`~leadheat.analytics.decisions.Story.decisions`); with
    ``members``, each playbook's ``[accounts]`` judged too."""
    before = story.decisions(current, horizon, deadline)
    after = story.decisions(candidate, horizon, deadline)
    moves: Counter[tuple[str, str]] = Counter(
        (b.temperature, a.temperature)
        for b, a in zip(before, after, strict=True)
        if b.temperature != a.temperature
    )
    order = {t: i for i, t in enumerate(TEMPERATURES)}
    return Comparison(
        horizon=horizon,
        leads=len(before),
        censored=sum(r.label is None for r in before),
        current=judge(current.name, before),
        candidate=judge(candidate.name, after),
        rebanded=[
            (b, a, n)
            for (b, a), n in sorted(moves.items(), key=lambda m: (order[m[0][0]], order[m[0][1]]))
        ],
        accounts=None
        if members is None
        else (
            judge_accounts(current.name, account_decisions(members, current, before)),
            judge_accounts(candidate.name, account_decisions(members, candidate, after)),
        ),
    )


def one_half_life(book: Playbook, half_life: timedelta) -> Playbook:
    """``book`` with every signal decaying at ``half_life``."""
    signals = {
        name: signal.model_copy(update={"half_life": None}) for name, signal in book.signals.items()
    }
    return book.model_copy(update={"decay": Decay(half_life=half_life), "signals": signals})


@dataclass(frozen=True)
class SweepRow:
    """One half-life's heat, judged against what happened next."""

    half_life: timedelta
    rows: int
    converted: int
    roc_auc: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "half_life": format_duration(self.half_life),
            "half_life_days": self.half_life / timedelta(days=1),
            "rows": self.rows,
            "converted": self.converted,
            "roc_auc": self.roc_auc,
        }


def best(rows: Sequence[SweepRow]) -> SweepRow | None:
    """The half-life with the highest ROC-AUC (the shorter one on a tie)."""
    judged = [r for r in rows if r.roc_auc is not None]
    return max(judged, key=lambda r: (r.roc_auc, -r.half_life)) if judged else None


def _heats(
    lead_index: npt.NDArray[np.int64],
    ages_us: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    count: int,
    half_life: timedelta,
) -> npt.NDArray[np.float64]:
    """Per row, ``Σ points · 2^(−age/h)`` over its events (rows without events: 0)."""
    decayed = points * np.exp2(-ages_us / (half_life // MICRO))
    return np.bincount(lead_index, weights=decayed, minlength=count).astype(np.float64)


def sweep_half_lives(
    story: Story,
    book: Playbook,
    half_lives: Sequence[timedelta] = SWEEP,
    horizon: timedelta = DEFAULT_HORIZON,
) -> list[SweepRow]:
    """Heat at each lead's first touch under each half-life, against conversion within
    ``horizon`` (censored leads left out)."""
    rows = [r for r in story.decisions(book, horizon) if r.label is not None]
    position = {r.lead_id: i for i, r in enumerate(rows)}
    index: list[int] = []
    ages: list[int] = []
    points: list[float] = []
    for lead in story.leads:
        i = position.get(lead.lead_id)
        if i is None:
            continue
        at = rows[i].decided_at
        for event in lead.history.events:
            value = book.points_for(event.type, event.properties)
            if event.at <= at and value != 0:  # negative signals pull heat down here too
                index.append(i)
                ages.append((at - event.at) // MICRO)
                points.append(value)
    labels = np.array([r.label for r in rows], dtype=np.int64)
    lead_index = np.array(index, dtype=np.int64)
    age_us = np.array(ages, dtype=np.int64)
    worth = np.array(points, dtype=np.float64)
    return [
        SweepRow(
            h,
            len(rows),
            int(labels.sum()),
            roc_auc(significant(_heats(lead_index, age_us, worth, len(rows), h)), labels),
        )
        for h in half_lives
    ]


@dataclass(frozen=True)
class Stream:
    """Events as arrays: which lead, when (µs since the epoch), points, and whether the
    event is the conversion being predicted."""

    lead: npt.NDArray[np.int64]
    at_us: npt.NDArray[np.int64]
    points: npt.NDArray[np.float64]
    converts: npt.NDArray[np.bool_]


def snapshot_instants(since: datetime, until: datetime, every: timedelta) -> list[datetime]:
    """``since``, ``since + every``, … up to ``until``.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> len(snapshot_instants(t, t + timedelta(days=28), timedelta(days=7)))
    5
    """
    count = int((until - since) / every) + 1
    return [since + every * i for i in range(count)]


def sweep_events(
    stream: Stream,
    at: Sequence[datetime],
    within: timedelta,
    half_lives: Sequence[timedelta] = SWEEP,
) -> list[SweepRow]:
    """At each snapshot ``s``, every lead with an event by ``s`` is a row: its heat at ``s``
    from the events by then, and whether it had a converting event in ``(s, s + within]``.
    Rows of all snapshots are pooled; each half-life's heat is judged by ROC-AUC.

    >>> from datetime import UTC
    >>> day = 86_400_000_000
    >>> t = datetime(1970, 1, 11, tzinfo=UTC)   # day 10
    >>> stream = Stream(np.array([0, 0, 1, 0]), np.array([9, 9, 1, 12]) * day,
    ...                 np.ones(4), np.ones(4, dtype=bool))
    >>> [r.roc_auc for r in sweep_events(stream, [t], timedelta(days=5))][:2]
    [1.0, 1.0]
    """
    within_us = within // MICRO
    parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
    labels: list[npt.NDArray[np.int64]] = []
    offset = 0
    for instant in at:
        s = (instant - EPOCH) // MICRO
        past = stream.at_us <= s
        leads, index = np.unique(stream.lead[past], return_inverse=True)
        future = (stream.at_us > s) & (stream.at_us <= s + within_us) & stream.converts
        labels.append(np.isin(leads, stream.lead[future]).astype(np.int64))
        parts.append((index + offset, s - stream.at_us[past], stream.points[past]))
        offset += len(leads)
    label = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    index = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    ages = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    worth = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0)
    return [
        SweepRow(
            h,
            offset,
            int(label.sum()),
            roc_auc(significant(_heats(index, ages, worth, offset, h)), label),
        )
        for h in half_lives
    ]
