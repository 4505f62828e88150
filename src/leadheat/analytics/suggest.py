"""Learn each signal's points and half-life from what the team's leads did next.

The model is the one heat already is, read as a hazard: a lead's instantaneous rate of
converting is ``λ(t) = exp(b + Σⱼ wⱼ · xⱼ(t))`` where ``xⱼ(t) = Σ 2^(−(t − tₑ)/hⱼ)`` sums the
lead's past events of type ``j`` (each weighted by its current points relative to the
signal's, so property rules keep their ratios). Ranking leads by ``Σ wⱼ xⱼ`` ranks them by
their chance of converting soon, so ``wⱼ`` (scaled) are the points and ``hⱼ`` the half-lives.

Fitting uses case-base sampling (Hanley & Miettinen, 2009): every conversion is a row with the
lead's signals just before it (label 1), and rows drawn uniformly from the time leads spent at
risk are the rest (label 0). A logistic regression on those rows estimates ``wⱼ`` exactly as the
hazard model does (its intercept absorbs the sampling ratio). Half-lives are searched per
signal by coordinate descent on a log grid (each ``hⱼ`` in turn, the others held), refined by a
parabola through the best grid point and its neighbours. Intervals come from refitting on
leads resampled with replacement (bootstrap).

Pure numpy over plain arrays: :mod:`leadheat.analytics.team` reads the store into
:class:`Histories`, the CLI and the dashboard write the playbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from leadheat.analytics.rates import roc_auc

DAY_US = 86_400_000_000
GRID_DAYS = tuple(float(2 ** (k / 2)) for k in range(-2, 18))
"""Half-lives tried, in days: 0.5 d to 362 d, each √2 times the last."""
MIN_LEADS = 30
"""A signal is fitted only when at least this many leads have it ..."""
MIN_CONVERTED = 10
"""... and at least this many of those leads converted; else it keeps its current values."""
NEGATIVES_PER_CONVERSION = 10
MAX_NEGATIVES = 60_000
RIDGE = 1e-3

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Histories:
    """Leads as arrays. Events: which lead (an index into the lead arrays), when (µs), which
    signal (an index into ``names``) and its weight (current points ÷ the signal's points).
    Leads are at risk of converting in spells ``[start_us, end_us)`` of lead ``spell_lead``
    (default: one spell per lead, spell ``i`` of lead ``i``); conversions (a won outcome, or
    each event of the ``--converts-on`` type) are ``(lead, µs)`` pairs and count when they
    fall inside one of their lead's spells."""

    names: list[str]
    event_lead: Ints
    event_at: Ints
    event_kind: Ints
    event_weight: Floats
    start_us: Ints
    end_us: Ints
    conversion_lead: Ints
    conversion_at: Ints
    spell_lead: Ints | None = None
    lead_total: int | None = None

    @property
    def leads(self) -> int:
        return len(self.start_us) if self.lead_total is None else self.lead_total

    @property
    def spells(self) -> Ints:
        """The lead of each spell."""
        if self.spell_lead is None:
            return np.arange(len(self.start_us), dtype=np.int64)
        return self.spell_lead

    def inside(self, lead: Ints, at: Ints) -> npt.NDArray[np.bool_]:
        """Whether each ``(lead, instant)`` falls in one of the lead's spells
        (``start < at <= end``)."""
        spells = self.spells
        order = np.lexsort((self.start_us, spells))
        first = np.searchsorted(spells[order], lead, side="left")
        last = np.searchsorted(spells[order], lead, side="right")
        found = np.zeros(len(lead), dtype=bool)
        for i in np.flatnonzero(last > first):  # a lead has few spells
            mine = order[first[i] : last[i]]
            found[i] = bool(np.any((self.start_us[mine] < at[i]) & (at[i] <= self.end_us[mine])))
        return found

    def until(self, cut_us: int) -> Histories:
        """What was known at ``cut_us``: events and conversions before it, and time at risk
        ending there (leads that arrived later are not at risk at all)."""
        keep_event = self.event_at < cut_us
        keep_conversion = self.conversion_at < cut_us
        return Histories(
            self.names,
            self.event_lead[keep_event],
            self.event_at[keep_event],
            self.event_kind[keep_event],
            self.event_weight[keep_event],
            self.start_us,
            np.minimum(self.end_us, cut_us),
            self.conversion_lead[keep_conversion],
            self.conversion_at[keep_conversion],
            self.spell_lead,
            self.lead_total,
        )


@dataclass
class Rows:
    """Instants at which leads are looked at, and each signal's events before them."""

    lead: Ints
    at: Ints
    label: Floats
    pairs: dict[int, tuple[Ints, Floats, Floats]] = field(default_factory=dict)
    """Per signal: ``(row, age in days, weight)`` of every event before the row's instant."""

    def feature(self, kind: int, half_life_days: float) -> Floats:
        """``x_kind`` at every row for this half-life."""
        found = self.pairs.get(kind)
        if found is None:
            return np.zeros(len(self.lead))
        row, age, weight = found
        decayed = weight * np.exp2(-age / half_life_days)
        return np.bincount(row, weights=decayed, minlength=len(self.lead)).astype(np.float64)

    def heat(self, points: dict[int, float], half_lives: dict[int, float]) -> Floats:
        total = np.zeros(len(self.lead))
        for kind, value in points.items():
            if value:
                total += value * self.feature(kind, half_lives[kind])
        return total


def rows_at(histories: Histories, lead: Ints, at: Ints, label: Floats) -> Rows:
    """Rows for ``(lead, instant)`` pairs, with the events strictly before each instant."""
    order = np.lexsort((histories.event_at, histories.event_lead))
    ev_lead = histories.event_lead[order]
    ev_at = histories.event_at[order]
    origin = int(min(ev_at.min(initial=0), at.min(initial=0)))
    span = int(max(ev_at.max(initial=0), at.max(initial=0))) - origin + 1
    ms = max(span // 1000 + 2, 1)
    # (lead, instant) as one sortable integer, at millisecond precision
    ev_key = ev_lead * ms + (ev_at - origin) // 1000
    row_key = lead * ms + (at - origin) // 1000
    first = np.searchsorted(ev_key, lead * ms, side="left")
    last = np.searchsorted(ev_key, row_key, side="left")
    counts = np.maximum(last - first, 0)
    total = int(counts.sum())
    row_of_pair = np.repeat(np.arange(len(lead), dtype=np.int64), counts)
    starts = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    event = (np.arange(total, dtype=np.int64) + starts).astype(np.int64)
    event = order[event]
    age = (at[row_of_pair] - histories.event_at[event]) / DAY_US
    kind = histories.event_kind[event]
    weight = histories.event_weight[event]
    rows = Rows(lead, at, label)
    for k in np.unique(kind):
        mask = kind == k
        rows.pairs[int(k)] = (row_of_pair[mask], age[mask], weight[mask])
    return rows


def case_base(histories: Histories, rng: np.random.Generator) -> Rows:
    """Every conversion (label 1) and instants drawn uniformly over the time leads spent at
    risk (label 0)."""
    inside = histories.inside(histories.conversion_lead, histories.conversion_at)
    pos_lead = histories.conversion_lead[inside]
    pos_at = histories.conversion_at[inside]
    length = np.maximum(histories.end_us - histories.start_us, 0).astype(np.float64)
    if length.sum() <= 0:
        raise ValueError("no lead spent any time at risk of converting")
    count = int(min(MAX_NEGATIVES, max(NEGATIVES_PER_CONVERSION * len(pos_at), 2_000)))
    spell = rng.choice(len(length), size=count, p=length / length.sum())
    neg_lead = histories.spells[spell]
    neg_at = histories.start_us[spell] + (rng.random(count) * length[spell]).astype(np.int64)
    lead = np.concatenate((pos_lead, neg_lead)).astype(np.int64)
    at = np.concatenate((pos_at, neg_at)).astype(np.int64)
    label = np.concatenate((np.ones(len(pos_at)), np.zeros(count)))
    return rows_at(histories, lead, at, label)


def logistic(
    x: Floats,
    y: Floats,
    weights: Floats | None = None,
    iterations: int = 30,
    warm: Floats | None = None,
) -> tuple[Floats, float]:
    """Coefficients (intercept first) and log-likelihood of a ridge-damped logistic
    regression, by Newton's method on standardised columns, each step halved until the
    penalised likelihood rises (a warm start far from the optimum must not diverge)."""
    n, k = x.shape
    w = np.ones(n) if weights is None else weights
    scale = np.sqrt((w[:, None] * x * x).sum(0) / max(w.sum(), 1.0))
    scale[scale == 0] = 1.0
    design = np.hstack((np.ones((n, 1)), x / scale))
    penalty = np.full(k + 1, RIDGE * max(w.sum(), 1.0))
    penalty[0] = 0.0

    def objective(beta: Floats) -> tuple[float, float]:
        eta = design @ beta
        loglik = float((w * (y * eta - np.logaddexp(0, eta))).sum())
        return loglik - 0.5 * float((penalty * beta * beta).sum()), loglik

    cold = np.zeros(k + 1)
    mean = float((w * y).sum() / max(w.sum(), 1.0))
    cold[0] = np.log(max(mean, 1e-9) / max(1 - mean, 1e-9))
    beta = cold
    if warm is not None and len(warm) == k + 1:
        start = np.concatenate(([warm[0]], warm[1:] * scale))
        if objective(start)[0] > objective(cold)[0]:
            beta = start
    current = objective(beta)[0]
    for _ in range(iterations):
        eta = design @ beta
        p = 0.5 * (1 + np.tanh(0.5 * eta))
        gradient = design.T @ (w * (y - p)) - penalty * beta
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-9 * np.eye(k + 1), gradient)
        for _ in range(30):
            trial = beta + step
            value = objective(trial)[0]
            if value >= current - 1e-9:
                break
            step = step / 2
        else:
            break
        beta, current = trial, value
        if np.abs(step).max() < 1e-5:
            break
    return np.concatenate(([beta[0]], beta[1:] / scale)), objective(beta)[1]


@dataclass(frozen=True)
class Fitted:
    kinds: list[int]
    points: dict[int, float]
    half_lives: dict[int, float]
    """In days."""
    loglik: float


def fit_rows(
    rows: Rows,
    kinds: Sequence[int],
    weights: Floats | None = None,
    start: dict[int, float] | None = None,
    grid: Sequence[float] = GRID_DAYS,
    rounds: int = 3,
    grids: dict[int, list[float]] | None = None,
    cache: dict[tuple[int, float], Floats] | None = None,
) -> Fitted:
    """Points and half-lives of ``kinds`` by coordinate descent on ``grid`` (see module)."""
    memo = {} if cache is None else cache

    def column(kind: int, h: float) -> Floats:
        key = (kind, h)
        if key not in memo:
            memo[key] = rows.feature(kind, h)
        return memo[key]

    chosen = {k: (start or {}).get(k, 14.0) for k in kinds}
    if not kinds:
        return Fitted([], {}, {}, logistic(np.zeros((len(rows.lead), 0)), rows.label, weights)[1])
    columns = {k: column(k, chosen[k]) for k in kinds}

    last: list[Floats] = []

    def score(kind: int, values: Floats) -> tuple[float, Floats]:
        x = np.column_stack([values if k == kind else columns[k] for k in kinds])
        beta, loglik = logistic(x, rows.label, weights, warm=last[0] if last else None)
        last[:] = [beta]
        return loglik, beta

    for round_ in range(rounds):
        moved = False
        for kind in kinds:
            tried_grid = list(grid) if grids is None else grids[kind]
            if round_ > 0 and grids is None:  # later rounds look near where the last ended
                near = int(np.argmin(np.abs(np.log(np.asarray(grid) / chosen[kind]))))
                tried_grid = list(grid[max(near - 3, 0) : near + 4])
            tried = [(h, score(kind, column(kind, h))[0]) for h in tried_grid]
            index = int(np.argmax([s for _, s in tried]))
            h, top = tried[index]
            if 0 < index < len(tried_grid) - 1:  # a parabola through three points in log h
                (h0, s0), (h1, s1), (h2, s2) = tried[index - 1 : index + 2]
                u0, u1, u2 = np.log([h0, h1, h2])
                denominator = s0 - 2 * s1 + s2
                if denominator < 0:
                    vertex = float(u1 + 0.5 * (u1 - u0) * (s0 - s2) / denominator)
                    vertex = min(max(vertex, float(u0)), float(u2))
                    refined = float(np.exp(vertex))
                    s_refined = score(kind, column(kind, refined))[0]
                    if s_refined > top:
                        h, top = refined, s_refined
            if h != chosen[kind]:
                moved = True
            chosen[kind] = h
            columns[kind] = column(kind, h)
        if not moved:
            break
    x = np.column_stack([columns[k] for k in kinds])
    beta, loglik = logistic(x, rows.label, weights)
    return Fitted(
        list(kinds),
        {k: float(beta[i + 1]) for i, k in enumerate(kinds)},
        dict(chosen),
        loglik,
    )


@dataclass(frozen=True)
class SignalFit:
    """One signal's learned points (in the model's units) and half-life, with intervals."""

    name: str
    leads: int
    converted: int
    fitted: bool
    coefficient: float = 0.0
    half_life_days: float = 0.0
    coefficient_interval: tuple[float, float] = (0.0, 0.0)
    half_life_interval: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Learned:
    signals: list[SignalFit]
    rows: int
    conversions: int
    resamples: int

    def fitted(self) -> list[SignalFit]:
        return [s for s in self.signals if s.fitted]


def support(histories: Histories) -> tuple[Ints, Ints]:
    """Per signal: leads with an event of it, and how many of those converted."""
    kinds = len(histories.names)
    pairs = np.unique(histories.event_kind * histories.leads + histories.event_lead)
    kind_of = pairs // max(histories.leads, 1)
    lead_of = pairs % max(histories.leads, 1)
    converted = np.zeros(histories.leads, dtype=bool)
    converted[histories.conversion_lead] = True
    leads = np.bincount(kind_of, minlength=kinds).astype(np.int64)
    won = np.bincount(kind_of, weights=converted[lead_of], minlength=kinds).astype(np.int64)
    return leads, won


def learn(
    histories: Histories,
    wanted: Sequence[str] | None = None,
    *,
    resamples: int = 50,
    seed: int = 0,
) -> Learned:
    """Fit every signal (or those ``wanted``) with enough data; see the module."""
    rng = np.random.default_rng(seed)
    leads, won = support(histories)
    signals: list[SignalFit] = []
    kinds: list[int] = []
    for kind, name in enumerate(histories.names):
        if wanted is not None and name not in wanted:
            continue
        enough = leads[kind] >= MIN_LEADS and won[kind] >= MIN_CONVERTED
        signals.append(SignalFit(name, int(leads[kind]), int(won[kind]), bool(enough)))
        if enough:
            kinds.append(kind)
    rows = case_base(histories, rng)
    cache: dict[tuple[int, float], Floats] = {}
    point = fit_rows(rows, kinds, cache=cache)
    samples: list[Fitted] = []
    by_lead = rows.lead
    for _ in range(resamples):
        counts = np.bincount(
            rng.integers(0, histories.leads, histories.leads), minlength=histories.leads
        )
        samples.append(
            fit_rows(
                rows,
                kinds,
                counts[by_lead].astype(np.float64),
                start=point.half_lives,
                rounds=1,
                grids={k: _near(h) for k, h in point.half_lives.items()},
                cache=cache,
            )
        )
    out: list[SignalFit] = []
    for signal in signals:
        if not signal.fitted:
            out.append(signal)
            continue
        kind = histories.names.index(signal.name)
        coefficients = [s.points[kind] for s in samples]
        halves = [s.half_lives[kind] for s in samples]
        out.append(
            SignalFit(
                signal.name,
                signal.leads,
                signal.converted,
                True,
                point.points[kind],
                point.half_lives[kind],
                _interval(coefficients, point.points[kind]),
                _interval(halves, point.half_lives[kind]),
            )
        )
    return Learned(out, len(rows.lead), int(rows.label.sum()), resamples)


def _near(h: float) -> list[float]:
    """Grid points around ``h`` for a bootstrap refit (×/÷ 2 in steps of 2^¼)."""
    return [h * 2 ** (k / 4) for k in range(-4, 5)]


def _interval(values: Sequence[float], estimate: float) -> tuple[float, float]:
    if not values:
        return (estimate, estimate)
    low, high = np.quantile(np.asarray(values), [0.025, 0.975])
    return (float(low), float(high))


def evaluation_rows(
    histories: Histories, since_us: int, until_us: int, horizon_us: int, every_us: int
) -> Rows:
    """Snapshots every ``every_us`` from ``since_us`` while ``s + horizon`` is by
    ``until_us``: each lead at risk at ``s`` is a row, labelled 1 when it converted within
    the horizon after ``s``."""
    leads: list[Ints] = []
    ats: list[Ints] = []
    labels: list[Floats] = []
    s = since_us
    order = np.argsort(histories.conversion_at)
    conv_at = histories.conversion_at[order]
    conv_lead = histories.conversion_lead[order]
    while s + horizon_us <= until_us:
        risk = np.unique(histories.spells[(histories.start_us <= s) & (histories.end_us > s)])
        lo, hi = np.searchsorted(conv_at, [s, s + horizon_us], side="right")
        converted = np.isin(risk, conv_lead[lo:hi])
        leads.append(risk.astype(np.int64))
        ats.append(np.full(len(risk), s, dtype=np.int64))
        labels.append(converted.astype(np.float64))
        s += every_us
    if not leads:
        raise ValueError("no snapshot fits in the held-out period")
    return rows_at(histories, np.concatenate(leads), np.concatenate(ats), np.concatenate(labels))


def auc_with_interval(
    scores: Floats, rows: Rows, resamples: int = 100, seed: int = 1
) -> tuple[float | None, float | None, float | None]:
    """ROC-AUC of ``scores`` against the rows' labels, with a 95 % bootstrap interval over
    leads."""
    labels = rows.label.astype(bool)
    estimate = roc_auc(np.round(scores, 12), labels)
    if estimate is None:
        return None, None, None
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(rows.lead, return_inverse=True)
    found = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, len(unique), len(unique)), minlength=len(unique))
        take = np.repeat(np.arange(len(rows.lead)), counts[inverse])
        value = roc_auc(np.round(scores[take], 12), labels[take])
        if value is not None:
            found.append(value)
    low, high = _interval(found, estimate)
    return estimate, low, high


ENGAGED_QUANTILE = 0.9
FALLBACK_ENGAGED_US = 14 * DAY_US


def engaged_window(histories: Histories) -> int:
    """How long after its latest activity (an event, or its arrival) a lead still converts:
    the 90th percentile of that time over the conversions (14 days with fewer than
    :data:`MIN_CONVERTED`), at least a day. Longer silences are taken as a lead gone."""
    order = np.lexsort((histories.event_at, histories.event_lead))
    ev_lead = histories.event_lead[order]
    ev_at = histories.event_at[order]
    conv_lead, conv_at = histories.conversion_lead, histories.conversion_at
    if len(conv_at) < MIN_CONVERTED:
        return FALLBACK_ENGAGED_US
    origin = int(min(ev_at.min(initial=0), conv_at.min(initial=0)))
    ms = (int(max(ev_at.max(initial=0), conv_at.max(initial=0))) - origin) // 1000 + 2
    ev_key = ev_lead * ms + (ev_at - origin) // 1000
    latest = np.searchsorted(ev_key, conv_lead * ms + (conv_at - origin) // 1000, "left") - 1
    found = (latest >= 0) & (ev_lead[np.maximum(latest, 0)] == conv_lead)
    since = histories.start_us[conv_lead]  # spells are per lead here
    since = np.where(found, np.maximum(ev_at[np.maximum(latest, 0)], since), since)
    gaps = conv_at - since
    gaps = gaps[gaps > 0]
    if len(gaps) < MIN_CONVERTED:
        return FALLBACK_ENGAGED_US
    return max(int(np.quantile(gaps, ENGAGED_QUANTILE)), DAY_US)


def engaged(histories: Histories, window_us: int) -> Histories:
    """One spell per lead (arrival to stop) cut to the times the lead is engaged: within
    ``window_us`` of its arrival or of one of its events."""
    order = np.lexsort((histories.event_at, histories.event_lead))
    ev_lead = histories.event_lead[order]
    ev_at = histories.event_at[order]
    bounds = np.searchsorted(ev_lead, np.arange(histories.leads + 1))
    spell_lead: list[int] = []
    start: list[int] = []
    end: list[int] = []
    for lead in range(histories.leads):
        arrival, stop = int(histories.start_us[lead]), int(histories.end_us[lead])
        moments = ev_at[bounds[lead] : bounds[lead + 1]]
        moments = np.concatenate(([arrival], moments[(moments >= arrival) & (moments < stop)]))
        finish = np.minimum(moments + window_us, stop)
        # a new spell starts where a moment comes after every earlier spell has ended
        reach = np.maximum.accumulate(finish)
        fresh = np.concatenate(([True], moments[1:] > reach[:-1]))
        heads = np.flatnonzero(fresh)
        tails = np.concatenate((heads[1:] - 1, [len(moments) - 1]))
        for head, tail in zip(heads, tails, strict=True):
            if reach[tail] > moments[head]:
                spell_lead.append(lead)
                start.append(int(moments[head]))
                end.append(int(reach[tail]))
    return Histories(
        histories.names,
        histories.event_lead,
        histories.event_at,
        histories.event_kind,
        histories.event_weight,
        np.asarray(start, dtype=np.int64),
        np.asarray(end, dtype=np.int64),
        histories.conversion_lead,
        histories.conversion_at,
        np.asarray(spell_lead, dtype=np.int64),
        histories.leads,
    )
