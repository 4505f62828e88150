"""The conversion model: gradient-boosted trees (LightGBM), a linear model or their blend,
chosen by the future, calibrated, stored, explained.

Training treats row order as time (put the oldest leads first). The latest fifth of the rows
is held out; trees grown on the rest stop where the held-out log-loss stops falling, a linear
model (:mod:`.linear`) is fitted on the same rows, and the held-out rows, the most recent the
model knows, give an honest estimate of how each family and their blend do on the leads that
come next. They choose the family (:mod:`.candidates`: the best ranking, or a simpler family
within a hair of it) and decide the calibration
(:func:`~leadheat.predict.calibration.choose_calibrator`): Platt scaling fitted on them, kept
only if, fitted on their earlier half, it beat the model's own probabilities on their later
half; otherwise the model's own probabilities. The chosen family is then refitted on *all*
rows (a linear model on all of them; trees grown on all rows
for as many rounds as early stopping chose scaled by the extra rows, 1.25 times), because the
latest rows are the ones most like tomorrow's leads and should not be left out of the model;
the calibration chosen on the held-out rows is kept for them. (On validation rows inside the
benchmark's training sets this ranked and calibrated better on average than keeping the trees
grown without the latest fifth, clearly so out of time, and choosing the calibration so beat
always and never calibrating on mean Brier: docs/predict.md.)

A model file is one JSON document: the family, the encoder, the calibrator, LightGBM's own
text format for the trees and/or the linear weights, and a format version that
:meth:`TabularModel.load` checks (version 1 files, trees only, still load). Nothing is pickled,
so loading a model file never runs code from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.calibration import (
    CalibrationCheck,
    Calibrator,
    Platt,
    calibrator_from_json,
    check_calibration,
    choose_calibrator,
    sigmoid,
)
from leadheat.predict.candidates import FAMILIES, Candidate, choose
from leadheat.predict.features import Encoder, Matrix
from leadheat.predict.linear import FEW_OUTCOMES, Linear
from leadheat.predict.table import Table, TableError, binary_target

if TYPE_CHECKING:
    import lightgbm

FORMAT = "leadheat-tabular-model"
FORMAT_VERSION = 2
READS = (1, 2)
"""Version 1 files hold trees only (no ``family``); they load as the ``trees`` family."""
HOLDOUT_SHARE = 0.2
"""The latest fifth of the training rows: model choice, early stopping, calibration, holdout
scores."""
MIN_ROWS = 40
"""Fewer rows leave too few held-out ones (8) to say anything about calibration."""
MIN_OUTCOMES = 10
"""Fewer than this many of either outcome and no family can be told from the base rate:
training refuses (from :data:`~leadheat.predict.linear.FEW_OUTCOMES` down, it trains but says
the history is small and shrinks toward the linear family and the base rate)."""
MAX_ROUNDS = 2000
PATIENCE = 100
"""Rounds without a better held-out log-loss before training stops."""

PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "lambda_l2": 5.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "min_data_per_group": 50,
    "cat_smooth": 20.0,
    "cat_l2": 10.0,
    "max_cat_to_onehot": 8,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}
"""Shallow trees, small steps and L2 on the leaves: lead files hold thousands of rows, not
millions, and a model that memorises them ranks tomorrow's leads worse."""


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a leadheat model, or of another version."""


@dataclass(frozen=True)
class Holdout:
    """How the model did on the latest training rows it did not learn from."""

    rows: int
    positives: int
    roc_auc: float
    """Ranking quality of the chosen family fitted without these rows."""
    calibration: CalibrationCheck
    """Platt scaling fitted on the earlier half of these rows against the model's own
    probabilities, on the later half: the model is calibrated only if it helped there."""
    rounds: int
    """Boosting rounds early stopping chose on these rows (before scaling to all rows)."""
    candidates: tuple[Candidate, ...] = ()
    """Every family's result on these rows (empty in version 1 files)."""
    reason: str = ""
    """Why the chosen family won."""


@dataclass(frozen=True)
class Factor:
    """One feature's push on one lead's score, in log-odds (positive raises it)."""

    feature: str
    value: str
    contribution: float

    def __str__(self) -> str:
        return f"{self.feature} = {self.value} ({self.contribution:+.2f})"


@dataclass(frozen=True)
class Explanation:
    """Why a lead got its probability: the features that raise and lower it most.

    Contributions come from the model itself: for trees, TreeSHAP (LightGBM's
    ``pred_contrib``); for the linear family, its terms (weight times standardised value,
    summed over a feature's columns); for the blend, the mean of the two. ``expected`` plus
    every feature's contribution is the lead's raw log-odds, before the calibrator, which keeps
    their order but not their scale.
    """

    probability: float
    expected: float
    raising: tuple[Factor, ...]
    lowering: tuple[Factor, ...]


@dataclass(frozen=True)
class TabularModel:
    """A trained, calibrated conversion model for rows shaped like its training file."""

    target: str
    positive: str
    """The outcome value that counts as converted (``1``, ``yes``, ``Won``…)."""
    encoder: Encoder
    booster: lightgbm.Booster | None
    """The trees (``trees`` and ``blend``), ``None`` for the linear family."""
    calibrator: Calibrator
    """Platt scaling, or :class:`~leadheat.predict.calibration.Identity` (the model's own
    probabilities) when calibrating did not help on the held-out rows."""
    holdout: Holdout
    training_rows: int
    training_positives: int
    family: str = "trees"
    """``trees``, ``linear`` or ``blend`` (:mod:`~leadheat.predict.candidates`)."""
    linear: Linear | None = None
    """The linear weights (``linear`` and ``blend``)."""
    reference: dict[str, Any] = field(default_factory=dict)
    """Per feature, how its training values were spread (for drift: :mod:`.drift`)."""

    @property
    def few_outcomes(self) -> bool:
        """Whether the history held fewer than :data:`~leadheat.predict.linear.FEW_OUTCOMES`
        of its rarer outcome: the model is shrunk toward the simpler family and the base rate.
        """
        rarer = min(self.training_positives, self.training_rows - self.training_positives)
        return rarer < FEW_OUTCOMES

    def raw_scores(self, table: Table) -> npt.NDArray[np.float64]:
        """The model's log-odds for each row, before calibration (they rank the same)."""
        return self._raw(self.encoder.transform(table))

    def _raw(self, matrix: Matrix) -> npt.NDArray[np.float64]:
        return _family_raw(self.family, self.encoder, self.booster, self.linear, matrix)

    def predict_proba(self, table: Table) -> npt.NDArray[np.float64]:
        """The calibrated probability that each row converts, in row order."""
        return self.calibrator(self.raw_scores(table))

    def with_calibrator(self, calibrator: Calibrator) -> TabularModel:
        """The same model with another calibration (``leadheat model recalibrate``)."""
        return TabularModel(
            self.target,
            self.positive,
            self.encoder,
            self.booster,
            calibrator,
            self.holdout,
            self.training_rows,
            self.training_positives,
            self.family,
            self.linear,
            self.reference,
        )

    def _contributions(self, matrix: Matrix) -> tuple[npt.NDArray[np.float64], float]:
        """Per feature log-odds contributions of one row, and the expected log-odds."""
        parts: list[tuple[npt.NDArray[np.float64], float]] = []
        if self.booster is not None and self.family != "linear":
            shap = np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)
            parts.append((shap[0, :-1], float(shap[0, -1])))
        if self.linear is not None and self.family != "trees":
            parts.append((self.linear.terms(self.encoder, matrix)[0], self.linear.intercept))
        contributions = np.mean([p[0] for p in parts], axis=0)
        return contributions, float(np.mean([p[1] for p in parts]))

    def explain(self, table: Table, row: int, top: int = 3) -> Explanation:
        """The ``top`` features that raise and that lower row ``row``'s score most.

        Features that do not move the score at all are never listed.
        """
        matrix = self.encoder.transform(table.take([row]))
        contributions, expected = self._contributions(matrix)
        factors = [
            Factor(feature.name, feature.describe(float(matrix[0, k])), float(contributions[k]))
            for k, feature in enumerate(self.encoder.features)
        ]
        factors.sort(key=lambda f: -f.contribution)
        probability = float(self.calibrator(self._raw(matrix))[0])
        return Explanation(
            probability=probability,
            expected=expected,
            raising=tuple(f for f in factors[:top] if f.contribution > 0),
            lowering=tuple(f for f in reversed(factors[-top:]) if f.contribution < 0),
        )

    def to_json(self) -> dict[str, Any]:
        """The whole model as plain data (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "family": self.family,
            "target": self.target,
            "positive": self.positive,
            "training_rows": self.training_rows,
            "training_positives": self.training_positives,
            "holdout": {
                "rows": self.holdout.rows,
                "positives": self.holdout.positives,
                "roc_auc": self.holdout.roc_auc,
                "calibration": {
                    "rows": self.holdout.calibration.rows,
                    "raw": _number(self.holdout.calibration.raw),
                    "calibrated": _number(self.holdout.calibration.calibrated),
                },
                "rounds": self.holdout.rounds,
                "candidates": [
                    {"family": c.family, "roc_auc": c.roc_auc, "brier": _number(c.brier)}
                    for c in self.holdout.candidates
                ],
                "reason": self.holdout.reason,
            },
            "encoder": self.encoder.to_json(),
            "calibrator": self.calibrator.to_json(),
            "trees": None if self.booster is None else self.booster.model_to_string(),
            "linear": None if self.linear is None else self.linear.to_json(),
            "reference": self.reference,
        }

    def save(self, path: Path) -> None:
        """Write the model file (one JSON document)."""
        path.write_text(json.dumps(self.to_json()), "utf-8")

    @classmethod
    def load(cls, path: Path) -> TabularModel:
        """Read a model file, refusing anything but this format and the versions it reads."""

        try:
            data = json.loads(path.read_text("utf-8"))
        except OSError as error:
            raise ModelFileError(f"{path}: cannot read the model ({error.strerror})") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFileError(
                f"{path}: not a leadheat model file (make one with `leadheat model train`)"
            ) from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, source: str = "model") -> TabularModel:
        """The model from :meth:`to_json`'s data, refusing any other format or version."""
        import lightgbm

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError(
                f"{source}: not a leadheat model file (make one with `leadheat model train`)"
            )
        if data.get("version") not in READS:
            raise ModelFileError(
                f"{source}: model file format version {data.get('version')!r}; this leadheat "
                f"reads versions {', '.join(map(str, READS))} (train the model again with this "
                "version)"
            )
        holdout = data["holdout"]
        try:
            calibrator = calibrator_from_json(data["calibrator"])
        except ValueError as error:
            raise ModelFileError(f"{source}: {error}") from None
        trees, linear = data.get("trees"), data.get("linear")
        return cls(
            target=data["target"],
            positive=data["positive"],
            encoder=Encoder.from_json(data["encoder"]),
            booster=None if trees is None else lightgbm.Booster(model_str=trees),
            calibrator=calibrator,
            holdout=Holdout(
                rows=holdout["rows"],
                positives=holdout["positives"],
                roc_auc=holdout["roc_auc"],
                calibration=CalibrationCheck(
                    rows=holdout["calibration"]["rows"],
                    raw=_float(holdout["calibration"]["raw"]),
                    calibrated=_float(holdout["calibration"]["calibrated"]),
                ),
                rounds=holdout["rounds"],
                candidates=tuple(
                    Candidate(c["family"], c["roc_auc"], _float(c["brier"]))
                    for c in holdout.get("candidates", ())
                ),
                reason=holdout.get("reason", ""),
            ),
            training_rows=data["training_rows"],
            training_positives=data["training_positives"],
            family=data.get("family", "trees"),
            linear=None if linear is None else Linear.from_json(linear),
            reference=data.get("reference") or {},
        )


def _family_raw(
    family: str,
    encoder: Encoder,
    booster: lightgbm.Booster | None,
    linear: Linear | None,
    matrix: Matrix,
) -> npt.NDArray[np.float64]:
    """A family's log-odds: the trees', the linear model's, or the mean of the two."""
    parts = []
    if family != "linear":
        assert booster is not None, "trees and blend models carry trees"
        parts.append(np.asarray(booster.predict(matrix, raw_score=True), dtype=np.float64))
    if family != "trees":
        assert linear is not None, "linear and blend models carry linear weights"
        parts.append(linear.log_odds(encoder, matrix))
    return np.asarray(np.mean(parts, axis=0), dtype=np.float64)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _small_data(rows: int) -> dict[str, Any]:
    """Leaf and category minimums for a small team's history: 40 rows a leaf is right for
    thousands of leads, but with a few hundred it leaves the trees with no split at all.
    Large tables keep :data:`PARAMS` unchanged.

    >>> _small_data(200), _small_data(5000)
    ({'min_data_in_leaf': 8, 'min_data_per_group': 10}, {})
    """
    leaf = max(5, rows // 25)
    if leaf >= PARAMS["min_data_in_leaf"]:
        return {}
    return {"min_data_in_leaf": leaf, "min_data_per_group": max(5, rows // 20)}


def train_model(
    table: Table,
    target: str,
    drop: Iterable[str] = (),
    *,
    time: str | None = None,
    families: Sequence[str] = FAMILIES,
    seed: int = 7,
    threads: int = 2,
) -> TabularModel:
    """Train, choose and calibrate a model on ``table`` (oldest rows first) to predict
    ``target``.

    ``drop`` names columns to leave out, such as fields filled in only after the outcome is
    known (they would leak it). Identifiers and constant columns are left out without asking
    (see :class:`~leadheat.predict.features.Encoder`). ``time`` names a date column to put the
    rows in time order by (it is not learnt from); without it, the rows' order is time.
    ``families`` limits the candidates (the benchmark scores each family on its own).
    """
    import lightgbm
    from sklearn.metrics import roc_auc_score

    from leadheat.predict.stability import spread

    if not families or set(families) - set(FAMILIES):
        raise ValueError(f"families must be some of {', '.join(FAMILIES)}: got {families!r}")
    if time is not None:
        table = sort_by_time(table, time)
        drop = [*drop, time]
    outcomes, positive = binary_target(table, target)
    if len(table) < MIN_ROWS:
        raise TableError(
            f"{table.source}: {len(table)} rows; training needs at least {MIN_ROWS} "
            "(the latest fifth is held out to calibrate)"
        )
    y = np.asarray(outcomes, dtype=np.int_)
    rarer = int(min(y.sum(), len(y) - y.sum()))
    if rarer < MIN_OUTCOMES:
        which = f"{target} = {positive}" if y.sum() == rarer else f"{target} other than {positive}"
        raise TableError(
            f'{table.source}: column "{target}": only {rarer} rows with {which}; training needs '
            f"at least {MIN_OUTCOMES} of each outcome (record more outcomes first)"
        )
    encoder = Encoder.fit(table.without(drop), exclude=[target])
    if not encoder.features:
        raise TableError(f"{table.source}: no column left to learn from")
    matrix = encoder.transform(table)
    cut = len(y) - max(1, round(HOLDOUT_SHARE * len(y)))
    learn, held = slice(0, cut), slice(cut, None)
    for part, where in ((learn, "earlier"), (held, "latest")):
        if len(set(y[part].tolist())) < 2:
            raise TableError(
                f'{table.source}: column "{target}": the {where} rows all have the same '
                "outcome; training needs both outcomes in the first 80% and the last 20%"
            )
    params = {**PARAMS, "seed": seed, "num_threads": threads, **_small_data(len(y))}
    names = encoder.names

    def dataset(rows: slice, reference: lightgbm.Dataset | None = None) -> lightgbm.Dataset:
        return lightgbm.Dataset(
            matrix[rows],
            y[rows],
            feature_name=[f"f{k}" for k in range(len(names))],
            categorical_feature=encoder.categorical,
            reference=reference,
            free_raw_data=False,
        )

    learning = dataset(learn)
    trial = lightgbm.train(
        params,
        learning,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[dataset(held, learning)],
        callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)],
    )
    rounds = trial.best_iteration or MAX_ROUNDS
    trial_linear = Linear.fit(encoder, matrix[learn], y[learn])
    raw = {
        family: _family_raw(family, encoder, trial, trial_linear, matrix[held])
        for family in ("trees", "linear", "blend")
        if family in families
    }
    candidates = tuple(
        Candidate(family, float(roc_auc_score(y[held], scores)), _held_brier(scores, y[held]))
        for family, scores in raw.items()
    )
    few = rarer < FEW_OUTCOMES
    winner, reason = choose(candidates, few_outcomes=few)
    family = winner.family
    booster = None
    if family != "linear":
        booster = lightgbm.train(
            params, dataset(slice(None)), num_boost_round=round(rounds / (1 - HOLDOUT_SHARE))
        )
    linear = Linear.fit(encoder, matrix, y) if family != "trees" else None
    calibrator, check = choose_calibrator(raw[family], y[held])
    if few and isinstance(calibrator, Platt):
        calibrator = _toward_base_rate(calibrator)
    return TabularModel(
        target=target,
        positive=positive,
        encoder=encoder,
        booster=booster,
        calibrator=calibrator,
        holdout=Holdout(
            rows=len(y) - cut,
            positives=int(y[held].sum()),
            roc_auc=winner.roc_auc,
            calibration=check,
            rounds=rounds,
            candidates=candidates,
            reason=reason,
        ),
        training_rows=len(y),
        training_positives=int(y.sum()),
        family=family,
        linear=linear,
        reference=spread(encoder, matrix),
    )


def _held_brier(scores: npt.NDArray[np.float64], outcomes: npt.NDArray[np.int_]) -> float:
    """The Brier score a family would get with the calibration it would be given: on the
    later half of the held-out rows, calibrated on the earlier half only if that helped."""
    check = check_calibration(scores, outcomes)
    if math.isnan(check.raw):
        return float(np.mean((sigmoid(scores) - outcomes) ** 2))
    return check.calibrated if check.helps else check.raw


def _toward_base_rate(platt: Platt) -> Platt:
    """With few outcomes, a calibration slope above 1 (sharpening the scores) rests on a few
    dozen rows: it is capped at 1, so probabilities never spread further from the base rate
    than the model itself put them.

    >>> _toward_base_rate(Platt(1.6, -0.5)), _toward_base_rate(Platt(0.7, -0.5))
    (Platt(slope=1.0, intercept=-0.5), Platt(slope=0.7, intercept=-0.5))
    """
    return Platt(min(platt.slope, 1.0), platt.intercept)


def sort_by_time(table: Table, column: str) -> Table:
    """``table``'s rows in the order of the dates in ``column`` (ISO 8601 or epoch seconds),
    the oldest first; rows with the same date keep their order. A date without a UTC offset
    is taken as UTC: only the order matters here.

    >>> from leadheat.predict.table import parse_table
    >>> rows = sort_by_time(parse_table(["at,x", "2026-03-01,b", "2026-01-01,a"]), "at")
    >>> list(rows.column("x"))
    ['a', 'b']
    """
    from datetime import UTC, datetime

    from leadheat.times import TimeFormatError, parse_instant

    if column not in table.columns:
        raise TableError(f'{table.source}: no column "{column}" (named by --time)')
    instants = []
    for line, value in zip(table.lines, table.column(column), strict=True):
        if value is None:
            raise TableError(f'{table.source}: line {line}, column "{column}": no date')
        try:
            instants.append(parse_instant(value))
            continue
        except TimeFormatError as error:
            problem = str(error)
        try:
            naive = datetime.fromisoformat(value)
            instants.append(naive if naive.tzinfo else naive.replace(tzinfo=UTC))
        except ValueError:
            raise TableError(f'{table.source}: line {line}, column "{column}": {problem}') from None
    order = sorted(range(len(table)), key=lambda i: instants[i])
    return table.take(order)
