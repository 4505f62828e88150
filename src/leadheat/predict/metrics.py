"""How good a conversion score is, in the measures the benchmark and the CLI report.

Two questions, two kinds of measure. *Does it rank?* ROC-AUC, PR-AUC (average precision) and
the lift in the top decile (how many times the base rate the best-scored tenth converts at: what
a team calling the top of its list gets). *Can its numbers be believed?* Brier score, log-loss
and the expected calibration error. A rule score can rank but has no probabilities; it is
calibrated before the second kind is asked of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Outcomes = Sequence[int] | npt.NDArray[np.int_]


@dataclass(frozen=True)
class Scores:
    """Every measure for one set of predictions against outcomes."""

    roc_auc: float
    pr_auc: float
    brier: float
    log_loss: float
    lift_top_decile: float
    calibration_error: float


def lift_at(probabilities: Vector, outcomes: Outcomes, share: float = 0.1) -> float:
    """Conversion rate of the best-scored ``share`` of rows over the overall rate.

    Ties are broken by row order, so the answer does not depend on the sort's whims.

    >>> lift_at(np.array([0.9, 0.1, 0.2, 0.3]), [1, 0, 0, 1], share=0.25)
    2.0
    """
    y = np.asarray(outcomes, dtype=np.float64)
    top = max(1, math.ceil(share * len(y)))
    order = np.argsort(-probabilities, kind="stable")[:top]
    return float(y[order].mean() / y.mean())


def calibration_error(probabilities: Vector, outcomes: Outcomes, bins: int = 10) -> float:
    """Expected calibration error over equal-frequency bins: the row-weighted mean gap
    between predicted and observed rates.

    Equal-frequency bins, because with equal-width ones most bins of a rare outcome are empty
    and the error rests on a handful of rows.

    >>> calibration_error(np.array([0.1, 0.1, 0.9, 0.9]), [0, 0, 1, 1], bins=2)
    0.1
    """
    y = np.asarray(outcomes, dtype=np.float64)
    order = np.argsort(probabilities, kind="stable")
    gap = 0.0
    for part in np.array_split(order, bins):
        if len(part):
            gap += len(part) * abs(float(probabilities[part].mean() - y[part].mean()))
    return round(gap / len(y), 12)


def reliability_curve(
    probabilities: Vector, outcomes: Outcomes, bins: int = 10
) -> tuple[Vector, Vector]:
    """``(mean predicted, observed rate)`` per equal-frequency bin, for reliability plots.

    >>> predicted, observed = reliability_curve(np.array([0.1, 0.2, 0.7, 0.9]), [0, 0, 1, 1], 2)
    >>> predicted.round(2).tolist(), observed.tolist()
    ([0.15, 0.8], [0.0, 1.0])
    """
    y = np.asarray(outcomes, dtype=np.float64)
    parts = [p for p in np.array_split(np.argsort(probabilities, kind="stable"), bins) if len(p)]
    predicted = np.array([probabilities[p].mean() for p in parts])
    observed = np.array([y[p].mean() for p in parts])
    return predicted, observed


def score(probabilities: Vector, outcomes: Outcomes) -> Scores:
    """All the measures at once; ``outcomes`` must hold both 0 and 1.

    >>> s = score(np.array([0.8, 0.3, 0.6, 0.2]), [1, 0, 1, 0])
    >>> s.roc_auc, round(s.brier, 4)
    (1.0, 0.0825)
    """
    from sklearn.metrics import average_precision_score, log_loss

    y = np.asarray(outcomes, dtype=np.int_)
    clipped = np.clip(probabilities, 1e-15, 1 - 1e-15)
    return Scores(
        roc_auc=roc_auc(probabilities, y),
        pr_auc=float(average_precision_score(y, probabilities)),
        brier=brier(probabilities, y),
        log_loss=float(log_loss(y, clipped, labels=[0, 1])),
        lift_top_decile=lift_at(probabilities, y),
        calibration_error=calibration_error(probabilities, y),
    )


@dataclass(frozen=True)
class Difference:
    """A measure of one model minus the same measure of another, on the same rows, with a
    95 % paired bootstrap interval: how large a gap the rows can tell apart from chance."""

    value: float
    low: float
    high: float

    @property
    def clear(self) -> bool:
        """Whether the interval leaves out zero: the rows tell the two models apart.

        >>> Difference(0.0002, -0.0029, 0.0031).clear, Difference(-0.01, -0.02, -0.001).clear
        (False, True)
        """
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        """
        >>> print(Difference(0.0002, -0.0029, 0.0031))
        +0.0002 (95% -0.0029 to +0.0031)
        >>> print(Difference(0.0, -1e-17, 0.0))
        +0.0000 (95% +0.0000 to +0.0000)
        """
        value, low, high = (round(x, 4) + 0.0 for x in (self.value, self.low, self.high))
        return f"{value:+.4f} (95% {low:+.4f} to {high:+.4f})"  # + 0.0: no "-0.0000"


def brier(probabilities: Vector, outcomes: Outcomes) -> float:
    """Mean squared gap between probability and outcome.

    >>> round(brier(np.array([0.8, 0.3]), [1, 0]), 4)
    0.065
    """
    y = np.asarray(outcomes, dtype=np.float64)
    return float(np.mean((probabilities - y) ** 2))


def paired_difference(
    measure: Callable[[Vector, Outcomes], float],
    first: Vector,
    second: Vector,
    outcomes: Outcomes,
    *,
    draws: int = 2000,
    seed: int = 7,
) -> Difference:
    """``measure(first) − measure(second)`` on the rows, and its 95 % percentile interval
    over ``draws`` resamples of the rows (the same rows for both models in each draw).

    Paired, because both models score the same leads: the easy and the hard rows are shared,
    and only the gap between the models varies. Draws with one outcome only (no ROC-AUC) are
    drawn again. Seeded, so a benchmark prints the same interval on every run.

    >>> y = np.array([1, 0] * 50)
    >>> same = paired_difference(brier, np.full(100, 0.5), np.full(100, 0.5), y)
    >>> (same.value, same.low, same.high)
    (0.0, 0.0, 0.0)
    >>> better = paired_difference(brier, np.where(y == 1, 0.8, 0.2), np.full(100, 0.5), y)
    >>> round(better.value, 2), better.clear
    (-0.21, True)
    """
    y = np.asarray(outcomes, dtype=np.int_)
    rng = np.random.default_rng(seed)
    gaps: list[float] = []
    while len(gaps) < draws:
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        gaps.append(measure(first[rows], y[rows]) - measure(second[rows], y[rows]))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return Difference(measure(first, y) - measure(second, y), float(low), float(high))


def roc_auc(probabilities: Vector, outcomes: Outcomes) -> float:
    """Area under the ROC curve for :func:`paired_difference`: the analytics' Mann-Whitney
    form (:func:`leadheat.analytics.rates.roc_auc`), the same number as scikit-learn's
    ``roc_auc_score`` without its input checks, which cost 2 ms a call where the bootstrap
    makes thousands.

    >>> roc_auc(np.array([0.8, 0.3, 0.6, 0.2]), [1, 0, 1, 0])
    1.0
    >>> roc_auc(np.array([0.5, 0.5, 0.9, 0.1]), [1, 0, 0, 1])  # one tie of four pairs
    0.125
    """
    from leadheat.analytics.rates import roc_auc as mann_whitney

    found = mann_whitney(probabilities, np.asarray(outcomes, dtype=np.int_))
    if found is None:
        raise ValueError("ROC-AUC needs rows of both outcomes")
    return found
