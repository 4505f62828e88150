"""``leadheat playbook suggest``: learn the signals from the store, write them into the
current playbook, and forecast the gain on later leads than those it learned from.

:func:`histories` reads the store into :class:`~leadheat.analytics.suggest.Histories` (won
outcomes, or an event type as the conversion); :func:`suggest` splits it in time order, fits
the older part (:func:`~leadheat.analytics.suggest.learn`), scales the points so the current
hot and warm thresholds keep about the same share of leads, writes the playbook
(:mod:`leadheat.analytics.rewrite`) and judges both playbooks on the later part.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from leadheat.analytics.backtest import Comparison, compare
from leadheat.analytics.decisions import Story, TooLongError, load_story
from leadheat.analytics.rewrite import Change, duration, number, rewrite
from leadheat.analytics.suggest import (
    DAY_US,
    MIN_CONVERTED,
    MIN_LEADS,
    Floats,
    Histories,
    Learned,
    Rows,
    SignalFit,
    auc_with_interval,
    case_base,
    engaged,
    engaged_window,
    evaluation_rows,
    learn,
    rows_at,
)
from leadheat.playbook import Playbook, parse_playbook
from leadheat.service import LeadheatError
from leadheat.store.state import read_events
from leadheat.times import format_duration, from_micros, isoformat, to_micros

if TYPE_CHECKING:
    from leadheat.service import Leadheat

DEFAULT_SUGGEST_HORIZON = timedelta(days=30)
MAX_EVALUATION_ROWS = 200_000
FALLBACK_SHARES = (0.01, 0.05)


class SuggestError(LeadheatError):
    """The history cannot support a suggestion; says what is missing."""


def _weights(book: Playbook, name: str, properties: Any) -> float:
    """An event's points relative to its signal's (1 without property rules)."""
    signal = book.signals.get(name)
    if signal is None or not signal.rules:
        return 1.0
    value = book.points_for(name, properties if isinstance(properties, dict) else None)
    return value / signal.points if signal.points else value


def from_story(story: Story, book: Playbook) -> Histories:
    """Won outcomes as conversions; each lead from its arrival until its first outcome (or
    now), cut to the times it is engaged (:func:`~leadheat.analytics.suggest.engaged`)."""
    names: dict[str, int] = {}
    lead: list[int] = []
    at: list[int] = []
    kind: list[int] = []
    weight: list[float] = []
    start: list[int] = []
    end: list[int] = []
    won_lead: list[int] = []
    won_at: list[int] = []
    now = to_micros(story.now)
    for index, lived in enumerate(story.leads):
        for event in lived.history.events:
            lead.append(index)
            at.append(to_micros(event.at))
            kind.append(names.setdefault(event.type, len(names)))
            weight.append(_weights(book, event.type, event.properties))
        outcomes = sorted(lived.history.outcomes, key=lambda o: o.at)
        start.append(to_micros(lived.created_at))
        end.append(to_micros(outcomes[0].at) if outcomes else now)
        if outcomes and outcomes[0].outcome == "won":
            won_lead.append(index)
            won_at.append(end[-1])
    return _arrays(names, lead, at, kind, weight, start, end, won_lead, won_at)


def from_events(
    rows: Sequence[tuple[int, str, int, Any]], book: Playbook, converts_on: str
) -> Histories:
    """Each event of type ``converts_on`` is a conversion (and a signal too); a lead from its
    first event until the last stored event, cut to the times it is engaged."""
    names: dict[str, int] = {}
    leads: dict[int, int] = {}
    lead: list[int] = []
    at: list[int] = []
    kind: list[int] = []
    weight: list[float] = []
    conv_lead: list[int] = []
    conv_at: list[int] = []
    for lead_id, name, micros, properties in rows:
        index = leads.setdefault(lead_id, len(leads))
        lead.append(index)
        at.append(int(micros))
        kind.append(names.setdefault(name, len(names)))
        weight.append(_weights(book, name, properties))
        if name == converts_on:
            conv_lead.append(index)
            conv_at.append(int(micros))
    if not conv_at:
        raise SuggestError(f"--converts-on {converts_on!r}: no stored event has that type")
    first = np.full(len(leads), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, np.asarray(lead, dtype=np.int64), np.asarray(at, dtype=np.int64))
    last = max(at)
    return _arrays(
        names, lead, at, kind, weight, list(first), [last] * len(leads), conv_lead, conv_at
    )


def _arrays(
    names: dict[str, int],
    lead: list[int],
    at: list[int],
    kind: list[int],
    weight: list[float],
    start: Sequence[int],
    end: Sequence[int],
    conv_lead: list[int],
    conv_at: list[int],
) -> Histories:
    def ints(values: Sequence[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.asarray(values, dtype=np.int64).reshape(-1)

    return Histories(
        list(names),
        ints(lead),
        ints(at),
        ints(kind),
        np.asarray(weight, dtype=np.float64).reshape(-1),
        ints(start),
        ints(end),
        ints(conv_lead),
        ints(conv_at),
    )


@dataclass(frozen=True)
class Suggested:
    """One signal's suggestion as the playbook will say it."""

    fit: SignalFit
    was_points: float
    was_half_life: timedelta
    points: float
    half_life: timedelta
    points_interval: tuple[float, float]
    half_life_interval: tuple[timedelta, timedelta]

    def as_json(self) -> dict[str, Any]:
        days = timedelta(days=1)
        return {
            "type": self.fit.name,
            "status": "fitted" if self.fit.fitted else "kept",
            "leads": self.fit.leads,
            "converted": self.fit.converted,
            "points": self.points,
            "half_life": duration(self.half_life),
            "half_life_days": self.half_life / days,
            "was_points": self.was_points,
            "was_half_life": format_duration(self.was_half_life),
            "points_interval": list(self.points_interval),
            "half_life_days_interval": [h / days for h in self.half_life_interval],
        }


@dataclass(frozen=True)
class Suggestion:
    source: str
    """The suggested playbook, complete."""
    current_source: str
    signals: list[Suggested]
    scale: float
    shares: dict[str, dict[str, float]]
    learned: Learned
    horizon: timedelta
    mode: str
    fitted_until: datetime
    evaluated: dict[str, Any] | None
    backtest: Comparison | None
    engaged: timedelta | None = None
    """How long after its latest activity a lead counted as at risk (None: as given)."""

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.current_source.splitlines(keepends=True),
                self.source.splitlines(keepends=True),
                "current",
                "suggested",
            )
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "horizon": format_duration(self.horizon),
            "converts_on": self.mode,
            "fitted_until": isoformat(self.fitted_until),
            "engaged_days": None if self.engaged is None else self.engaged / timedelta(days=1),
            "rows": self.learned.rows,
            "conversions": self.learned.conversions,
            "resamples": self.learned.resamples,
            "scale": self.scale,
            "shares": self.shares,
            "signals": [s.as_json() for s in self.signals],
            "held_out": self.evaluated,
            "backtest": None if self.backtest is None else self.backtest.as_json(),
            "diff": self.diff,
        }


def suggest(
    histories: Histories,
    book: Playbook,
    source: str,
    *,
    horizon: timedelta = DEFAULT_SUGGEST_HORIZON,
    end: datetime,
    signals: Sequence[str] | None = None,
    holdout: float = 0.3,
    resamples: int = 50,
    mode: str = "won",
    seed: int = 0,
    story: Story | None = None,
    deadline: float | None = None,
) -> Suggestion:
    """The whole suggestion; ``story`` (outcome mode) adds the engine's backtest of both
    playbooks on the leads that arrived after the fit."""
    if len(histories.conversion_at) == 0:
        raise SuggestError("no conversions in the history: nothing to learn from")
    unknown = sorted(set(signals or ()) - set(histories.names))
    if unknown:
        raise SuggestError(f"--signals: no stored event has the type {', '.join(unknown)}")
    horizon_us = horizon // timedelta(microseconds=1)
    end_us = to_micros(end)
    cut_us = end_us
    if holdout > 0:
        cut_us = int(np.quantile(histories.conversion_at, 1 - holdout))
        cut_us = min(cut_us, end_us - horizon_us - DAY_US)
        if cut_us <= int(histories.start_us.min(initial=end_us)):
            raise SuggestError(
                f"the history is shorter than --horizon {format_duration(horizon)} plus a "
                "period to learn from: give a shorter --horizon, or --holdout 0"
            )
    index = {name: i for i, name in enumerate(histories.names)}
    forecast: Playbook | None = None
    if holdout > 0:  # the method, fitted on the older part only, for the held-out forecast
        older = histories.until(cut_us)
        early = learn(older, signals, resamples=0, seed=seed)
        _check(deadline)
        forecast = parse_playbook(
            _written(older, early, book, source, index, seed)[0], "suggested on the older part"
        )
    learned = learn(histories, signals, resamples=resamples, seed=seed)
    _check(deadline)
    text, suggested, scale, shares = _written(histories, learned, book, source, index, seed)
    evaluated = None
    if forecast is not None:
        evaluated = _held_out(histories, book, forecast, index, cut_us, end_us, horizon_us, seed)
    _check(deadline)
    compared = None
    if story is not None and forecast is not None:
        later = Story(
            story.now,
            [lead for lead in story.leads if to_micros(lead.created_at) >= cut_us],
            story.asked_at,
            story.first_rep,
            story.sequences,
        )
        if later.leads:
            compared = compare(later, book, forecast, horizon, deadline)
    return Suggestion(
        text, source, suggested, scale, shares, learned, horizon, mode, from_micros(cut_us),
        evaluated, compared,
    )  # fmt: skip


def _written(
    histories: Histories,
    learned: Learned,
    book: Playbook,
    source: str,
    index: dict[str, int],
    seed: int,
) -> tuple[str, list[Suggested], float, dict[str, dict[str, float]]]:
    """The playbook text with ``learned`` written in, scaled to keep the hot and warm
    shares."""
    rows = case_base(histories, np.random.default_rng(seed + 1))
    at_risk = rows.label == 0
    current = _current_heat(rows, book, index)
    fitted = {index[s.name]: s for s in learned.fitted()}
    raw = np.zeros(len(rows.lead))
    for kind, s in fitted.items():
        raw += s.coefficient * rows.feature(kind, s.half_life_days)
    kept_heat = _current_heat(rows, book, {n: i for n, i in index.items() if i not in fitted})
    scale, shares = _scale(current[at_risk], raw[at_risk], kept_heat[at_risk], book)
    suggested: list[Suggested] = []
    changes: list[Change] = []
    kept: dict[str, str] = {}
    for s in learned.signals:
        was_points = float(book.signals[s.name].points) if s.name in book.signals else 0.0
        was_half = book.half_life_for(s.name)
        if not s.fitted:
            reason = (
                f"too little data ({s.leads} leads, {s.converted} converted; needs "
                f"{MIN_LEADS} and {MIN_CONVERTED})"
            )
            suggested.append(
                Suggested(
                    s,
                    was_points,
                    was_half,
                    was_points,
                    was_half,
                    (was_points,) * 2,
                    (was_half,) * 2,
                )
            )
            if s.name in book.signals:
                kept[s.name] = reason
            continue
        points = float(number(scale * s.coefficient))
        half = timedelta(days=s.half_life_days)
        low, high = sorted((scale * s.coefficient_interval[0], scale * s.coefficient_interval[1]))
        interval = (
            timedelta(days=s.half_life_interval[0]),
            timedelta(days=s.half_life_interval[1]),
        )
        row = Suggested(s, was_points, was_half, points, half, (low, high), interval)
        suggested.append(row)
        was = (
            f"was {number(was_points)} / {duration(was_half)}" if s.name in book.signals else "new"
        )
        evidence = (
            f"95 % {number(low)}–{number(high)} / {duration(interval[0])}–{duration(interval[1])}"
            if learned.resamples
            else "no intervals (--resamples 0)"
        )
        comment = f"{was}; {evidence}; {s.leads} leads"
        signal = book.signals.get(s.name)
        factor = None
        if signal is not None and signal.rules and signal.points:
            factor = points / signal.points
        changes.append(Change(s.name, points, half, comment, factor))
    return rewrite(source, changes, kept), suggested, scale, shares


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TooLongError("the suggestion took longer than its limit")


def _current_heat(rows: Rows, book: Playbook, index: dict[str, int]) -> Floats:
    heat = np.zeros(len(rows.lead))
    for name, kind in index.items():
        signal = book.signals.get(name)
        if signal is None:
            continue
        reference = signal.points if (signal.points or not signal.rules) else 1.0
        if reference:
            heat += reference * rows.feature(kind, book.half_life_for(name) / timedelta(days=1))
    return heat


def _scale(
    current: Floats, raw: Floats, kept: Floats, book: Playbook
) -> tuple[float, dict[str, dict[str, float]]]:
    """The factor on the learned points that keeps the shares of time leads spend at or
    above the hot and the warm heat closest to the current playbook's. A playbook under which
    these leads are never warm (it scores none of their signals) has no shares to keep: then
    the aim is 1 % of the time hot and 5 % warm, so the thresholds still mean something."""
    hot, warm = book.temperature.hot_heat, book.temperature.warm_heat
    now = (float((current >= hot).mean()), float((current >= warm).mean()))
    target = now if now[1] > 0 else FALLBACK_SHARES
    top = float(np.quantile(current, 0.99)) if len(current) else 0.0
    best: tuple[float, float] | None = None
    for factor in np.geomspace(1e-3, 1e5, 481):
        heat = factor * raw + kept
        got = (float((heat >= hot).mean()), float((heat >= warm).mean()))
        miss = (_logit(got[0]) - _logit(target[0])) ** 2 + (_logit(got[1]) - _logit(target[1])) ** 2
        tail = float(np.quantile(heat, 0.99)) if len(heat) else 0.0
        miss += 1e-6 * np.log((abs(tail) + 1e-9) / (abs(top) + 1e-9)) ** 2
        if best is None or miss < best[1]:
            best = (float(factor), miss)
    factor = best[0] if best else 1.0
    heat = factor * raw + kept
    return factor, {
        "current": {"hot": now[0], "warm": now[1]},
        "aimed": {"hot": target[0], "warm": target[1]},
        "suggested": {
            "hot": float((heat >= hot).mean()),
            "warm": float((heat >= warm).mean()),
        },
    }


def _logit(share: float) -> float:
    """Shares compared on the log-odds scale, so that 1 % against 2 % hot counts as much as
    50 % against 67 % warm."""
    p = min(max(share, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


def _held_out(
    histories: Histories,
    current: Playbook,
    candidate: Playbook,
    index: dict[str, int],
    cut_us: int,
    end_us: int,
    horizon_us: int,
    seed: int,
) -> dict[str, Any]:
    """ROC-AUC of both playbooks' heat at snapshots after the fit, against converting
    within the horizon; the gain with a paired bootstrap interval."""
    every = max(horizon_us // 2, DAY_US)
    rows = evaluation_rows(histories, cut_us, end_us, horizon_us, every)
    if len(rows.lead) > MAX_EVALUATION_ROWS:
        pick = np.sort(
            np.random.default_rng(seed).choice(len(rows.lead), MAX_EVALUATION_ROWS, replace=False)
        )
        rows = rows_at(histories, rows.lead[pick], rows.at[pick], rows.label[pick])
    before = _current_heat(rows, current, index)
    after = _current_heat(rows, candidate, index)
    a = auc_with_interval(before, rows)
    b = auc_with_interval(after, rows)
    gain = _gain(before, after, rows)
    return {
        "from": isoformat(from_micros(cut_us)),
        "until": isoformat(from_micros(end_us)),
        "rows": len(rows.lead),
        "converted": int(rows.label.sum()),
        "current": {"roc_auc": a[0], "interval": [a[1], a[2]]},
        "suggested": {"roc_auc": b[0], "interval": [b[1], b[2]]},
        "gain": gain,
    }


def _gain(before: Floats, after: Floats, rows: Rows, resamples: int = 100) -> dict[str, Any]:
    from leadheat.analytics.rates import roc_auc

    labels = rows.label.astype(bool)
    a, b = roc_auc(np.round(before, 12), labels), roc_auc(np.round(after, 12), labels)
    if a is None or b is None:
        return {"roc_auc": None, "interval": [None, None]}
    rng = np.random.default_rng(2)
    unique, inverse = np.unique(rows.lead, return_inverse=True)
    found = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, len(unique), len(unique)), minlength=len(unique))
        take = np.repeat(np.arange(len(rows.lead)), counts[inverse])
        x = roc_auc(np.round(before[take], 12), labels[take])
        y = roc_auc(np.round(after[take], 12), labels[take])
        if x is not None and y is not None:
            found.append(y - x)
    low, high = np.quantile(found, [0.025, 0.975]) if found else (None, None)
    return {
        "roc_auc": b - a,
        "interval": [None if low is None else float(low), None if high is None else float(high)],
    }


def from_store(
    lh: Leadheat,
    *,
    horizon: timedelta = DEFAULT_SUGGEST_HORIZON,
    signals: Sequence[str] | None = None,
    converts_on: str | None = None,
    holdout: float = 0.3,
    resamples: int = 50,
    seed: int = 0,
    deadline: float | None = None,
    until: datetime | None = None,
) -> Suggestion:
    """:func:`suggest` over the store, as of ``until`` (default now): only what was known
    then."""
    _, book = lh.playbook()
    source = lh.playbook_source()
    now = until or lh.clock()
    with lh.engine.connect() as connection:
        if converts_on is None:
            story = load_story(connection, now)
            if not story.leads:
                raise SuggestError("no leads stored: nothing to learn from")
            data = from_story(story, book)
            end = now
        else:
            story = None
            micros = to_micros(now)
            rows = [r for r in read_events(connection, book) if r[2] <= micros]
            if not rows:
                raise SuggestError("no events stored: nothing to learn from")
            data = from_events(rows, book, converts_on)
            end = from_micros(int(data.event_at.max()))
    window = engaged_window(data)
    found = suggest(
        engaged(data, window), book, source, horizon=horizon, end=end, signals=signals,
        holdout=holdout, resamples=resamples, mode=converts_on or "won", seed=seed,
        story=story, deadline=deadline,
    )  # fmt: skip
    return replace(found, engaged=timedelta(microseconds=window))
