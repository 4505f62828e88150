"""Turning a model's raw scores into probabilities a sales team can take at their word.

Boosted trees rank well, but their raw probabilities drift whenever the share of leads that
convert moves, which is what happens between the months a model learns from and the months it
is used in. A calibrator fitted on the *latest* rows the model did not train on maps its
scores back onto the rates seen most recently. That is a bet that the latest rate holds, and
it can also just fit noise, so the calibrator has to earn its place:
:func:`choose_calibrator` keeps it only when, fitted on the earlier half of those rows, it
beats the trees' own probabilities (:class:`Identity`) on the later half; otherwise the
trees' own probabilities are used.

The calibrator is Platt scaling: a logistic curve on the trees' log-odds, two parameters.
Isotonic regression (any increasing step curve) was tried against it on time-ordered
validation rows inside the benchmark's training sets (docs/predict.md): Platt's Brier score
was as good or better on both data sets, and isotonic's steps turn distinct scores into ties,
which cost ranking (ROC-AUC 0.919 against 0.923 on the shoppers). Two parameters are also
what a calibration slice of a few hundred leads can pin down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Outcomes = Sequence[int] | npt.NDArray[np.int_]


def sigmoid(log_odds: Vector) -> Vector:
    """Log-odds to probabilities, without overflow warnings for extreme scores.

    >>> sigmoid(np.array([0.0, 1000.0])).round(9).tolist()
    [0.5, 1.0]
    """
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(log_odds, -35.0, 35.0))), dtype=np.float64)


@dataclass(frozen=True)
class Platt:
    """``p = sigmoid(slope · score + intercept)``: a slope below 1 tempers overconfident
    scores, the intercept follows the base rate.

    >>> Platt(slope=1.0, intercept=0.0)(np.array([0.0])).tolist()
    [0.5]
    """

    slope: float
    intercept: float

    def __call__(self, scores: Vector) -> Vector:
        return sigmoid(self.slope * scores + self.intercept)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the model file."""
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platt:
        """The calibrator :meth:`to_json` wrote."""
        return cls(float(data["slope"]), float(data["intercept"]))


@dataclass(frozen=True)
class Identity:
    """No calibration: the trees' own probabilities, ``p = sigmoid(score)``.

    >>> Identity()(np.array([0.0])).tolist()
    [0.5]
    """

    def __call__(self, scores: Vector) -> Vector:
        return sigmoid(scores)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the model file: Platt's shape with slope 1 and intercept 0, so a
        reader that knows only Platt scaling computes the very same probabilities."""
        return {"method": "identity", "slope": 1.0, "intercept": 0.0}


Calibrator = Platt | Identity


def calibrator_from_json(data: dict[str, Any]) -> Calibrator:
    """The calibrator :meth:`Platt.to_json` or :meth:`Identity.to_json` wrote.

    >>> calibrator_from_json(Identity().to_json()), calibrator_from_json(Platt(2.0, -1.0).to_json())
    (Identity(), Platt(slope=2.0, intercept=-1.0))
    """
    method = data.get("method", "platt")
    if method == "identity":
        return Identity()
    if method == "platt":
        return Platt.from_json(data)
    raise ValueError(f"unknown calibration method {method!r}")


def fit_platt(scores: Vector, outcomes: Outcomes) -> Platt:
    """Fit Platt scaling by maximum likelihood (an almost unregularised logistic fit).

    >>> rng = np.random.default_rng(0)
    >>> scores = rng.normal(size=4000)
    >>> outcomes = (rng.random(4000) < sigmoid(2 * scores - 1)).astype(int)
    >>> platt = fit_platt(scores, outcomes)
    >>> round(platt.slope, 1), round(platt.intercept, 1)
    (2.0, -1.0)
    """
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(scores.reshape(-1, 1), outcomes)
    return Platt(float(fitted.coef_[0, 0]), float(fitted.intercept_[0]))


@dataclass(frozen=True)
class CalibrationCheck:
    """Brier scores, raw and calibrated, on rows the calibrator was not fitted on."""

    rows: int
    raw: float
    calibrated: float

    @property
    def helps(self) -> bool:
        """Whether calibrating beat the raw probabilities (False when not checked).

        >>> CalibrationCheck(400, raw=0.1534, calibrated=0.1512).helps
        True
        """
        return not math.isnan(self.raw) and self.calibrated < self.raw

    def __str__(self) -> str:
        """One line for people.

        >>> print(CalibrationCheck(rows=400, raw=0.1534, calibrated=0.1512))
        Brier 0.1512 calibrated vs 0.1534 raw (400 rows)
        """
        if math.isnan(self.raw):
            return f"not checked (too few rows of each outcome among {self.rows})"
        return f"Brier {self.calibrated:.4f} calibrated vs {self.raw:.4f} raw ({self.rows} rows)"


def check_calibration(scores: Vector, outcomes: Outcomes) -> CalibrationCheck:
    """Fit on the earlier half of the rows (in time order), compare on the later half: does
    calibrating help on rows it has not seen?

    >>> rng = np.random.default_rng(1)
    >>> scores = rng.normal(size=2000)
    >>> outcomes = (rng.random(2000) < sigmoid(scores / 2 - 1)).astype(int)
    >>> check = check_calibration(scores, outcomes)
    >>> check.calibrated < check.raw
    True
    """
    y = np.asarray(outcomes, dtype=np.int_)
    half = len(y) // 2
    late = y[half:]
    if len(set(y[:half].tolist())) < 2 or len(set(late.tolist())) < 2:
        return CalibrationCheck(len(late), math.nan, math.nan)
    calibrated = fit_platt(scores[:half], y[:half])(scores[half:])
    return CalibrationCheck(
        rows=len(late),
        raw=float(np.mean((sigmoid(scores[half:]) - late) ** 2)),
        calibrated=float(np.mean((calibrated - late) ** 2)),
    )


def choose_calibrator(scores: Vector, outcomes: Outcomes) -> tuple[Calibrator, CalibrationCheck]:
    """Platt scaling fitted on all of ``scores`` (in time order) if :func:`check_calibration`
    finds that it helps on rows it was not fitted on; otherwise :class:`Identity`, also when
    too few rows of an outcome leave it unchecked. The check comes back with the choice.

    >>> rng = np.random.default_rng(1)
    >>> scores = rng.normal(size=2000)
    >>> overconfident = (rng.random(2000) < sigmoid(scores / 2 - 1)).astype(int)
    >>> platt, check = choose_calibrator(scores, overconfident)
    >>> type(platt).__name__, check.helps
    ('Platt', True)
    >>> spike = np.where(np.arange(2000) < 1000, 1.0, 0.0)  # a passing high in the earlier half
    >>> passing = (rng.random(2000) < sigmoid(scores + spike)).astype(int)
    >>> choose_calibrator(scores, passing)[0]
    Identity()
    """
    check = check_calibration(scores, outcomes)
    if check.helps:
        return fit_platt(scores, outcomes), check
    return Identity(), check
