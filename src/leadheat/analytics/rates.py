"""Conversion rates that say how sure they are: Wilson score intervals, small groups flagged.

A rate of 2 out of 3 is not a rate of 67 %: it is "somewhere between 21 % and 94 %". The
Wilson interval (Wilson 1927) stays inside [0, 1], is not degenerate at 0 or n successes, and
covers close to its nominal 95 % even for small groups, where the textbook normal interval
(``p ± 1.96·√(p(1−p)/n)``) collapses to zero width at ``p = 0`` and spills below 0.
Groups too small to read are *flagged* (``small``), never dropped: hiding them would hide where
the team lacks data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Z95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95 % interval."""
SMALL_GROUP = 30
"""Fewer leads than this in a group and its rate is flagged ``small``: with 30 leads a 95 %
interval is still about ±17 points wide around 50 %."""


def wilson(won: int, leads: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``won`` successes out of ``leads``.

    ``(0.0, 1.0)`` for an empty group: nothing is known.

    >>> low, high = wilson(8, 10)
    >>> round(low, 4), round(high, 4)
    (0.4902, 0.9433)
    >>> wilson(0, 0), wilson(0, 7)[0], wilson(25, 25)[1]
    ((0.0, 1.0), 0.0, 1.0)
    """
    if leads < 0 or won < 0 or won > leads:
        raise ValueError(f"won must be between 0 and leads, got {won} of {leads}")
    if leads == 0:
        return 0.0, 1.0
    p = won / leads
    z2 = z * z
    centre = (p + z2 / (2 * leads)) / (1 + z2 / leads)
    half = z / (1 + z2 / leads) * math.sqrt(p * (1 - p) / leads + z2 / (4 * leads * leads))
    # At 0 or all won, the exact bound is the rate itself; the float arithmetic lands a few
    # ulps off it (1e-17 above 0), which would put the rate outside its own interval.
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


@dataclass(frozen=True)
class Rate:
    """One row of a breakdown: a group of leads and how many of them were won."""

    bucket: str
    leads: int
    won: int
    rate: float | None
    """``won / leads``; ``None`` for an empty group."""
    low: float
    high: float
    small: bool
    """Fewer than :data:`SMALL_GROUP` leads: read the interval, not the rate."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def rate(bucket: str, won: int, leads: int) -> Rate:
    """A :class:`Rate` with its Wilson 95 % interval.

    >>> r = rate("hot", 3, 4)
    >>> r.rate, r.small, round(r.low, 3)
    (0.75, True, 0.301)
    """
    low, high = wilson(won, leads)
    return Rate(
        bucket=bucket,
        leads=leads,
        won=won,
        rate=won / leads if leads else None,
        low=low,
        high=high,
        small=leads < SMALL_GROUP,
    )


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float | None:
    """The probability that a random converter scores above a random non-converter (ties
    count half): the Mann–Whitney form of the ROC-AUC. ``None`` without both classes.

    Callers that rank heats round them first (:func:`significant`): forward decay gives the
    same heat to two leads with a few ulps of difference, which must not rank one above the
    other. Model probabilities are ranked as they are, as scikit-learn's ``roc_auc_score``
    ranks them.

    >>> roc_auc([0.9, 0.1, 0.5, 0.5], [1, 0, 1, 0])
    0.875
    >>> roc_auc([1, 2], [1, 1]) is None
    True
    """
    values = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(labels, dtype=bool)
    positives = int(truth.sum())
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # ties share their average rank
    u = ranks[truth].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def significant(values: npt.NDArray[np.float64], digits: int = 12) -> npt.NDArray[np.float64]:
    """``values`` rounded to ``digits`` significant digits.

    >>> noisy = np.array([9.999999999999998, 10.000000000000002, 0.0, -3.14159265358979])
    >>> significant(noisy).tolist()
    [10.0, 10.0, 0.0, -3.14159265359]
    """
    finite = np.isfinite(values) & (values != 0)
    magnitude = np.floor(np.log10(np.abs(np.where(finite, values, 1.0))))
    scale = 10.0 ** (digits - 1 - magnitude)
    rounded: npt.NDArray[np.float64] = np.where(finite, np.round(values * scale) / scale, values)
    return rounded
