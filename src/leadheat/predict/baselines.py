"""What the conversion model has to beat, each fitted on the same rows and the same columns.

- :class:`RuleScore`: the playbook's way, points for if-then rules a sales team writes
  (:class:`~leadheat.playbook.FitRule`, scored by the same function the playbook's fit score
  uses). Points rank but are no probability; a one-feature logistic fit on the training rows
  turns them into one, so Brier and log-loss can be asked of it too.
- :class:`Logistic`: a plain regularised logistic regression (L2, C=1) on standardised numbers
  with missing indicators and one-hot categories: what a careful analyst fits first.
- :class:`DefaultLightGBM`: LightGBM with its default settings (100 rounds, 31 leaves), on the
  same features as leadheat's model: shows what the tuning and calibration add.
- :class:`NaiveBayes`: in the style of the open-source CRMs' conversion probability: per value
  of each column, how often it was won and lost, with +0.1 smoothing, likelihood ratios
  multiplied; numbers binned into deciles of the training rows first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from leadheat.predict.calibration import Platt, fit_platt, sigmoid
from leadheat.predict.features import Encoder, Feature, Matrix
from leadheat.predict.table import Kind, Table, binary_target
from leadheat.scoring.fit import fit_summary

if TYPE_CHECKING:
    import lightgbm
    from sklearn.linear_model import LogisticRegression

    from leadheat.playbook import FitRule

Vector = npt.NDArray[np.float64]

SMOOTHING = 0.1
"""Added to every won and lost count, as the CRMs do: an unseen value is not impossible."""
NUMBER_BINS = 10


class Scorer(Protocol):
    """Anything that gives each row of a table a probability of converting."""

    def predict_proba(self, table: Table) -> Vector: ...


def _prepare(table: Table, target: str, drop: Iterable[str]) -> tuple[Encoder, Matrix, Vector]:
    outcomes, _ = binary_target(table, target)
    encoder = Encoder.fit(table.without(drop), exclude=[target])
    return encoder, encoder.transform(table), np.asarray(outcomes, dtype=np.float64)


@dataclass(frozen=True)
class RuleScore:
    """Playbook fit rules as a score: the sum of the points of the rules a row matches.

    Disqualifying rules carry no points and are not used here.

    >>> from leadheat.playbook import FitRule
    >>> from leadheat.predict.table import parse_table
    >>> rules = [FitRule(field="visits", range=(3, 1e9), points=10)]
    >>> table = parse_table(["visits,won"] + [f"{v},{int(v > 2)}" for v in range(6)])
    >>> RuleScore.fit(rules, table, "won").points(table).tolist()
    [0.0, 0.0, 0.0, 10.0, 10.0, 10.0]
    """

    rules: tuple[FitRule, ...]
    calibration: Platt

    @classmethod
    def fit(cls, rules: Sequence[FitRule], table: Table, target: str) -> RuleScore:
        """Keep the rules as written; fit only the points → probability curve."""
        outcomes, _ = binary_target(table, target)
        points = _points(rules, table)
        return cls(tuple(rules), fit_platt(points, outcomes))

    def points(self, table: Table) -> Vector:
        """Each row's points."""
        return _points(self.rules, table)

    def predict_proba(self, table: Table) -> Vector:
        """Each row's points, mapped to a probability by the curve fitted in training."""
        return self.calibration(self.points(table))


def _points(rules: Sequence[FitRule], table: Table) -> Vector:
    return np.array([fit_summary(table.row(i), rules, math.inf)[0] for i in range(len(table))])


@dataclass(frozen=True)
class Logistic:
    """Regularised logistic regression on a standardised, one-hot design (module docstring)."""

    encoder: Encoder
    fill: Vector
    """Per feature: the training median, put in for a missing number."""
    mean: Vector
    scale: Vector
    model: LogisticRegression

    @classmethod
    def fit(cls, table: Table, target: str, drop: Iterable[str] = ()) -> Logistic:
        """Fit on ``table``; numbers are centred and scaled by the training rows."""
        from sklearn.linear_model import LogisticRegression

        encoder, matrix, y = _prepare(table, target, drop)
        fill = np.array(
            [
                0.0 if np.isnan(matrix[:, k]).all() else float(np.nanmedian(matrix[:, k]))
                for k in range(matrix.shape[1])
            ]
        )
        design = _design(encoder, fill, matrix)
        mean, scale = design.mean(axis=0), design.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=1.0, max_iter=5000).fit((design - mean) / scale, y)
        return cls(encoder, fill, mean, scale, model)

    def predict_proba(self, table: Table) -> Vector:
        design = _design(self.encoder, self.fill, self.encoder.transform(table))
        return np.asarray(
            self.model.predict_proba((design - self.mean) / self.scale)[:, 1], dtype=np.float64
        )


def _design(encoder: Encoder, fill: Vector, matrix: Matrix) -> Matrix:
    """Numbers and flags (missing filled) or one-hot categories, each with a missing column."""
    columns: list[Vector] = []
    for k, feature in enumerate(encoder.features):
        values = matrix[:, k]
        missing = np.isnan(values)
        if feature.kind is Kind.CATEGORY:
            columns.extend(
                (values == code).astype(np.float64) for code in range(len(feature.categories) + 1)
            )
        else:
            columns.append(np.where(missing, fill[k], values))
        columns.append(missing.astype(np.float64))
    return np.column_stack(columns)


@dataclass(frozen=True)
class DefaultLightGBM:
    """LightGBM as it comes: default parameters, 100 rounds, categories declared."""

    encoder: Encoder
    booster: lightgbm.Booster

    @classmethod
    def fit(
        cls, table: Table, target: str, drop: Iterable[str] = (), *, seed: int = 7, threads: int = 2
    ) -> DefaultLightGBM:
        """Fit with LightGBM's defaults (only the thread count and seed are set)."""
        import lightgbm

        encoder, matrix, y = _prepare(table, target, drop)
        params = {"objective": "binary", "verbose": -1, "num_threads": threads, "seed": seed}
        data = lightgbm.Dataset(matrix, y, categorical_feature=encoder.categorical)
        return cls(encoder, lightgbm.train(params, data))

    def predict_proba(self, table: Table) -> Vector:
        return np.asarray(self.booster.predict(self.encoder.transform(table)), dtype=np.float64)


@dataclass(frozen=True)
class NaiveBayes:
    """Per-value won/lost counts with +0.1 smoothing, multiplied across columns.

    >>> from leadheat.predict.table import parse_table
    >>> rows = ["source,won"] + ["Form,1"] * 30 + ["Form,0"] * 10 + ["Chat,0"] * 30
    >>> model = NaiveBayes.fit(parse_table(rows), "won")
    >>> model.predict_proba(parse_table(["source", "Form", "Chat"])).round(3).tolist()
    [0.748, 0.003]

    (30 of the 40 forms were won; the smoothing pulls 0.75 a little towards the middle.)
    """

    encoder: Encoder
    edges: tuple[Vector, ...]
    """Per feature: decile edges of the training numbers (empty for categories and flags)."""
    log_ratios: tuple[Vector, ...]
    """Per feature and bucket: log P(bucket | won) − log P(bucket | lost)."""
    prior: float

    @classmethod
    def fit(cls, table: Table, target: str, drop: Iterable[str] = ()) -> NaiveBayes:
        """Count won and lost per value (bucket) of every column."""
        encoder, matrix, y = _prepare(table, target, drop)
        edges: list[Vector] = []
        for k, feature in enumerate(encoder.features):
            values = matrix[:, k][~np.isnan(matrix[:, k])]
            if feature.kind is Kind.NUMBER and len(values):
                quantiles = np.linspace(0, 1, NUMBER_BINS + 1)[1:-1]
                edges.append(np.unique(np.quantile(values, quantiles)))
            else:
                edges.append(np.zeros(0))
        buckets = _buckets(encoder, edges, matrix)
        won, lost = y == 1, y == 0
        ratios = []
        for k, feature in enumerate(encoder.features):
            size = _bucket_count(feature, edges[k])
            won_counts = np.bincount(buckets[won, k], minlength=size) + SMOOTHING
            lost_counts = np.bincount(buckets[lost, k], minlength=size) + SMOOTHING
            ratios.append(
                np.log(won_counts / won_counts.sum()) - np.log(lost_counts / lost_counts.sum())
            )
        prior = math.log(won.sum() / lost.sum())
        return cls(encoder, tuple(edges), tuple(ratios), prior)

    def predict_proba(self, table: Table) -> Vector:
        buckets = _buckets(self.encoder, self.edges, self.encoder.transform(table))
        log_odds = np.full(len(buckets), self.prior)
        for k, ratios in enumerate(self.log_ratios):
            log_odds += ratios[buckets[:, k]]
        return sigmoid(log_odds)


def _bucket_count(feature: Feature, edges: Vector) -> int:
    """Buckets of one feature, the last one for missing."""
    if feature.kind is Kind.CATEGORY:
        return len(feature.categories) + 2  # known values, other, missing
    if feature.kind is Kind.FLAG:
        return 3
    return len(edges) + 2  # between the edges, missing


def _buckets(encoder: Encoder, edges: Sequence[Vector], matrix: Matrix) -> npt.NDArray[np.int_]:
    buckets = np.zeros(matrix.shape, dtype=np.int_)
    for k, feature in enumerate(encoder.features):
        values = matrix[:, k]
        if feature.kind is Kind.NUMBER:
            found = np.searchsorted(edges[k], np.nan_to_num(values), side="right")
        else:
            found = np.nan_to_num(values).astype(np.int_)
        missing = _bucket_count(feature, edges[k]) - 1
        buckets[:, k] = np.where(np.isnan(values), missing, found)
    return buckets
