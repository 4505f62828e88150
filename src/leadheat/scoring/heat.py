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

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadheat.times import EPOCH

# The same keys for many leads at once, as NumPy arrays, are in
# :mod:`leadheat.scoring.heat_arrays`: showing one lead loads no NumPy.

_LOG2_E = 1 / math.log(2)


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


class Heat:
    """A lead's heat: one :class:`HeatKey` per half-life in use.

    Fold events in with :meth:`add` in any order; the result equals :func:`replay_heat` over
    the sorted history.

    >>> from datetime import UTC
    >>> week = timedelta(days=7)
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> heat = Heat()
    >>> heat.add(Engagement(t0 + week, 10, week)); heat.add(Engagement(t0, 10, week))
    >>> round(heat.at(t0 + week), 12)
    15.0
    """

    __slots__ = ("keys",)

    def __init__(self, keys: Mapping[timedelta, HeatKey] | None = None) -> None:
        self.keys: dict[timedelta, HeatKey] = dict(keys or {})

    def add(self, engagement: Engagement) -> None:
        """Fold in one event: O(1), whatever the history before it."""
        if engagement.points <= 0:
            return
        key = HeatKey.of_event(engagement.points, engagement.at, engagement.half_life)
        current = self.keys.get(engagement.half_life)
        self.keys[engagement.half_life] = key if current is None else current.plus(key)

    def at(self, now: datetime) -> float:
        """Heat at ``now``: the sum of each half-life's decayed part."""
        return math.fsum(key.heat_at(now, span) for span, key in self.keys.items())

    def cools_below(self, theta: float, now: datetime) -> datetime | None:
        """When, with no new events, heat falls below ``theta``; ``None`` if it already is.

        One half-life has the closed form ``now + h·log2(H/θ)``; a sum of several is
        monotone, so it is bracketed and bisected to the microsecond.
        """
        if self.at(now) < theta:
            return None
        if len(self.keys) == 1:
            ((span, key),) = self.keys.items()
            turns = key.log2_heat_at(now, span) - math.log2(theta)
            return now + span * turns
        share = theta / len(self.keys)
        low = now
        high = max(
            now + span * max(0.0, key.log2_heat_at(now, span) - math.log2(share))
            for span, key in self.keys.items()
        )
        step = timedelta(microseconds=1)
        while high - low > step:
            middle = low + (high - low) / 2
            if self.at(middle) >= theta:
                low = middle
            else:
                high = middle
        return high


def replay_heat(history: Iterable[Engagement], now: datetime) -> float:
    """Heat by the definition, term by term, over events at or before ``now``.

    The reference the incremental state is tested against; also used to explain heat.
    """
    return math.fsum(
        item.points * 2.0 ** (-((now - item.at) / item.half_life))
        for item in history
        if item.at <= now and item.points > 0
    )
