"""Models chosen by the future and drift measured after: a SYNTHETIC lead file whose
conversion rule changes in its latest fifth (known ground truth) against one where it holds.

The rule: a channel and a page count raise the odds (main effects a linear model can learn),
and an interaction (pages and minutes of the same sign) that only trees can learn. In the
shifted file the interaction's sign flips for the latest fifth: what the trees learnt from the
earlier rows is now wrong, the main effects still hold.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from leadheat.cli import app
from leadheat.predict.calibration import Platt, sigmoid
from leadheat.predict.drift import assess, recalibrated, wilson
from leadheat.predict.model import TabularModel, train_model
from leadheat.predict.table import Table, TableError, read_table

ROWS = 1000
NEVER = 10**9


def changing_rule(
    path: Path, rows: int = ROWS, seed: int = 1, flip_from: int = NEVER, lift: float = 0.0
) -> Path:
    """SYNTHETIC leads (see the module docstring); rows from ``flip_from`` on follow the
    changed rule; ``lift`` is added to every row's log-odds (a campaign that lifts all)."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["Channel", "Pages", "Minutes", "Converted"])
        for i in range(rows):
            channel = "abcd"[rng.integers(4)]
            pages, minutes = rng.uniform(-1, 1, 2)
            interaction = 2.0 * np.sign(pages * minutes) * (-1 if i >= flip_from else 1)
            odds = lift - 1.5 + 1.5 * pages + 1.0 * (channel == "a") + interaction
            converted = int(rng.random() < sigmoid(np.array([odds]))[0])
            writer.writerow([channel, f"{pages:.3f}", f"{minutes:.3f}", converted])
    return path


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> TabularModel:
    path = changing_rule(tmp_path_factory.mktemp("steady") / "steady.csv")
    return train_model(read_table(path), "Converted")


def test_training_keeps_the_family_that_survives_the_change(
    steady: TabularModel, tmp_path: Path
) -> None:
    """Where the rule holds, the trees (which learn the interaction) win; where it changes in
    the latest fifth, the linear model does, and the summary says why."""
    assert steady.family == "trees"
    shifted_file = changing_rule(tmp_path / "shifted.csv", flip_from=ROWS * 4 // 5)
    shifted = train_model(read_table(shifted_file), "Converted")
    assert shifted.family == "linear"
    results = {c.family: c for c in shifted.holdout.candidates}
    assert set(results) == {"trees", "linear", "blend"}
    assert results["linear"].roc_auc > results["trees"].roc_auc + 0.05
    assert shifted.booster is None and shifted.linear is not None
    # a linear model's factors are its terms, and they add up to its log-odds
    table = read_table(shifted_file)
    why = shifted.explain(table, 0, top=3)
    terms = shifted.linear.terms(shifted.encoder, shifted.encoder.transform(table.take([0])))
    assert why.expected + terms.sum() == pytest.approx(float(shifted.raw_scores(table)[0]))
    assert {f.feature for f in why.raising + why.lowering} <= {"Channel", "Pages", "Minutes"}
    # the family survives a round trip through the model file
    shifted.save(tmp_path / "shifted.model")
    again = TabularModel.load(tmp_path / "shifted.model")
    assert again.family == "linear"
    assert np.allclose(again.predict_proba(table), shifted.predict_proba(table))
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["model", "train", "--from-csv", str(shifted_file), "--target", "Converted",
         "--out", str(tmp_path / "cli.model")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "  trees: ROC-AUC" in result.output and "  blend: ROC-AUC" in result.output
    assert "chosen: linear (best held-out ROC-AUC" in result.output


def test_a_version_1_model_file_loads_as_trees(steady: TabularModel, tmp_path: Path) -> None:
    data = steady.to_json()
    old = {k: v for k, v in data.items() if k not in ("family", "linear", "reference")}
    old["version"] = 1
    old["holdout"] = {k: v for k, v in data["holdout"].items() if k not in ("candidates", "reason")}
    (tmp_path / "v1.model").write_text(json.dumps(old), "utf-8")
    loaded = TabularModel.load(tmp_path / "v1.model")
    table = read_table(changing_rule(tmp_path / "few.csv", rows=50, seed=9))
    assert loaded.family == "trees" and loaded.holdout.candidates == ()
    assert np.allclose(loaded.predict_proba(table), steady.predict_proba(table))


def test_drift_alarms_on_the_changed_rule_and_not_on_the_same_one(
    steady: TabularModel, tmp_path: Path
) -> None:
    """New leads under the same rule: no alarm. New leads under the changed rule: the ranking
    drops and the alarm says so; over the command line too, as JSON."""
    same = changing_rule(tmp_path / "same.csv", rows=400, seed=2)
    changed = changing_rule(tmp_path / "changed.csv", rows=400, seed=3, flip_from=0)
    empty = assess(steady, read_table(same).take([]), [])
    assert not empty.alarm and empty.to_json()["observed_rate"] is None
    calm = assess(steady, *_rows(same))
    assert not calm.alarm and calm.reasons == ()
    assert calm.interval[0] <= calm.predicted_rate <= calm.interval[1]
    loud = assess(steady, *_rows(changed))
    assert loud.alarm
    assert any(r.startswith("ranking dropped") for r in loud.reasons)
    assert loud.roc_auc is not None and loud.roc_auc < 0.6
    steady.save(tmp_path / "steady.model")
    runner = CliRunner()
    for path, alarm in ((same, False), (changed, True)):
        result = runner.invoke(
            app,
            ["model", "drift", "--model", str(tmp_path / "steady.model"), "--from-csv",
             str(path), "--target", "Converted", "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["alarm"] is alarm
        assert {"observed_rate", "predicted_rate", "interval", "roc_auc", "movers"} <= set(report)
        assert {m["feature"] for m in report["movers"]} <= {"Channel", "Pages", "Minutes"}


def test_a_moved_rate_alarms_and_recalibrating_brings_it_back(
    steady: TabularModel, tmp_path: Path
) -> None:
    """Only the base rate moves (the ranking holds): the calibration alarm sounds, and a model
    recalibrated on those outcomes, with the same trees, is back inside the interval."""
    table, promoted = _rows(changing_rule(tmp_path / "w.csv", rows=600, seed=4, lift=1.5))
    moved = assess(steady, table, promoted)
    assert moved.alarm and "outside the observed rate's 95% interval" in moved.reasons[0]
    fixed = recalibrated(steady, table, promoted)
    assert isinstance(fixed.calibrator, Platt) and fixed.booster is steady.booster
    later = _rows(changing_rule(tmp_path / "l.csv", rows=600, seed=6, lift=1.5))
    assert assess(steady, *later).alarm and not assess(fixed, *later).alarm


def test_few_outcomes_are_named_and_too_few_refused(tmp_path: Path) -> None:
    """Tens of conversions: the model trains and says so; under ten, a clear refusal."""
    rows = ["Channel,Pages,Converted"]
    rng = np.random.default_rng(0)
    for i in range(300):
        rows.append(f"{'ab'[i % 2]},{rng.uniform():.3f},{int(i % 10 == 0)}")
    small = tmp_path / "small.csv"
    small.write_text("\n".join(rows) + "\n", "utf-8")
    model = train_model(read_table(small), "Converted")
    assert model.few_outcomes
    result = CliRunner().invoke(
        app,
        ["model", "train", "--from-csv", str(small), "--target", "Converted",
         "--out", str(tmp_path / "m.model")],
    )  # fmt: skip
    assert result.exit_code == 0 and "note: few outcomes (30 of the rarer one)" in result.output
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(rows[:1] + [r[:-1] + "0" for r in rows[1:]][:-8]) + "\n"
                    + "\n".join(["a,0.5,1"] * 8) + "\n", "utf-8")  # fmt: skip
    with pytest.raises(TableError, match=r'"Converted": only 8 rows with Converted = 1; .* at'):
        train_model(read_table(tiny), "Converted")


def test_time_column_orders_the_rows(tmp_path: Path) -> None:
    """--time puts the rows in date order (so the held-out rows are the latest) and is not
    learnt from."""
    path = changing_rule(tmp_path / "t.csv", rows=300, seed=8)
    lines = path.read_text("utf-8").splitlines()
    dated = [lines[0] + ",Created"] + [
        f"{line},2026-01-{1 + (len(lines) - k) // 12:02d}T00:00:00Z"
        for k, line in enumerate(lines[1:], 1)
    ]
    (tmp_path / "dated.csv").write_text("\n".join(dated) + "\n", "utf-8")
    model = train_model(read_table(tmp_path / "dated.csv"), "Converted", time="Created")
    assert "Created" not in model.encoder.names
    bad = [*dated[:1], dated[1].replace("2026-01", "soon"), *dated[2:]]
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n", "utf-8")
    with pytest.raises(TableError, match=r'line 2, column "Created"'):
        train_model(read_table(tmp_path / "bad.csv"), "Converted", time="Created")


def _rows(path: Path) -> tuple[Table, list[int]]:
    table = read_table(path)
    return table, [int(v == "1") for v in table.column("Converted")]


def test_wilson_interval_matches_the_textbook() -> None:
    low, high = wilson(31, 100)
    assert (round(low, 3), round(high, 3)) == (0.228, 0.406)
