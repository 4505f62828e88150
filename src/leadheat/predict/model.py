"""The conversion model: gradient-boosted trees (LightGBM), calibrated, stored, explained.

Training treats row order as time (put the oldest leads first). The latest fifth of the rows
is held out; trees grown on the rest stop where the held-out log-loss stops falling, and the
held-out rows, the most recent the model knows, give an honest estimate of how the model does
on the leads that come next and decide the calibration
(:func:`~leadheat.predict.calibration.choose_calibrator`): Platt scaling fitted on them, kept
only if, fitted on their earlier half, it beat the trees' own probabilities on their later
half; otherwise the trees' own probabilities. The final trees are then grown on *all* rows,
for as many rounds as early stopping chose scaled by the extra rows (1.25 times), because the
latest rows are the ones most like tomorrow's leads and should not be left out of the model;
the calibration chosen on the held-out rows is kept for them. (On validation rows inside the
benchmark's training sets this ranked and calibrated better on average than keeping the trees
grown without the latest fifth, clearly so out of time, and choosing the calibration so beat
always and never calibrating on mean Brier: docs/predict.md.)

A model file is one JSON document: the encoder, the calibrator, LightGBM's own text format
for the trees, and a format version that :meth:`TabularModel.load` checks. Nothing is
pickled, so loading a model file never runs code from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.calibration import (
    CalibrationCheck,
    Calibrator,
    calibrator_from_json,
    choose_calibrator,
)
from leadheat.predict.features import Encoder, Matrix
from leadheat.predict.table import Table, TableError, binary_target

if TYPE_CHECKING:
    import lightgbm

FORMAT = "leadheat-tabular-model"
FORMAT_VERSION = 1
HOLDOUT_SHARE = 0.2
"""The latest fifth of the training rows: early stopping, calibration, holdout scores."""
MIN_ROWS = 40
"""Fewer rows leave too few held-out ones (8) to say anything about calibration."""
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
    """Ranking quality of the trees grown without these rows."""
    calibration: CalibrationCheck
    """Platt scaling fitted on the earlier half of these rows against the trees' own
    probabilities, on the later half: the model is calibrated only if it helped there."""
    rounds: int
    """Boosting rounds early stopping chose on these rows (before scaling to all rows)."""


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

    Contributions come from the trees themselves (TreeSHAP, LightGBM's ``pred_contrib``):
    ``expected`` plus every feature's contribution is the lead's raw log-odds, before the
    calibrator, which keeps their order but not their scale.
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
    booster: lightgbm.Booster
    calibrator: Calibrator
    """Platt scaling, or :class:`~leadheat.predict.calibration.Identity` (the trees' own
    probabilities) when calibrating did not help on the held-out rows."""
    holdout: Holdout
    training_rows: int
    training_positives: int

    def raw_scores(self, table: Table) -> npt.NDArray[np.float64]:
        """The trees' log-odds for each row, before calibration (they rank the same)."""
        return self._raw(self.encoder.transform(table))

    def _raw(self, matrix: Matrix) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster.predict(matrix, raw_score=True), dtype=np.float64)

    def predict_proba(self, table: Table) -> npt.NDArray[np.float64]:
        """The calibrated probability that each row converts, in row order."""
        return self.calibrator(self.raw_scores(table))

    def explain(self, table: Table, row: int, top: int = 3) -> Explanation:
        """The ``top`` features that raise and that lower row ``row``'s score most.

        Features that do not move the score at all are never listed.
        """
        matrix = self.encoder.transform(table.take([row]))
        contributions = np.asarray(
            self.booster.predict(matrix, pred_contrib=True), dtype=np.float64
        )[0]
        factors = [
            Factor(feature.name, feature.describe(float(matrix[0, k])), float(contributions[k]))
            for k, feature in enumerate(self.encoder.features)
        ]
        factors.sort(key=lambda f: -f.contribution)
        probability = float(self.calibrator(self._raw(matrix))[0])
        return Explanation(
            probability=probability,
            expected=float(contributions[-1]),
            raising=tuple(f for f in factors[:top] if f.contribution > 0),
            lowering=tuple(f for f in reversed(factors[-top:]) if f.contribution < 0),
        )

    def to_json(self) -> dict[str, Any]:
        """The whole model as plain data (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
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
            },
            "encoder": self.encoder.to_json(),
            "calibrator": self.calibrator.to_json(),
            "trees": self.booster.model_to_string(),
        }

    def save(self, path: Path) -> None:
        """Write the model file (one JSON document)."""
        path.write_text(json.dumps(self.to_json()), "utf-8")

    @classmethod
    def load(cls, path: Path) -> TabularModel:
        """Read a model file, refusing anything but this format and version."""

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
        if data.get("version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: model file format version {data.get('version')!r}; this leadheat "
                f"reads version {FORMAT_VERSION} (train the model again with this version)"
            )
        holdout = data["holdout"]
        try:
            calibrator = calibrator_from_json(data["calibrator"])
        except ValueError as error:
            raise ModelFileError(f"{source}: {error}") from None
        return cls(
            target=data["target"],
            positive=data["positive"],
            encoder=Encoder.from_json(data["encoder"]),
            booster=lightgbm.Booster(model_str=data["trees"]),
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
            ),
            training_rows=data["training_rows"],
            training_positives=data["training_positives"],
        )


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
    seed: int = 7,
    threads: int = 2,
) -> TabularModel:
    """Train and calibrate a model on ``table`` (oldest rows first) to predict ``target``.

    ``drop`` names columns to leave out, such as fields filled in only after the outcome is
    known (they would leak it). Identifiers and constant columns are left out without asking
    (see :class:`~leadheat.predict.features.Encoder`).
    """
    import lightgbm
    from sklearn.metrics import roc_auc_score

    outcomes, positive = binary_target(table, target)
    if len(table) < MIN_ROWS:
        raise TableError(
            f"{table.source}: {len(table)} rows; training needs at least {MIN_ROWS} "
            "(the latest fifth is held out to calibrate)"
        )
    y = np.asarray(outcomes, dtype=np.int_)
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
    raw = np.asarray(trial.predict(matrix[held], raw_score=True), dtype=np.float64)
    booster = lightgbm.train(
        params, dataset(slice(None)), num_boost_round=round(rounds / (1 - HOLDOUT_SHARE))
    )
    calibrator, check = choose_calibrator(raw, y[held])
    return TabularModel(
        target=target,
        positive=positive,
        encoder=encoder,
        booster=booster,
        calibrator=calibrator,
        holdout=Holdout(
            rows=len(raw),
            positives=int(y[held].sum()),
            roc_auc=float(roc_auc_score(y[held], raw)),
            calibration=check,
            rounds=rounds,
        ),
        training_rows=len(y),
        training_positives=int(y.sum()),
    )
