"""The funnel, SLA compliance per rep, and how many leads are hot, warm and cold over time."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from leadheat.analytics.decisions import Decided
from leadheat.analytics.rates import Rate, rate
from leadheat.engage.tasks import Task
from leadheat.playbook import Playbook
from leadheat.scoring.fit import score_fit
from leadheat.scoring.lead import facts_at
from leadheat.scoring.temperature import classify
from leadheat.store.clocks import timings_by_rep
from leadheat.store.training import Lived
from leadheat.times import isoformat

FUNNEL = ("new", "contacted", "qualified", "won")


@dataclass(frozen=True)
class Stage:
    """One stage of the funnel: how many leads reached it, and how long the step took."""

    stage: str
    leads: int
    share: float | None
    """Of the leads that reached the stage before."""
    median_days_from_previous: float | None
    """Median time from the stage before, over leads with both times."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _median_days(spans: Sequence[timedelta]) -> float | None:
    return statistics.median(s / timedelta(days=1) for s in spans) if spans else None


def funnel(rows: Sequence[Decided]) -> list[Stage]:
    """New → contacted (first touch) → qualified (stated BANT evidence) → won.

    A won lead has passed every stage, whether or not the steps were recorded; the median
    times use only the leads whose two times are both known and in order.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> day = timedelta(days=1)
    >>> a = Decided(1, t, t + day, True, day, "warm", "D2", 5.0, None, None, None,
    ...             1, t + 2 * day, t + 5 * day, t + 5 * day)
    >>> b = Decided(2, t, t, False, None, "cold", "D3", 0.0, None, None, None,
    ...             0, None, None, None)
    >>> [(s.stage, s.leads, s.median_days_from_previous) for s in funnel([a, b])]
    [('new', 2, None), ('contacted', 1, 1.0), ('qualified', 1, 1.0), ('won', 1, 3.0)]
    """
    won = [r for r in rows if r.won_at is not None]
    contacted = [r for r in rows if r.touched or r.won_at is not None]
    qualified = [r for r in rows if r.qualified_at is not None or r.won_at is not None]
    times: dict[str, list[timedelta]] = {
        "contacted": [r.decided_at - r.created_at for r in rows if r.touched],
        "qualified": [
            r.qualified_at - r.decided_at
            for r in rows
            if r.touched and r.qualified_at is not None and r.qualified_at >= r.decided_at
        ],
        "won": [
            r.won_at - (r.qualified_at or r.decided_at)
            for r in won
            if r.won_at is not None and r.won_at >= (r.qualified_at or r.decided_at)
        ],
    }
    counts = {"new": len(rows), "contacted": len(contacted), "qualified": len(qualified)}
    counts["won"] = len(won)
    stages = []
    previous: int | None = None
    for name in FUNNEL:
        stages.append(
            Stage(
                name,
                counts[name],
                None if previous is None or previous == 0 else counts[name] / previous,
                _median_days(times.get(name, [])),
            )
        )
        previous = counts[name]
    return stages


@dataclass(frozen=True)
class RepSla:
    """One rep's SLA compliance: clocks met out of clocks decided (met, missed or breached)."""

    rep: str
    clocks: int
    met: int
    missed: int
    breached: int
    running: int
    compliance: Rate
    median_response_seconds: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "compliance"},
            **self.compliance.as_json(),
        }


def sla_by_rep(connection: Connection, now: datetime, since: datetime | None) -> list[RepSla]:
    """Per rep, the share of SLA clocks met (Wilson interval; running clocks not yet counted)."""
    result = []
    for t in timings_by_rep(connection, now, since):
        decided = t.met + t.missed + t.breached
        name = t.owner or "(nobody)"
        result.append(
            RepSla(
                rep=name,
                clocks=t.clocks,
                met=t.met,
                missed=t.missed,
                breached=t.breached,
                running=t.running,
                compliance=rate(name, t.met, decided),
                median_response_seconds=(
                    None if t.median_response is None else t.median_response.total_seconds()
                ),
            )
        )
    return result


@dataclass(frozen=True)
class FollowUps:
    """One owner's follow-up tasks (``[cadence]``) at an instant: how many, how many late."""

    owner: str
    tasks: int
    overdue: int
    longest_overdue_seconds: float | None
    """Working time the most overdue task is late by."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def overdue_by_owner(found: Sequence[Task]) -> list[FollowUps]:
    """Per owner (``(nobody)`` for unowned leads), most overdue tasks first."""
    by_owner: dict[str, list[Task]] = {}
    for task in found:
        by_owner.setdefault(task.owner or "(nobody)", []).append(task)
    rows = [
        FollowUps(
            owner,
            len(tasks),
            sum(t.overdue for t in tasks),
            max((t.overdue_by.total_seconds() for t in tasks if t.overdue), default=None),
        )
        for owner, tasks in by_owner.items()
    ]
    return sorted(rows, key=lambda r: (-r.overdue, -r.tasks, r.owner))


HEAT_BINS = (0.0, 1.0, 5.0, 10.0, 20.0, 50.0, 100.0)
"""Edges of the heat histogram; the default playbook's warm (5) and hot (20) heat are edges."""


@dataclass(frozen=True)
class Snapshot:
    """The open leads at one instant: how many of each temperature, and their heat."""

    at: datetime
    hot: int
    warm: int
    cold: int
    heat: list[tuple[str, int]]
    """Heat histogram: ``(bin label, open leads)``."""

    def as_json(self) -> dict[str, Any]:
        return {
            "at": isoformat(self.at),
            "hot": self.hot,
            "warm": self.warm,
            "cold": self.cold,
            "heat": [{"bucket": name, "leads": n} for name, n in self.heat],
        }


def heat_bin(heat: float, edges: Sequence[float] = HEAT_BINS) -> str:
    """The histogram bin of a heat value.

    >>> heat_bin(0.0), heat_bin(4.99), heat_bin(20.0), heat_bin(1e6)
    ('0', '1–5', '20–50', '≥ 100')
    """
    if heat <= edges[0]:
        return f"{edges[0]:g}"
    if heat < edges[1]:
        return f"< {edges[1]:g}"
    for low, high in pairwise(edges[1:]):
        if heat < high:
            return f"{low:g}–{high:g}"
    return f"≥ {edges[-1]:g}"


def heat_bin_index(
    heats: npt.NDArray[np.float64], edges: Sequence[float] = HEAT_BINS
) -> npt.NDArray[np.intp]:
    """:func:`heat_bin` of many heats at once, as indexes into :func:`heat_bins`.

    >>> labels = heat_bins()
    >>> [labels[i] for i in heat_bin_index(np.array([0.0, 4.99, 20.0, 1e6]))]
    ['0', '1–5', '20–50', '≥ 100']
    """
    upper = np.searchsorted(np.asarray(edges[2:], dtype=np.float64), heats, side="right")
    return np.where(heats <= edges[0], 0, np.where(heats < edges[1], 1, 2 + upper)).astype(np.intp)


def heat_bins(edges: Sequence[float] = HEAT_BINS) -> list[str]:
    return [heat_bin(edges[0]), heat_bin((edges[0] + edges[1]) / 2)] + [
        heat_bin(low) for low in edges[1:]
    ]


def snapshots(
    leads: Sequence[Lived], book: Playbook, instants: Sequence[datetime]
) -> list[Snapshot]:
    """The open leads among ``leads`` at each instant, replayed from their histories (each
    lead's fit scored once: it does not change with time). Agrees with the ranking's own
    replay of a past instant (``leadheat leads --at``), which the tests check."""
    fits = {
        lead.lead_id: score_fit(lead.history.attributes, book.fit.rules, book.fit.qualified_at)
        for lead in leads
    }
    found = []
    for at in instants:
        temperatures: Counter[str] = Counter()
        bins: Counter[str] = Counter()
        for lead in leads:
            if lead.created_at > at:
                continue
            heat, facts, _, status = facts_at(lead.history, book, at, fit=fits[lead.lead_id])
            if status != "open":
                continue
            heat_then = heat.at(at)
            temperatures[classify(heat_then, facts, at, book).temperature.value] += 1
            bins[heat_bin(heat_then)] += 1
        found.append(
            Snapshot(
                at,
                temperatures["hot"],
                temperatures["warm"],
                temperatures["cold"],
                [(name, bins[name]) for name in heat_bins()],
            )
        )
    return found


def trend_instants(since: datetime, until: datetime, points: int = 8) -> list[datetime]:
    """``points`` evenly spaced instants ending at ``until``.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [d.day for d in trend_instants(t, t + timedelta(days=6), 4)]
    [1, 3, 5, 7]
    """
    span = until - since
    return [since + span * i // (points - 1) for i in range(points)]
