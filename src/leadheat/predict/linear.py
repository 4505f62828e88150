"""The linear family: a regularised logistic regression on one-hot categories and scaled
numbers, stored as plain numbers and explained term by term.

Trees learn the shape of last year's leads in detail; when the market moves, that detail is
what stops carrying over, and a model with one weight per value carries over better (a real
sales data set whose rate moved from 6 % to 31 % in its latest fifth: ROC-AUC 0.748 out of time
against 0.670 for the trees). So it is one of the candidates :func:`~leadheat.predict.model.
train_model` chooses from, not a baseline only.

The design matches :class:`~leadheat.predict.baselines.Logistic` (a missing number takes the
training median and gets its own indicator; every category, ``other`` and missing included,
is a column) and is kept as numbers, not a pickled estimator, so a model file never runs code.
A row's log-odds is ``intercept + Σ terms``; each feature's term is the sum of its columns'
weights times their standardised values, which is also its explanation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.features import Encoder, Matrix
from leadheat.predict.table import Kind

Vector = npt.NDArray[np.float64]

C = 1.0
"""Inverse L2 strength with plenty of outcomes (scikit-learn's default, as the baseline)."""
FEW_OUTCOMES = 100
"""Below this many of the rarer outcome, the weights are shrunk harder toward zero, that is
toward the base rate: ``C`` falls in proportion, to no less than :data:`MIN_C`."""
MIN_C = 0.05


def strength(rarer_outcomes: int) -> float:
    """The inverse regularisation strength for a history with this many of the rarer outcome.

    >>> strength(500), strength(50), strength(2)
    (1.0, 0.5, 0.05)
    """
    return max(MIN_C, min(C, C * rarer_outcomes / FEW_OUTCOMES))


def design(encoder: Encoder, fill: Vector, matrix: Matrix) -> tuple[Matrix, list[int]]:
    """The one-hot design and, per design column, the index of the feature it came from."""
    columns: list[Vector] = []
    owner: list[int] = []
    for k, feature in enumerate(encoder.features):
        values = matrix[:, k]
        missing = np.isnan(values)
        if feature.kind is Kind.CATEGORY:
            for code in range(len(feature.categories) + 1):
                columns.append((values == code).astype(np.float64))
                owner.append(k)
        else:
            columns.append(np.where(missing, fill[k], values))
            owner.append(k)
        columns.append(missing.astype(np.float64))
        owner.append(k)
    return np.column_stack(columns), owner


@dataclass(frozen=True)
class Linear:
    """Weights over the standardised design (see the module docstring)."""

    fill: Vector
    mean: Vector
    scale: Vector
    weights: Vector
    intercept: float
    c: float

    @classmethod
    def fit(cls, encoder: Encoder, matrix: Matrix, y: npt.NDArray[np.int_]) -> Linear:
        """Fit on encoded training rows, shrinking harder when the rarer outcome is scarce."""
        from sklearn.linear_model import LogisticRegression

        fill = np.array(
            [
                0.0 if np.isnan(matrix[:, k]).all() else float(np.nanmedian(matrix[:, k]))
                for k in range(matrix.shape[1])
            ]
        )
        x, _ = design(encoder, fill, matrix)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        rarer = int(min(y.sum(), len(y) - y.sum()))
        c = strength(rarer)
        fitted = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
        return cls(
            fill, mean, scale, fitted.coef_[0].astype(np.float64), float(fitted.intercept_[0]), c
        )

    def terms(self, encoder: Encoder, matrix: Matrix) -> Matrix:
        """Each row's log-odds split by feature: ``intercept + terms.sum(axis=1)`` is the row's
        log-odds."""
        x, owner = design(encoder, self.fill, matrix)
        weighted = (x - self.mean) / self.scale * self.weights
        terms = np.zeros((len(matrix), len(encoder.features)))
        for column, k in enumerate(owner):
            terms[:, k] += weighted[:, column]
        return terms

    def log_odds(self, encoder: Encoder, matrix: Matrix) -> Vector:
        """Each row's log-odds of converting."""
        x, _ = design(encoder, self.fill, matrix)
        return np.asarray(((x - self.mean) / self.scale) @ self.weights + self.intercept)

    def to_json(self) -> dict[str, Any]:
        """Plain numbers for the model file."""
        return {
            "fill": self.fill.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "c": self.c,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Linear:
        """The weights :meth:`to_json` wrote."""
        return cls(
            np.asarray(data["fill"], dtype=np.float64),
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["weights"], dtype=np.float64),
            float(data["intercept"]),
            float(data["c"]),
        )
