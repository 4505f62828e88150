"""The predictive conversion score on CSV files: reading, training, storing, predicting,
explaining, against its baselines, and the ``leadheat model`` commands.

Small synthetic files (written here, labelled so) pin down behaviour; the real X Education
leads and UCI shoppers (``shared_data``) check that the model earns its keep.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from leadheat.cli import app
from leadheat.playbook import FitRule
from leadheat.predict.baselines import DefaultLightGBM, Logistic, NaiveBayes, RuleScore
from leadheat.predict.calibration import Identity, Platt, sigmoid
from leadheat.predict.features import Encoder
from leadheat.predict.metrics import (
    brier,
    calibration_error,
    lift_at,
    paired_difference,
    roc_auc,
    score,
)
from leadheat.predict.model import ModelFileError, TabularModel, train_model
from leadheat.predict.table import Kind, Table, TableError, binary_target, read_table

ORIGINS = ("Form", "Chat", "API", "Select", "")
X_LEAKY = (
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
    "Last Notable Activity",
)


def synthetic_leads(
    path: Path, rows: int = 600, seed: int = 3, shift: Callable[[int], float] = lambda i: 0.0
) -> Path:
    """A SYNTHETIC lead file: an id, an origin (with ``Select`` and blanks), visits (some
    blank), a yes/no flag, a constant column, and ``Converted`` drawn from a known model in
    which forms and visits raise the odds; ``shift(row)`` is added to the log-odds, for a
    conversion rate that moves over time (rows are in time order)."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["Lead ID", "Origin", "Visits", "Newsletter", "Country", "Converted"])
        for i in range(rows):
            origin = ORIGINS[rng.integers(len(ORIGINS))]
            visits = int(rng.poisson(3))
            newsletter = "Yes" if rng.random() < 0.3 else "No"
            odds = -3.0 + 2.5 * (origin == "Form") + 0.8 * visits + 0.8 * (newsletter == "Yes")
            odds += shift(i)
            converted = int(rng.random() < sigmoid(np.array([odds]))[0])
            shown = "" if rng.random() < 0.1 else str(visits)
            writer.writerow([f"L{1000 + i}", origin, shown, newsletter, "India", converted])
    return path


@pytest.fixture
def leads_csv(tmp_path: Path) -> Path:
    return synthetic_leads(tmp_path / "leads.csv")


@pytest.fixture
def model(leads_csv: Path) -> TabularModel:
    return train_model(read_table(leads_csv), "Converted")


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text("utf-8").splitlines()))


# -- reading files ------------------------------------------------------------------------------
def test_placeholders_are_missing_and_kinds_are_inferred(tmp_path: Path) -> None:
    table = read_table(
        write(
            tmp_path / "t.csv",
            "\ufefforigin,visits,email ok,city,\n"
            "Select,3,Yes,N/A,\n"
            "API, ,no,Mumbai,\n"
            "select,1.5,-,null,\n"
            "\n"
            "Form,NA,YES,Thane,\n",
        )
    )
    assert table.names == ("origin", "visits", "email ok", "city")
    assert list(table.column("origin")) == [None, "API", None, "Form"]
    assert list(table.column("visits")) == ["3", None, "1.5", None]
    assert list(table.lines) == [2, 3, 4, 6]
    encoder = Encoder.fit(table)
    kinds = {f.name: f.kind for f in encoder.features}
    assert kinds == {
        "origin": Kind.CATEGORY,
        "visits": Kind.NUMBER,
        "email ok": Kind.FLAG,
        "city": Kind.CATEGORY,
    }
    matrix = encoder.transform(table)
    assert np.isnan(matrix[0, 0]) and np.isnan(matrix[1, 1]) and matrix[3, 2] == 1.0


def test_a_row_of_the_wrong_width_and_a_file_that_is_not_utf8_are_named(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"bad\.csv: line 3: 2 fields, the header has 3"):
        read_table(write(tmp_path / "bad.csv", "a,b,c\n1,2,3\n1,2\n"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b\n1,2\nJos\xe9,3\n".encode("latin-1"))
    with pytest.raises(TableError, match=r"latin\.csv: line 3: not UTF-8"):
        read_table(latin)
    with pytest.raises(TableError, match=r"line 1: column \"a\" appears twice"):
        read_table(write(tmp_path / "twice.csv", "a,a\n1,2\n"))


def test_identifiers_and_constant_columns_are_left_out(leads_csv: Path) -> None:
    encoder = Encoder.fit(read_table(leads_csv), exclude=["Converted"])
    assert encoder.names == ["Origin", "Visits", "Newsletter"]
    assert dict(encoder.dropped) == {
        "Lead ID": "identifier: a different value on every row",
        "Country": "constant: one value on every row",
    }


def test_unseen_and_rare_categories_become_other(tmp_path: Path) -> None:
    train = read_table(
        write(tmp_path / "train.csv", "source\n" + "Google\n" * 12 + "chat\n" * 10 + "Bing\n")
    )
    encoder = Encoder.fit(train)
    (source,) = encoder.features
    assert source.categories == ("Google", "chat")
    new = read_table(write(tmp_path / "new.csv", "source\nGOOGLE\nBing\nTikTok\nSelect\n"))
    codes = encoder.transform(new)[:, 0]
    assert codes[:3].tolist() == [0.0, 2.0, 2.0] and np.isnan(codes[3])


def test_the_outcome_column_must_be_yes_or_no(tmp_path: Path) -> None:
    def target(text: str, column: str = "won") -> tuple[list[int], str]:
        return binary_target(read_table(write(tmp_path / "o.csv", text)), column)

    assert target("won\nyes\nNo\nYES\n") == ([1, 0, 1], "yes")
    assert target("won\n0\n1\n") == ([0, 1], "1")
    with pytest.raises(TableError, match=r'no column "lost" \(columns: "won"\)'):
        target("won\n0\n", "lost")
    with pytest.raises(TableError, match=r'column "won" is not a yes/no outcome: it has 3'):
        target("won\n0\n1\n2\n")
    with pytest.raises(TableError, match=r'line 3, column "won": no outcome'):
        target("won\n0\nSelect\n1\n")
    with pytest.raises(TableError, match=r"cannot tell which of 'red' and 'blue'"):
        target("won\nred\nblue\n")


def test_training_needs_both_outcomes_early_and_late(tmp_path: Path) -> None:
    rows = "".join(f"{i % 7},{int(i < 40)}\n" for i in range(60))  # the latest fifth all lost
    with pytest.raises(TableError, match=r"the latest rows all have the same outcome"):
        train_model(read_table(write(tmp_path / "t.csv", "x,won\n" + rows)), "won")


# -- the model ----------------------------------------------------------------------------------
def test_the_model_learns_the_synthetic_rule(model: TabularModel, tmp_path: Path) -> None:
    fresh = read_table(synthetic_leads(tmp_path / "fresh.csv", rows=1500, seed=11))
    outcomes, _ = binary_target(fresh, "Converted")
    probabilities = model.predict_proba(fresh)
    assert score(probabilities, outcomes).roc_auc > 0.80  # the true odds score 0.83
    assert abs(probabilities.mean() - np.mean(outcomes)) < 0.08


def test_calibration_is_kept_only_where_it_helped_on_later_held_out_rows(tmp_path: Path) -> None:
    """The latest fifth (rows 800 to 999) decides. A rate that steps up there and stays up:
    Platt, fitted on its earlier half, helps on its later half, and is kept. A rate that jumps
    only in its earlier half and falls back: Platt would carry the jump on, so the trees' own
    probabilities are used."""
    stays_up = synthetic_leads(tmp_path / "up.csv", 1000, shift=lambda i: 1.5 * (i >= 800))
    model = train_model(read_table(stays_up), "Converted")
    check = model.holdout.calibration
    assert isinstance(model.calibrator, Platt) and check.calibrated < check.raw, check
    assert model.calibrator.intercept > 0.5  # it follows the higher rate

    passing = synthetic_leads(tmp_path / "blip.csv", 1000, shift=lambda i: 2.0 * (800 <= i < 900))
    model = train_model(read_table(passing), "Converted")
    check = model.holdout.calibration
    assert model.calibrator == Identity() and check.calibrated >= check.raw, check
    table = read_table(passing)
    assert np.array_equal(model.predict_proba(table), sigmoid(model.raw_scores(table)))


def test_saving_and_loading_gives_identical_probabilities(
    model: TabularModel, leads_csv: Path, tmp_path: Path
) -> None:
    table = read_table(leads_csv)
    platt = replace(model, calibrator=Platt(slope=0.9, intercept=-0.2))
    for trained in (platt, replace(model, calibrator=Identity())):
        trained.save(tmp_path / "m.json")
        loaded = TabularModel.load(tmp_path / "m.json")
        assert np.array_equal(loaded.predict_proba(table), trained.predict_proba(table))
        assert loaded.encoder == trained.encoder and loaded.calibrator == trained.calibrator
        assert loaded.holdout == trained.holdout
    # an uncalibrated model's file reads as Platt scaling with slope 1 and intercept 0 too, so
    # a reader that knows only Platt gives the same probabilities
    scores = model.raw_scores(table)
    assert np.array_equal(Platt.from_json(Identity().to_json())(scores), sigmoid(scores))


def test_a_model_file_of_another_version_or_kind_is_refused(
    model: TabularModel, tmp_path: Path
) -> None:
    data = model.to_json()
    write(tmp_path / "v3.json", json.dumps({**data, "version": 3}))
    with pytest.raises(ModelFileError, match=r"v3\.json: model file format version 3; this"):
        TabularModel.load(tmp_path / "v3.json")
    write(tmp_path / "other.json", json.dumps({"format": "something else"}))
    with pytest.raises(ModelFileError, match="not a leadheat model file"):
        TabularModel.load(tmp_path / "other.json")
    write(tmp_path / "iso.json", json.dumps({**data, "calibrator": {"method": "isotonic"}}))
    with pytest.raises(ModelFileError, match=r"iso\.json: unknown calibration method 'isotonic'"):
        TabularModel.load(tmp_path / "iso.json")


def test_an_unseen_category_at_prediction_is_scored_as_other(model: TabularModel) -> None:
    table = Table(
        source="<new>",
        names=("Origin", "Visits", "Newsletter"),
        columns={
            "Origin": ["Carrier pigeon", "Form"],
            "Visits": ["2", "2"],
            "Newsletter": ["No", "No"],
        },
        lines=[2, 3],
    )
    unseen, form = model.predict_proba(table)
    assert 0 < unseen < form < 1


def test_the_explanation_names_what_drives_the_score(model: TabularModel, tmp_path: Path) -> None:
    table = read_table(
        write(tmp_path / "two.csv", "Origin,Visits,Newsletter\nForm,9,Yes\nAPI,0,No\n")
    )
    hot, cold = model.explain(table, 0), model.explain(table, 1)
    assert hot.raising[0].feature in {"Origin", "Visits"}
    assert {f.feature for f in hot.raising} >= {"Origin", "Visits"}
    assert not any(f.contribution <= 0 for f in hot.raising)
    assert {f.feature for f in cold.lowering} >= {"Origin", "Visits"}
    assert str(hot.raising[0]).startswith(f"{hot.raising[0].feature} = ")
    raw = model.raw_scores(table)[0]
    every = model.explain(table, 0, top=len(model.encoder.features))
    total = every.expected + sum(f.contribution for f in (*every.raising, *every.lowering))
    assert total == pytest.approx(raw, abs=1e-9)
    assert hot.probability == pytest.approx(model.predict_proba(table)[0])


# -- baselines and measures -----------------------------------------------------------------------
def test_every_baseline_gives_a_probability_per_row(leads_csv: Path, tmp_path: Path) -> None:
    train = read_table(leads_csv)
    fresh = read_table(synthetic_leads(tmp_path / "fresh.csv", rows=300, seed=5))
    outcomes, _ = binary_target(fresh, "Converted")
    rules = [FitRule(field="Origin", equals="Form", points=10)]
    for baseline in (
        Logistic.fit(train, "Converted"),
        DefaultLightGBM.fit(train, "Converted"),
        NaiveBayes.fit(train, "Converted"),
        RuleScore.fit(rules, train, "Converted"),
    ):
        probabilities = baseline.predict_proba(fresh)
        assert probabilities.shape == (300,)
        assert ((probabilities > 0) & (probabilities < 1)).all()
        assert score(probabilities, outcomes).roc_auc > 0.6, type(baseline).__name__


def test_lift_and_calibration_error_by_hand() -> None:
    probabilities = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    outcomes = [1, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert lift_at(probabilities, outcomes, share=0.2) == pytest.approx(0.5 / 0.3)
    # bins of 5: predicted 0.21 vs 0.2 observed, 0.7 vs 0.4: (5·0.01 + 5·0.3) / 10
    assert calibration_error(probabilities, outcomes, bins=2) == pytest.approx(0.155)


def test_paired_bootstrap_tells_a_real_gap_from_noise() -> None:
    rng = np.random.default_rng(3)
    outcomes = (rng.random(3000) < 0.2).astype(int)

    def informed_guess() -> np.ndarray:
        return np.clip(0.2 + 0.3 * (outcomes - 0.2) + rng.normal(0, 0.1, 3000), 0.01, 0.99)

    informed, twin = informed_guess(), informed_guess()  # equally good, independent noise
    guess = np.full(3000, 0.2)

    real = paired_difference(brier, informed, guess, outcomes)
    assert real.value == pytest.approx(brier(informed, outcomes) - brier(guess, outcomes))
    assert real.low <= real.value <= real.high < 0 and real.clear
    noise = paired_difference(roc_auc, informed, twin, outcomes)
    assert noise.low < 0 < noise.high and not noise.clear
    coarse = np.round(informed, 1)  # ties, counted half, as scikit-learn counts them
    assert roc_auc(coarse, outcomes) == pytest.approx(roc_auc_score(outcomes, coarse), abs=1e-12)
    # swapping the models mirrors the interval (same seed, same resamples)
    swapped = paired_difference(brier, guess, informed, outcomes)
    assert (swapped.value, swapped.low, swapped.high) == pytest.approx(
        (-real.value, -real.high, -real.low)
    )


# -- the commands ---------------------------------------------------------------------------------
def test_train_and_predict_from_the_command_line(leads_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    model_file, predictions = tmp_path / "m.json", tmp_path / "p.csv"
    trained = runner.invoke(
        app,
        ["model", "train", "--from-csv", str(leads_csv), "--target", "Converted",
         "--drop", "Newsletter", "--out", str(model_file)],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "columns used (2): Origin, Visits" in trained.output
    assert "Newsletter (--drop)" in trained.output and "Lead ID (identifier" in trained.output
    assert "ROC-AUC" in trained.output

    rows = rows_of(leads_csv)
    reordered = write(
        tmp_path / "reordered.csv",
        "\n".join(",".join(r) for r in [rows[0], *reversed(rows[1:])]) + "\n",
    )
    scored = {}
    for source in (leads_csv, reordered):
        done = runner.invoke(
            app,
            ["model", "predict", "--model", str(model_file), "--from-csv", str(source),
             "--out", str(predictions)],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        assert "600 rows scored (mean probability" in done.output
        written, given = rows_of(predictions), rows_of(source)
        assert written[0] == [*given[0], "probability"]
        assert [r[:-1] for r in written[1:]] == given[1:]  # same rows, same order, same cells
        scored[source] = [float(r[-1]) for r in written[1:]]
    assert scored[reordered] == scored[leads_csv][::-1]
    expected = TabularModel.load(model_file).predict_proba(read_table(leads_csv))
    assert np.allclose(scored[leads_csv], expected, atol=5e-7)


def test_command_errors_are_one_line_with_status_1(
    model: TabularModel, leads_csv: Path, tmp_path: Path
) -> None:
    runner = CliRunner()

    def fails(*args: str) -> str:
        result = runner.invoke(app, ["model", *args])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        return result.stderr

    model_file, new_model = tmp_path / "m.json", tmp_path / "new.json"
    train = ("train", "--from-csv", str(leads_csv), "--out", str(new_model), "--target")
    assert 'no column "Outcome"' in fails(*train, "Outcome")
    assert 'column "Lead ID" is not a yes/no outcome: it has 600' in fails(*train, "Lead ID")
    assert 'no column "Nope"' in fails(*train, "Converted", "--drop", "Nope")
    assert not new_model.exists()

    model.save(model_file)
    future = write(tmp_path / "v99.json", json.dumps({**model.to_json(), "version": 99}))
    predictions = tmp_path / "p.csv"

    def predict(model_path: Path, source: Path) -> str:
        return fails(
            "predict", "--model", str(model_path), "--from-csv", str(source),
            "--out", str(predictions),
        )  # fmt: skip

    assert "format version 99; this leadheat reads versions 1, 2" in predict(future, leads_csv)
    assert "leads.csv: not a leadheat model file" in predict(leads_csv, leads_csv)
    assert "missing.csv: cannot read the file" in predict(model_file, tmp_path / "missing.csv")
    shoppers = write(tmp_path / "shop.csv", "Origin,Newsletter\nForm,yes\n")
    assert 'no column "Visits", which the model was trained on' in predict(model_file, shoppers)
    assert not predictions.exists()


# -- real data --------------------------------------------------------------------------------
@pytest.mark.shared_data
@pytest.mark.slow
def test_leadheat_outranks_naive_bayes_and_rules_on_x_education(shared_data: Path) -> None:
    table = read_table(shared_data / "x_education_leads" / "Leads.csv").without(X_LEAKY)
    drawn = [int(i) for i in np.random.default_rng(7).permutation(len(table))]
    cut = round(0.7 * len(table))
    train, test = table.take(drawn[:cut]), table.take(drawn[cut:])
    outcomes, _ = binary_target(test, "Converted")
    rules = [
        FitRule(field="Total Time Spent on Website", range=(600, 1e9), points=20),
        FitRule(field="Lead Origin", one_of=["Lead Add Form"], points=20),
        FitRule(field="What is your current occupation", equals="Working Professional", points=20),
    ]

    def roc_auc(probabilities: np.ndarray) -> float:
        return score(probabilities, outcomes).roc_auc

    ours = roc_auc(train_model(train, "Converted").predict_proba(test))
    naive_bayes = roc_auc(NaiveBayes.fit(train, "Converted").predict_proba(test))
    rule_score = roc_auc(RuleScore.fit(rules, train, "Converted").predict_proba(test))
    assert ours > 0.88
    assert ours > naive_bayes + 0.01 and ours > rule_score + 0.01, (ours, naive_bayes, rule_score)


@pytest.mark.shared_data
@pytest.mark.slow
def test_calibration_helps_on_the_later_x_education_leads(shared_data: Path) -> None:
    """Trained on the earliest 70 % of the file, tested on the rest: the check on the held-out
    rows keeps Platt scaling here, and the calibrated probabilities must beat the trees' own
    on Brier and calibration error.

    An honest check that could fail, and does elsewhere: on the shoppers' later months the
    same check keeps Platt too, and calibrating to November's high rate makes December worse
    (docs/predict.md).
    """
    table = read_table(shared_data / "x_education_leads" / "Leads.csv").without(X_LEAKY)
    cut = round(0.7 * len(table))
    model = train_model(table.take(range(cut)), "Converted")
    assert isinstance(model.calibrator, Platt) and model.holdout.calibration.helps
    later = table.take(range(cut, len(table)))
    outcomes, _ = binary_target(later, "Converted")
    calibrated = score(model.predict_proba(later), outcomes)
    raw = score(sigmoid(model.raw_scores(later)), outcomes)
    assert calibrated.brier < raw.brier - 0.001
    assert calibrated.calibration_error < raw.calibration_error
    assert calibrated.roc_auc == pytest.approx(raw.roc_auc)
