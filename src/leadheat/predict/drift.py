"""Is the model still right? Recent outcomes against what the model predicted for those
leads, from what was known when it predicted.

Three measures, each answering one question a team asks of a model it trusts:

- *Are its numbers still believable?* Calibration in the large: the mean predicted
  probability against the observed rate, with the observed rate's 95 % Wilson interval
  (a binomial interval that stays sensible with a few dozen outcomes and rates near 0).
- *Does it still rank?* ROC-AUC on the window with a 95 % bootstrap interval, against the
  ROC-AUC the model had on its own held-out latest rows when it was trained.
- *What moved?* The population stability index (PSI) of every feature between the training
  rows (their spread is stored in the model) and the window (:mod:`.stability`).

The alarm sounds when the mean prediction leaves the observed rate's interval, or when the two
ROC-AUC intervals part: the top of the window's is below the bottom of the held-out one's
(:func:`auc_low`; a held-out fifth of a small team's history is a few dozen rows, and its
ROC-AUC is no exact yardstick either). PSI alone never sounds
it: inputs move all the time without the model going wrong, and the two tests above are about
the outcomes themselves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.features import Matrix
from leadheat.predict.stability import buckets, psi

if TYPE_CHECKING:
    from leadheat.predict.model import TabularModel
    from leadheat.predict.table import Table

Vector = npt.NDArray[np.float64]

Z = 1.959963984540054
"""The 97.5th percentile of the standard normal: 95 % two-sided intervals."""
MIN_OUTCOMES = 5
"""Fewer of either outcome in the window and ROC-AUC is not asked of it."""
BOOTSTRAP = 400
TOP_MOVERS = 5


def wilson(successes: int, rows: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a binomial rate.

    >>> [round(x, 3) for x in wilson(6, 100)]
    [0.028, 0.125]
    >>> wilson(0, 0)
    (0.0, 1.0)
    """
    if rows == 0:
        return 0.0, 1.0
    rate = successes / rows
    centre = (rate + Z * Z / (2 * rows)) / (1 + Z * Z / rows)
    half = Z * math.sqrt(rate * (1 - rate) / rows + Z * Z / (4 * rows * rows)) / (1 + Z * Z / rows)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Mover:
    """One feature's population stability index between training and the window."""

    feature: str
    psi: float


@dataclass(frozen=True)
class Drift:
    """How the model did on the window's outcomes (see the module docstring)."""

    rows: int
    positives: int
    predicted_rate: float
    observed_rate: float
    interval: tuple[float, float]
    """95 % Wilson interval of the observed rate."""
    roc_auc: float | None
    """``None`` with fewer than :data:`MIN_OUTCOMES` of either outcome."""
    roc_auc_interval: tuple[float, float] | None
    holdout_roc_auc: float
    movers: tuple[Mover, ...]
    alarm: bool
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        data = asdict(self)
        data["interval"] = list(self.interval)
        data["roc_auc_interval"] = (
            None if self.roc_auc_interval is None else list(self.roc_auc_interval)
        )
        data["movers"] = [asdict(m) for m in self.movers]
        data["reasons"] = list(self.reasons)
        for key in ("predicted_rate", "observed_rate"):
            if math.isnan(data[key]):
                data[key] = None  # an empty window: JSON has no NaN
        return data


def auc_low(auc: float, positives: int, negatives: int) -> float:
    """The bottom of a ROC-AUC's 95 % interval, from Hanley and McNeil's (1982) standard
    error: what the held-out rows' ROC-AUC, stored in the model without the rows, allows.

    >>> round(auc_low(0.9, 20, 30), 3), round(auc_low(0.9, 2000, 3000), 3)
    (0.803, 0.89)
    """
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / max(1, positives * negatives)
    return auc - Z * math.sqrt(max(0.0, variance))


def _auc_interval(probabilities: Vector, y: npt.NDArray[np.int_], seed: int) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(y), len(y))
        if 0 < y[pick].sum() < len(pick):
            values.append(float(roc_auc_score(y[pick], probabilities[pick])))
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def movers(model: TabularModel, matrix: Matrix) -> tuple[Mover, ...]:
    """The features whose distribution moved most between training and ``matrix``."""
    found = []
    for k, feature in enumerate(model.encoder.features):
        reference = model.reference.get(feature.name)
        if reference is None:
            continue
        expected = np.asarray(reference["shares"], dtype=np.float64)
        found_in = buckets(reference["kind"], reference["edges"], matrix[:, k], len(expected))
        actual = np.bincount(found_in, minlength=len(expected)) / max(1, len(matrix))
        found.append(Mover(feature.name, round(psi(expected, actual), 6)))
    found.sort(key=lambda m: -m.psi)
    return tuple(found[:TOP_MOVERS])


def assess(model: TabularModel, window: Table, outcomes: list[int], seed: int = 7) -> Drift:
    """The model's predictions for ``window``'s rows (features as they were when it predicted)
    against their ``outcomes`` (1 converted, 0 not)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(outcomes, dtype=np.int_)
    matrix = model.encoder.transform(window)
    probabilities = model.predict_proba(window) if len(y) else np.zeros(0)
    rows, positives = len(y), int(y.sum())
    predicted = float(probabilities.mean()) if rows else math.nan
    observed = positives / rows if rows else math.nan
    interval = wilson(positives, rows)
    reasons: list[str] = []
    if rows and not interval[0] <= predicted <= interval[1]:
        reasons.append(
            f"mean predicted probability {predicted:.3f} is outside the observed rate's 95% "
            f"interval {interval[0]:.3f}–{interval[1]:.3f} ({positives} of {rows} converted)"
        )
    auc: float | None = None
    auc_interval: tuple[float, float] | None = None
    if min(positives, rows - positives) >= MIN_OUTCOMES:
        auc = float(roc_auc_score(y, probabilities))
        auc_interval = _auc_interval(probabilities, y, seed)
        held = model.holdout
        floor = auc_low(held.roc_auc, held.positives, held.rows - held.positives)
        if auc_interval[1] < floor:
            reasons.append(
                f"ranking dropped: ROC-AUC {auc:.3f} (95% interval {auc_interval[0]:.3f}–"
                f"{auc_interval[1]:.3f}) against {held.roc_auc:.3f} (95% interval from "
                f"{floor:.3f}) on the held-out rows at training"
            )
    return Drift(
        rows=rows,
        positives=positives,
        predicted_rate=predicted,
        observed_rate=observed,
        interval=interval,
        roc_auc=auc,
        roc_auc_interval=auc_interval,
        holdout_roc_auc=model.holdout.roc_auc,
        movers=movers(model, matrix) if rows else (),
        alarm=bool(reasons),
        reasons=tuple(reasons),
    )


def recalibrated(model: TabularModel, window: Table, outcomes: list[int]) -> TabularModel:
    """The model with Platt scaling refitted on ``window``'s outcomes, the trees and weights
    untouched: for when the rate has moved but the ranking holds."""
    from leadheat.predict.calibration import fit_platt
    from leadheat.predict.table import TableError

    y = np.asarray(outcomes, dtype=np.int_)
    if min(int(y.sum()), len(y) - int(y.sum())) < MIN_OUTCOMES:
        raise TableError(
            f"{window.source}: {int(y.sum())} of {len(y)} recent leads converted; recalibrating "
            f"needs at least {MIN_OUTCOMES} of each outcome"
        )
    return model.with_calibrator(fit_platt(model.raw_scores(window), y))
