"""Heat: engagement points that halve every half-life, kept exactly with forward decay.

``H(t) = Σ wᵢ · 2^(−(t − tᵢ)/h)``. Rewriting it as ``2^(−t/h) · Σ wᵢ · 2^(tᵢ/h)`` (forward
decay, Cormode et al., ICDE 2009) separates the part that depends on ``now`` from a sum that
never changes once an event is in. Its base-2 logarithm ``K = log2 Σ wᵢ · 2^(tᵢ/h)`` is the
lead's :class:`HeatKey`:

* adding an event is one log-add, in any order, so the state equals a sorted replay;
* ``H(t) = 2^(K − t/h)``, so decay is arithmetic at read time, never a rewrite;
* ``K`` is the same at every ``now``, so ordering leads by ``K`` orders them by heat now:
  "hottest leads" is an index scan.

``t/h`` reaches 4·10⁹ for a one-second half-life in 2100, where a float has a resolution of
10⁻⁶ and the heat would lose six digits. So ``K`` is kept as an integer part and a fraction in
[0, 1): the integer is exact, and ``t/h`` is split with exact ``timedelta`` arithmetic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadheat.times import EPOCH, MAX_INSTANT

# The same keys for many leads at once, as NumPy arrays, are in
# :mod:`leadheat.scoring.heat_arrays`: showing one lead loads no NumPy.

_LOG2_E = 1 / math.log(2)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, order=True, slots=True)
class HeatKey:
    """``log2`` of a forward-decayed sum, as ``whole + frac`` with ``0 <= frac < 1``.

    Keys compare in the order of the heat they give at any common ``now``.

    >>> from datetime import UTC
    >>> day = timedelta(days=1)
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> key = HeatKey.of_event(8, t0, day).plus(HeatKey.of_event(8, t0, day))
    >>> key.heat_at(t0 + 2 * day, day)
    4.0
    """

    whole: int
    frac: float

    @staticmethod
    def normalised(whole: int, frac: float) -> HeatKey:
        """Move the integer part of ``frac`` into ``whole`` so that ``0 <= frac < 1``."""
        shift = math.floor(frac)
        frac -= shift
        whole += shift
        if frac >= 1.0:  # -1e-17 - (-1) rounds to 1.0
            whole, frac = whole + 1, 0.0
        return HeatKey(whole, frac)

    @staticmethod
    def of_event(points: float, at: datetime, half_life: timedelta) -> HeatKey:
        """The key of one event worth ``points > 0`` at ``at``."""
        if not points > 0:
            raise ValueError(f"only events worth more than 0 points carry heat, got {points}")
        turns, rest = divmod(at - EPOCH, half_life)
        return HeatKey.normalised(turns, rest / half_life + math.log2(points))

    def plus(self, other: HeatKey) -> HeatKey:
        """The key of the union of both histories: ``log2(2^self + 2^other)``."""
        high, low = (self, other) if self >= other else (other, self)
        gap = (low.whole - high.whole) + (low.frac - high.frac)  # <= 0
        if gap < -1100:  # 2^gap is below the smallest float: nothing to add
            return high
        return HeatKey.normalised(high.whole, high.frac + math.log1p(2.0**gap) * _LOG2_E)

    def log2_heat_at(self, now: datetime, half_life: timedelta) -> float:
        """``log2 H(now)``, exact to a few ulps for any ``now`` in 1970–2100."""
        turns, rest = divmod(now - EPOCH, half_life)
        return (self.whole - turns) + (self.frac - rest / half_life)

    def heat_at(self, now: datetime, half_life: timedelta) -> float:
        """The heat this key gives at ``now``."""
        exponent = self.log2_heat_at(now, half_life)
        return math.inf if exponent > 1023 else 2.0**exponent

    @staticmethod
    def threshold(theta: float, now: datetime, half_life: timedelta) -> HeatKey:
        """The key whose heat at ``now`` is exactly ``theta``: keys at or above it are hotter.

        This is what turns "heat ≥ θ now" into an index range scan.
        """
        turns, rest = divmod(now - EPOCH, half_life)
        return HeatKey.normalised(turns, rest / half_life + math.log2(theta))


@dataclass(frozen=True, slots=True)
class Engagement:
    """One event as heat sees it: when, worth how much, decaying with which half-life."""

    at: datetime
    points: float
    half_life: timedelta


def signed_span_us(half_life: timedelta, negative: bool) -> int:
    """How a heat key's half-life is stored: microseconds, negated for the key of the part
    that pulls heat down (events worth less than 0 points).

    >>> signed_span_us(timedelta(seconds=1), False), signed_span_us(timedelta(seconds=1), True)
    (1000000, -1000000)
    """
    micros = half_life // timedelta(microseconds=1)
    return -micros if negative else micros


def span_of(signed_us: int) -> tuple[timedelta, bool]:
    """The half-life and the sign (``True``: negative part) of a stored key's half-life."""
    return timedelta(microseconds=abs(signed_us)), signed_us < 0


class Heat:
    """A lead's heat: a :class:`HeatKey` per half-life for the events worth more than 0 points
    (:attr:`positive`) and one per half-life for those worth less (:attr:`negative`, keyed by
    ``log2`` of the absolute sum).

    ``H(t) = P(t) − N(t)``: heat is the exact signed sum of every event's decayed points, not
    floored at 0 (an account's heat is the sum of its leads'). Fold events in with
    :meth:`add` in any order; the result equals :func:`replay_heat` over the sorted history.
    Stored rows use :func:`signed_span_us` (negative half-life: the negative part).

    >>> from datetime import UTC
    >>> week = timedelta(days=7)
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> heat = Heat()
    >>> heat.add(Engagement(t0 + week, 10, week)); heat.add(Engagement(t0, 10, week))
    >>> heat.add(Engagement(t0 + week, -4, timedelta(days=1)))
    >>> round(heat.at(t0 + week), 12), round(heat.pulled_down_at(t0 + week), 12)
    (11.0, 4.0)
    """

    __slots__ = ("negative", "positive")

    def __init__(
        self,
        positive: Mapping[timedelta, HeatKey] | None = None,
        negative: Mapping[timedelta, HeatKey] | None = None,
    ) -> None:
        self.positive: dict[timedelta, HeatKey] = dict(positive or {})
        self.negative: dict[timedelta, HeatKey] = dict(negative or {})

    @staticmethod
    def of_rows(rows: Iterable[tuple[int, int, float]]) -> Heat:
        """A heat from stored ``(signed half-life µs, whole, frac)`` rows."""
        heat = Heat()
        for signed_us, whole, frac in rows:
            heat.set_row(signed_us, whole, frac)
        return heat

    def set_row(self, signed_us: int, whole: int, frac: float) -> None:
        """Set one key from a stored row (see :func:`signed_span_us`)."""
        span, negative = span_of(int(signed_us))
        (self.negative if negative else self.positive)[span] = HeatKey(int(whole), float(frac))

    def rows(self) -> list[tuple[int, int, float]]:
        """The keys as stored rows ``(signed half-life µs, whole, frac)``."""
        return [
            (signed_span_us(span, negative), key.whole, key.frac)
            for negative, keys in ((False, self.positive), (True, self.negative))
            for span, key in sorted(keys.items())
        ]

    def plus(self, other: Heat) -> Heat:
        """The heat of both histories together (an account's from its leads'): one log-add
        per half-life and sign, so ``a.plus(b).at(t) == a.at(t) + b.at(t)``.

        >>> from datetime import UTC
        >>> day, t0 = timedelta(days=1), datetime(2024, 1, 1, tzinfo=UTC)
        >>> a, b = Heat(), Heat()
        >>> a.add(Engagement(t0, 8, day)); b.add(Engagement(t0, -2, day))
        >>> a.plus(b).at(t0 + day)
        3.0
        """
        both = Heat(self.positive, self.negative)
        for mine, theirs in ((both.positive, other.positive), (both.negative, other.negative)):
            for span, key in theirs.items():
                current = mine.get(span)
                mine[span] = key if current is None else current.plus(key)
        return both

    def add(self, engagement: Engagement) -> None:
        """Fold in one event: O(1), whatever the history before it. 0 points: no heat."""
        self.fold(((engagement.at, engagement.points, engagement.half_life),))

    def fold(self, events: Iterable[tuple[datetime, float, timedelta]]) -> None:
        """:meth:`add` of many events given by their parts ``(at, points, half-life)``, in
        order: the key of each is ``HeatKey.of_event``'s and the sum ``HeatKey.plus``'s,
        the same float operations in the same order (so the same keys to the bit), but
        worked out on plain numbers, with one key made per half-life at the end. A replay
        of a lead's history folds its events this way, several times faster.

        ``divmod`` and ``/`` of two ``timedelta`` are those of their microseconds, so the
        instant is taken in microseconds once and the half-life's are kept.
        """
        sums: dict[tuple[bool, timedelta], tuple[int, float]] = {}
        spans: dict[timedelta, int] = {}
        for at, points, span in events:
            if points == 0:
                continue
            if not abs(points) > 0:
                raise ValueError(f"an event's points must be a number, got {points}")
            span_us = spans.get(span)
            if span_us is None:
                span_us = spans[span] = span // _MICROSECOND
            since = at - EPOCH
            micros = (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds
            turns, rest = divmod(micros, span_us)
            frac = rest / span_us + math.log2(abs(points))
            shift = math.floor(frac)
            whole, frac = turns + shift, frac - shift
            if frac >= 1.0:  # HeatKey.normalised
                whole, frac = whole + 1, 0.0
            side = (points < 0, span)
            kept = sums.get(side)
            if kept is None:
                key = (self.negative if points < 0 else self.positive).get(span)
                kept = None if key is None else (key.whole, key.frac)
            if kept is not None:  # HeatKey.plus
                if kept >= (whole, frac):
                    (high_whole, high_frac), gap = kept, (whole - kept[0]) + (frac - kept[1])
                else:
                    high_whole, high_frac = whole, frac
                    gap = (kept[0] - whole) + (kept[1] - frac)
                if gap < -1100:
                    whole, frac = high_whole, high_frac
                else:
                    frac = high_frac + math.log1p(2.0**gap) * _LOG2_E
                    shift = math.floor(frac)
                    whole, frac = high_whole + shift, frac - shift
                    if frac >= 1.0:
                        whole, frac = whole + 1, 0.0
            sums[side] = whole, frac
        for (negative, span), (whole, frac) in sums.items():
            (self.negative if negative else self.positive)[span] = HeatKey(whole, frac)

    def raised_at(self, now: datetime) -> float:
        """``P(now)``: the heat of the events worth more than 0 points (an upper bound)."""
        return math.fsum(key.heat_at(now, span) for span, key in self.positive.items())

    def pulled_down_at(self, now: datetime) -> float:
        """``N(now) >= 0``: how much the negative signals take off heat at ``now``."""
        return math.fsum(key.heat_at(now, span) for span, key in self.negative.items())

    def at(self, now: datetime) -> float:
        """Heat at ``now``: the sum of each half-life's decayed part, less the negative ones."""
        if not self.negative:
            return self.raised_at(now)
        return math.fsum(
            [key.heat_at(now, span) for span, key in self.positive.items()]
            + [-key.heat_at(now, span) for span, key in self.negative.items()]
        )

    def _terms(self, now: datetime) -> list[tuple[timedelta, float]]:
        """``H(now + s) = Σ c · 2^(−s/h)``: the net coefficient ``c`` of each half-life."""
        net: dict[timedelta, list[float]] = {}
        for sign, keys in ((1.0, self.positive), (-1.0, self.negative)):
            for span, key in keys.items():
                net.setdefault(span, []).append(sign * key.heat_at(now, span))
        return [(span, math.fsum(parts)) for span, parts in sorted(net.items())]

    def cools_below(self, theta: float, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which, with no new events, heat is below
        ``theta``; ``None`` if it already is.

        Positive heat alone is monotone: one half-life has the closed form
        ``now + h·log2(H/θ)``. With negative parts heat may fall, rise and fall again (a fast
        negative fading under a slow positive), so every crossing is found
        (:func:`crossings`) and the first one down is taken.
        """
        if self.at(now) < theta:
            return None
        if not self.negative and len(self.positive) == 1:
            ((span, key),) = self.positive.items()
            turns = key.log2_heat_at(now, span) - math.log2(theta)
            return now + span * turns
        for offset, rising in crossings(self._terms(now), theta):
            if not rising:
                return _after(now, offset)
        return _after(now, 0.0)  # at theta exactly now and falling at once

    def warms_to(self, theta: float, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which, with no new events, heat reaches
        ``theta`` by itself (a negative signal fading faster than the positive ones);
        ``None`` if it is there already or never gets there."""
        if not self.negative or self.at(now) >= theta:
            return None
        for offset, rising in crossings(self._terms(now), theta):
            if rising:
                return _after(now, offset)
        return None

    def last_below(self, theta: float, now: datetime) -> datetime | None:
        """The instant after which, with no new events, heat stays below ``theta`` for good;
        ``None`` if it already does from ``now`` on. With negative parts heat may rise above
        ``theta`` again as a negative part fades, so the last crossing down is taken: the
        bound that keeps "hot until" a range scan whose rows are then judged exactly."""
        downs = [offset for offset, rising in crossings(self._terms(now), theta) if not rising]
        if downs:
            return _after(now, downs[-1])
        return _after(now, 0.0) if self.at(now) >= theta else None


def _after(now: datetime, offset_us: float) -> datetime:
    """``now`` plus a crossing's offset, rounded up to the microsecond, within 1970–2100."""
    if offset_us >= (MAX_INSTANT - now) / timedelta(microseconds=1):
        return MAX_INSTANT
    return now + timedelta(microseconds=math.ceil(offset_us))


def crossings(terms: Iterable[tuple[timedelta, float]], theta: float) -> list[tuple[float, bool]]:
    """Every instant ``s > 0`` (µs from now) where ``Σ c·2^(−s/h)`` crosses ``theta``, with
    whether it crosses upwards, in time order.

    ``f(s) = −θ + Σ cⱼ e^(−λⱼ s)`` is an exponential sum with rates ``0 < λ₁ < …``; it has
    no more positive roots than its coefficients have sign changes (Descartes' rule for
    exponential sums), and multiplying by ``e^(λ₁ s)`` and differentiating leaves a sum
    of one term fewer whose roots split time into intervals on which ``f`` is monotone
    (Rolle). So the roots are isolated recursively, each bracketed in a monotone piece and
    bisected to float precision; past the instant where every term is below ``θ/n`` heat
    stays under ``θ``, which bounds the search.

    A fast positive, a slower negative and a slow positive: heat 10 falls below 5, rises
    above it again as the negative fades, then cools for good:

    >>> day = timedelta(days=1)
    >>> terms = [(day, 30.0), (4 * day, -30.0), (60 * day, 10.0)]
    >>> [(round(s / 86_400e6, 3), up) for s, up in crossings(terms, 5)]
    [(0.373, False), (12.069, True), (59.984, False)]
    """
    rates: dict[float, float] = {0.0: -theta}
    horizon = 0.0
    listed = [(span / timedelta(microseconds=1), c) for span, c in terms if c != 0]
    for span_us, c in listed:
        rate = math.log(2) / span_us
        rates[rate] = rates.get(rate, 0.0) + c
        horizon = max(horizon, span_us * max(0.0, math.log2(len(listed) * abs(c) / theta)))
    ordered = sorted((rate, c) for rate, c in rates.items() if c != 0)
    if len(ordered) < 2 or horizon <= 0:
        return []
    return _roots(ordered, 0.0, horizon * (1 + 1e-9) + 1.0)


def _value(terms: list[tuple[float, float]], s: float) -> float:
    """``Σ c·e^(−(λ − λ₁)s)``: the exponential sum times ``e^(λ₁ s)``, same sign, no
    underflow."""
    low = terms[0][0]
    return math.fsum(c * math.exp(-(rate - low) * s) for rate, c in terms)


def _roots(terms: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, bool]]:
    """Sign changes of ``Σ c·e^(−λ s)`` on ``(lo, hi)``, rates ascending, in order: the
    first instant of the new sign (as a float) and whether it is ``>= 0``."""
    if len(terms) < 2:
        return []
    low = terms[0][0]
    slope = [(rate - low, -(rate - low) * c) for rate, c in terms[1:]]
    cuts = [lo, *(root for root, _ in _roots(slope, lo, hi)), hi]
    found = []
    for start, end in itertools.pairwise(cuts):
        below = _value(terms, start) < 0
        if below == (_value(terms, end) < 0):
            continue
        a, b = start, end
        for _ in range(200):  # monotone on [a, b]: bisect to adjacent floats
            middle = a + (b - a) / 2
            if middle <= a or middle >= b:
                break
            if (_value(terms, middle) < 0) == below:
                a = middle
            else:
                b = middle
        found.append((b, below))
    return found


def replay_heat(history: Iterable[Engagement], now: datetime) -> float:
    """Heat by the definition, term by term, over events at or before ``now``.

    The reference the incremental state is tested against; also used to explain heat.
    """
    return math.fsum(
        item.points * 2.0 ** (-((now - item.at) / item.half_life))
        for item in history
        if item.at <= now and item.points != 0
    )
