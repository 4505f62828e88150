"""How leadheat's calibration rule was chosen: candidate rules on validation rows inside the
*training* rows of ``bench/predict.py``, never its test rows.

Each benchmark training set (both data sets, both splits, rows in the order the model gets
them) is cut at several origins: the first 50, 60, 70 or 80 % of its rows train, the next
20 % validate. On each cut, leadheat's pipeline (``leadheat.predict.model.train_model``:
trees grown without the latest fifth stop early on it, final trees grown on all rows) is run
once, and the only thing that varies is how the calibration is decided:

- **always Platt** / **never**: Platt scaling fitted on the held-out fifth, or the trees' own
  probabilities, whatever the held-out rows say.
- **check** (the rule ``train_model`` uses): Platt fitted on the earlier half of the held-out
  rows against the trees' own probabilities on the later half, both scored by the trees grown
  without the held-out rows.
- **mirror check**: the same, but the later half is scored by trees grown on everything before
  it (the training rows and the earlier half), for the rounds early stopping chose scaled to
  those rows: the shipped pipeline one step back, where the final trees have seen the latest
  rows before the calibrator is applied to them.
- **mirror 3-way**: the mirror check choosing among raw, Platt and their mean.

The ``check`` column is asserted to be exactly what ``train_model`` gives, so this script
measures the code that ships. Run ``.venv/bin/python bench/predict_choices.py``; without
``../shared/data`` it says so and exits with status 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm
import numpy as np
import numpy.typing as npt

from leadheat.predict import model as leadheat_model
from leadheat.predict.calibration import fit_platt, sigmoid
from leadheat.predict.features import Encoder
from leadheat.predict.metrics import brier, score
from leadheat.predict.table import Table, binary_target, read_table
from predict import DATA_SETS, SEED, THREADS, splits

Vector = npt.NDArray[np.float64]
ORIGINS = (0.5, 0.6, 0.7, 0.8)
VALIDATION_SHARE = 0.2
RULES = ("always Platt", "never", "check", "mirror check", "mirror 3-way")


@dataclass(frozen=True)
class Pipeline:
    """What ``train_model`` computes, plus the mirror trees' scores on the later half."""

    encoder: Encoder
    final: lightgbm.Booster
    held: Vector
    """Scores of the trees grown without the held-out fifth, on it."""
    held_outcomes: npt.NDArray[np.int_]
    later_mirror: Vector
    """Scores, on the later half of the held-out fifth, of trees grown on all rows before it."""


def pipeline(table: Table, target: str) -> Pipeline:
    """``train_model``'s steps, in the same order and with the same parameters."""
    m = leadheat_model
    y = np.asarray(binary_target(table, target)[0], dtype=np.int_)
    encoder = Encoder.fit(table, exclude=[target])
    matrix = encoder.transform(table)
    cut = len(y) - max(1, round(m.HOLDOUT_SHARE * len(y)))
    params = {**m.PARAMS, "seed": SEED, "num_threads": THREADS, **m._small_data(len(y))}
    names = [f"f{k}" for k in range(len(encoder.names))]

    def dataset(rows: slice, reference: lightgbm.Dataset | None = None) -> lightgbm.Dataset:
        return lightgbm.Dataset(
            matrix[rows],
            y[rows],
            feature_name=names,
            categorical_feature=encoder.categorical,
            reference=reference,
            free_raw_data=False,
        )

    learning = dataset(slice(0, cut))
    trial = lightgbm.train(
        params,
        learning,
        num_boost_round=m.MAX_ROUNDS,
        valid_sets=[dataset(slice(cut, None), learning)],
        callbacks=[lightgbm.early_stopping(m.PATIENCE, verbose=False)],
    )
    rounds = trial.best_iteration or m.MAX_ROUNDS
    final = lightgbm.train(
        params, dataset(slice(None)), num_boost_round=round(rounds / (1 - m.HOLDOUT_SHARE))
    )
    middle = cut + (len(y) - cut) // 2
    mirror = lightgbm.train(
        params, dataset(slice(0, middle)), num_boost_round=round(rounds * middle / cut)
    )
    return Pipeline(
        encoder=encoder,
        final=final,
        held=np.asarray(trial.predict(matrix[cut:], raw_score=True), dtype=np.float64),
        held_outcomes=y[cut:],
        later_mirror=np.asarray(mirror.predict(matrix[middle:], raw_score=True), dtype=np.float64),
    )


def rules(p: Pipeline) -> dict[str, Callable[[Vector], Vector]]:
    """Each rule's map from the final trees' scores to probabilities."""
    half = len(p.held_outcomes) // 2
    early, late = p.held[:half], p.held[half:]
    early_y, late_y = p.held_outcomes[:half], p.held_outcomes[half:]
    platt = fit_platt(p.held, p.held_outcomes)
    first_half = fit_platt(early, early_y)

    def raw(s: Vector) -> Vector:
        return sigmoid(s)

    def blend(s: Vector) -> Vector:
        return 0.5 * (sigmoid(s) + platt(s))

    check = platt if brier(first_half(late), late_y) < brier(sigmoid(late), late_y) else raw
    mirrored = {
        raw: brier(sigmoid(p.later_mirror), late_y),
        platt: brier(first_half(p.later_mirror), late_y),
    }
    mirror = platt if mirrored[platt] < mirrored[raw] else raw
    mirrored[blend] = brier(0.5 * (sigmoid(p.later_mirror) + first_half(p.later_mirror)), late_y)
    three_way = min(mirrored, key=lambda rule: mirrored[rule])
    chosen = (platt, raw, check, mirror, three_way)
    return dict(zip(RULES, chosen, strict=True))


def main() -> None:
    missing = [d.path for d in DATA_SETS if not d.path.is_file()]
    if missing:
        print(f"shared data not found ({missing[0]}): nothing to measure")
        return
    print("command: " + " ".join([sys.executable, *sys.argv]))
    print(f"validation Brier per rule ({', '.join(RULES)}); training rows only")
    results: list[tuple[str, dict[str, tuple[float, float, float]]]] = []
    for data in DATA_SETS:
        table = read_table(data.path).without(data.leaky)
        for split, (train_rows, _) in splits(table, data.time_order(table)).items():
            training = table.take(train_rows)
            for origin in ORIGINS:
                start = round(origin * len(training))
                end = round((origin + VALIDATION_SHARE) * len(training))
                learn, validation = training.take(range(start)), training.take(range(start, end))
                found = pipeline(learn, data.target)
                outcomes = np.asarray(binary_target(validation, data.target)[0], dtype=np.int_)
                scores = np.asarray(
                    found.final.predict(found.encoder.transform(validation), raw_score=True),
                    dtype=np.float64,
                )
                candidates = rules(found)
                measured = {}
                for name, rule in candidates.items():
                    s = score(rule(scores), outcomes)
                    measured[name] = (s.brier, s.log_loss, s.calibration_error)
                shipped = leadheat_model.train_model(  # the trees' calibration is studied here
                    learn, data.target, families=("trees",), seed=SEED, threads=THREADS
                )
                assert np.allclose(shipped.predict_proba(validation), candidates["check"](scores))
                results.append((split, measured))
                print(
                    f"{data.name:20} {split:11} first {origin:.0%}: "
                    + "  ".join(f"{measured[name][0]:.4f}" for name in RULES)
                )
    for split in ("random", "out of time", None):
        chosen = [m for s, m in results if split in (None, s)]
        print(f"\nmean over {len(chosen)} cuts ({split or 'both splits'}):")
        for name in RULES:
            b, ll, ece = (np.mean([m[name][k] for m in chosen]) for k in range(3))
            print(f"  {name:14} Brier {b:.5f}  log-loss {ll:.5f}  ECE {ece:.5f}")


if __name__ == "__main__":
    main()
