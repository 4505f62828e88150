"""``leadheat model``: train a conversion model on the team's history or a CSV file, predict
for another, evaluate the current model, explain a lead's probability, score the open leads.

A thin shell over :mod:`leadheat.predict.team`, :func:`~leadheat.predict.model.train_model`
and :class:`~leadheat.predict.model.TabularModel`; every error is one line naming the file,
line and column, with exit status 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from leadheat.cli.options import JsonOption
from leadheat.cli.output import emit, err, out
from leadheat.cli.state import open_leadheat
from leadheat.predict.drift import Drift, assess, recalibrated
from leadheat.predict.metrics import Difference
from leadheat.predict.model import ModelFileError, TabularModel, train_model
from leadheat.predict.table import Table, TableError, append_column, binary_target, read_table
from leadheat.service import Leadheat, LeadheatError
from leadheat.times import format_duration, isoformat

PROBABILITY = "probability"

model_app = typer.Typer(
    help="Predict conversion: train on the team's history (or a CSV), evaluate, explain, score.",
    no_args_is_help=True,
)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except (TableError, ModelFileError, ValueError) as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        err.print(f"[red]error:[/red] {escape(where + (error.strerror or str(error)))}")
        raise typer.Exit(1) from None


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({part / whole:.1%})"


@model_app.command("train")
def train(
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from-csv",
            help="Train on this CSV (past leads with their outcome, oldest first) instead of "
            "the database's own history.",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="With --from-csv: the outcome column (0/1, yes/no, won/lost)."
        ),
    ] = None,
    model_path: Annotated[
        Path | None, typer.Option("--out", help="With --from-csv: write the model file here.")
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop",
            help="With --from-csv: leave this column out, e.g. one filled in after the "
            "outcome; repeatable.",
        ),
    ] = None,
    horizon: Annotated[
        str,
        typer.Option(
            "--horizon",
            help="From the database: a win counts if it comes within this long of the "
            "decision (first touch); open leads younger than this are censored.",
        ),
    ] = "90d",
    time: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="With --from-csv: put the rows in the order of this date column (ISO 8601 or "
            "epoch seconds) instead of taking the file's order as time; not learnt from.",
        ),
    ] = None,
) -> None:
    """Train a calibrated conversion model, choosing between gradient-boosted trees, a linear
    model and their blend by how each does on the latest rows: on the database's own history
    (stored as the next model version; every open lead gets its probability), or on a CSV
    file."""
    if from_csv is None:
        if target is not None or model_path is not None or drop or time is not None:
            raise typer.BadParameter("--target, --out, --drop and --time go with --from-csv")
        _train_from_store(horizon)
        return
    if target is None or model_path is None:
        raise typer.BadParameter("--from-csv needs --target COLUMN and --out MODEL")
    with _one_line_errors():
        table = read_table(from_csv)
        model = train_model(table, target, drop or (), time=time)
        model.save(model_path)
    holdout = model.holdout
    left_out = [(name, "--drop") for name in drop or ()] + list(model.encoder.dropped)
    out.print(
        f"trained on {len(table):,} rows of {from_csv}: "
        f"{_share(model.training_positives, model.training_rows)} {target} = {model.positive}"
    )
    out.print(f"columns used ({len(model.encoder.features)}): {', '.join(model.encoder.names)}")
    if left_out:
        out.print("columns left out: " + ", ".join(f"{n} ({why})" for n, why in left_out))
    out.print(
        f"holdout, the latest {holdout.rows:,} rows ({holdout.positives:,} with {target} = "
        f"{model.positive}): ROC-AUC {holdout.roc_auc:.3f}; calibration: {holdout.calibration}"
    )
    print_choice(model)
    out.print(f"model written to {model_path}")


def print_choice(model: TabularModel) -> None:
    """Every candidate family's held-out result, the one kept and why; a small-history note."""
    out.print("candidates on the held-out latest rows (fitted on the earlier ones):")
    for candidate in model.holdout.candidates:
        out.print(f"  {candidate}")
    out.print(f"chosen: {model.family} ({model.holdout.reason}); refitted on all rows")
    if model.few_outcomes:
        rarer = min(model.training_positives, model.training_rows - model.training_positives)
        out.print(
            f"note: few outcomes ({rarer:,} of the rarer one): the model is shrunk toward the "
            "linear family and the base rate; expect its numbers to move as outcomes come in"
        )


def _train_from_store(horizon_text: str) -> None:
    from leadheat.predict import team
    from leadheat.times import parse_duration

    with _one_line_errors():
        info = team.train(open_leadheat(), parse_duration(horizon_text))
    out.print(
        f"model version {info.version}: trained on {info.rows:,} leads with a known outcome "
        f"({_share(info.positives, info.rows)} won within {horizon_text} of the first touch); "
        f"{info.censored:,} open leads censored"
    )
    found = team.current(open_leadheat())
    if found is not None:
        print_choice(found[1])
    print_evaluation(info.evaluation)


def print_evaluation(evaluation: dict[str, object]) -> None:
    """The time-ordered evaluation stored with a model, as a table."""
    from rich.table import Table as RichTable

    if "error" in evaluation:
        out.print(f"evaluation: {evaluation['error']}")
        return
    out.print(
        f"evaluation: trained on the earliest {evaluation['train_rows']} decisions, "
        f"tested on the latest {evaluation['test_rows']}"
    )
    table = RichTable("model", "ROC-AUC", "PR-AUC", "Brier", "log-loss", "lift@10%", "ECE")
    for name, result in evaluation.items():
        if not isinstance(result, dict):
            continue
        if "error" in result:
            table.add_row(name, str(result["error"]), "", "", "", "", "")
            continue
        table.add_row(
            name,
            *(
                f"{result[key]:.4f}"
                for key in (
                    "roc_auc",
                    "pr_auc",
                    "brier",
                    "log_loss",
                    "lift_top_decile",
                    "calibration_error",
                )
            ),
        )
    out.print(table)
    margins = [
        (name, result["leadheat_minus"])
        for name, result in evaluation.items()
        if isinstance(result, dict) and "leadheat_minus" in result
    ]
    if margins:
        out.print(
            f"leadheat minus each baseline, 95% paired bootstrap over the "
            f"{evaluation['test_rows']} test decisions:"
        )
    for name, margin in margins:
        out.print(
            f"  {name}: ROC-AUC {Difference(**margin['roc_auc'])}, "
            f"Brier {Difference(**margin['brier'])}"
        )


@model_app.command("predict")
def predict(
    model_path: Annotated[Path, typer.Option("--model", help="A model file from `model train`.")],
    from_csv: Annotated[
        Path, typer.Option("--from-csv", help="Rows to score, with the columns trained on.")
    ],
    predictions: Annotated[
        Path,
        typer.Option(
            "--out", help=f"Write the rows here, in the same order, with a `{PROBABILITY}` column."
        ),
    ],
) -> None:
    """Score every row of a CSV file with a trained model: its probability of converting."""
    with _one_line_errors():
        model = TabularModel.load(model_path)
        table = read_table(from_csv)
        probabilities = model.predict_proba(table)
        append_column(from_csv, predictions, PROBABILITY, [f"{p:.6f}" for p in probabilities])
    mean = float(probabilities.mean()) if len(probabilities) else 0.0
    out.print(
        f"{len(table):,} rows scored (mean {PROBABILITY} {mean:.3f}), written to {predictions}"
    )


# -- the predictive model (from the database) --------------------------------------------
def _current_model(lh: Leadheat) -> Any:
    from leadheat.predict import team

    found = team.current(lh)
    if found is None:
        raise LeadheatError("no model yet: run `leadheat model train`")
    return found


@model_app.command("evaluate")
def model_evaluate(as_json: JsonOption = False) -> None:
    """How the current model did on the latest 20% of decisions, beside the baselines."""
    info, _, _ = _current_model(open_leadheat())
    if as_json:
        emit(
            {
                "version": info.version,
                "trained_at": isoformat(info.trained_at),
                "horizon": format_duration(info.horizon),
                "playbook_version": info.playbook_version,
                "rows": info.rows,
                "positives": info.positives,
                "censored": info.censored,
                "evaluation": info.evaluation,
            }
        )
        return
    out.print(
        f"model version {info.version}, trained {isoformat(info.trained_at)} on {info.rows} "
        f"leads ({info.positives} won within {format_duration(info.horizon)}; "
        f"{info.censored} censored), playbook version {info.playbook_version}"
    )
    print_evaluation(info.evaluation)


@model_app.command("explain")
def model_explain(
    lead: str,
    top: Annotated[int, typer.Option("--top", min=1, max=20, help="Factors each way.")] = 3,
    as_json: JsonOption = False,
) -> None:
    """A lead's probability of converting now, and the factors that raise and lower it most
    (the model's own per-lead contributions, in log-odds)."""
    from leadheat.predict import team

    lh = open_leadheat()
    found = team.explain(lh, lead, top)
    if found is None:
        raise LeadheatError("no model yet: run `leadheat model train`")
    version, why = found
    data = {
        "lead": lead,
        "model_version": version,
        "probability": why.probability,
        "raising": [
            {"feature": f.feature, "value": f.value, "contribution": f.contribution}
            for f in why.raising
        ],
        "lowering": [
            {"feature": f.feature, "value": f.value, "contribution": f.contribution}
            for f in why.lowering
        ],
    }
    if as_json:
        emit(data)
        return
    out.print(f"{lead}: probability {why.probability:.1%} (model version {version})")
    for word, factors in (("raises it", why.raising), ("lowers it", why.lowering)):
        for factor in factors:
            out.print(f"  {word}: {factor}")


@model_app.command("score")
def model_score() -> None:
    """Store every open lead's probability as of now (run after big imports, or daily)."""
    from leadheat.predict import team

    count = team.score_leads(open_leadheat())
    out.print(f"scored {count} open leads")


def _recent_from_csv(
    model_path: Path | None, from_csv: Path | None, target: str | None
) -> tuple[TabularModel, Table, list[int]] | None:
    """With --model, --from-csv and --target: the model file and the CSV's rows as the recent
    window; ``None`` for the database's model."""
    if model_path is None and from_csv is None and target is None:
        return None
    if model_path is None or from_csv is None or target is None:
        raise typer.BadParameter("--model, --from-csv and --target go together")
    model = TabularModel.load(model_path)
    table = read_table(from_csv)
    outcomes, positive = binary_target(table, target)
    if positive.casefold() != model.positive.casefold():
        outcomes = [1 - o for o in outcomes]
    return model, table, outcomes


def print_drift(drift: Drift, window: str) -> None:
    """A drift report for people (``--json`` gives the same as data)."""
    out.print(
        f"{drift.rows:,} outcomes in {window} ({drift.positives:,} converted): observed rate "
        f"{drift.observed_rate:.3f} (95% interval {drift.interval[0]:.3f}–"
        f"{drift.interval[1]:.3f}), mean predicted {drift.predicted_rate:.3f}"
    )
    if drift.roc_auc is not None and drift.roc_auc_interval is not None:
        out.print(
            f"ROC-AUC {drift.roc_auc:.3f} (95% interval {drift.roc_auc_interval[0]:.3f}–"
            f"{drift.roc_auc_interval[1]:.3f}); {drift.holdout_roc_auc:.3f} on the held-out "
            "rows at training"
        )
    else:
        out.print("ROC-AUC: too few of an outcome in the window to say")
    if drift.movers:
        out.print(
            "features that moved most (PSI): "
            + ", ".join(f"{m.feature} {m.psi:.3f}" for m in drift.movers)
        )
    out.print(f"alarm: {'yes' if drift.alarm else 'no'}")
    for reason in drift.reasons:
        out.print(f"  {reason}")


WindowOption = Annotated[
    str,
    typer.Option(
        "--window", help="From the database: the leads whose outcome became known this recently."
    ),
]
ModelFileOption = Annotated[
    Path | None,
    typer.Option("--model", help="Instead of the database's model: this model file."),
]
RecentCsvOption = Annotated[
    Path | None,
    typer.Option(
        "--from-csv",
        help="With --model: the recent leads, with their outcome, as they were when scored.",
    ),
]
RecentTargetOption = Annotated[
    str | None, typer.Option("--target", help="With --model: the outcome column.")
]


@model_app.command("drift")
def drift(
    window: WindowOption = "30d",
    as_json: JsonOption = False,
    model_path: ModelFileOption = None,
    from_csv: RecentCsvOption = None,
    target: RecentTargetOption = None,
) -> None:
    """Is the model still right? Recent outcomes against what it predicted for those leads
    when it predicted: calibration with an interval, ranking, the features that moved, and
    an alarm (from the database, kept for the dashboard and the digest)."""
    from leadheat.predict import team
    from leadheat.predict.alarm import save_check
    from leadheat.times import parse_duration

    with _one_line_errors():
        found = _recent_from_csv(model_path, from_csv, target)
        if found is None:
            lh = open_leadheat()
            info, report = team.drift(lh, parse_duration(window))
            save_check(lh, info.version, report, window)  # for the dashboard and the digest
            shown = f"the last {window}"
        else:
            report = assess(*found)
            shown = str(from_csv)
    if as_json:
        emit({"window": shown, **report.to_json()})
        return
    print_drift(report, shown)


@model_app.command("recalibrate")
def recalibrate(
    window: WindowOption = "90d",
    model_path: ModelFileOption = None,
    from_csv: RecentCsvOption = None,
    target: RecentTargetOption = None,
    model_out: Annotated[
        Path | None, typer.Option("--out", help="With --model: write the recalibrated model here.")
    ] = None,
) -> None:
    """Refit the calibration (Platt scaling) on the latest outcomes without retraining the
    model: for when the conversion rate moved but the ranking holds."""
    from leadheat.predict import team
    from leadheat.times import parse_duration

    with _one_line_errors():
        found = _recent_from_csv(model_path, from_csv, target)
        if found is None:
            if model_out is not None:
                raise typer.BadParameter("--out goes with --model")
            version, calibrator, rows = team.recalibrate(open_leadheat(), parse_duration(window))
            out.print(
                f"model version {version}: calibration refitted on {rows:,} outcomes from the "
                f"last {window} ({calibrator}); open leads rescored"
            )
            return
        if model_out is None:
            raise typer.BadParameter("--model needs --out MODEL")
        fresh = recalibrated(*found)
        fresh.save(model_out)
    out.print(
        f"calibration refitted on {len(found[2]):,} outcomes of {from_csv} "
        f"({fresh.calibrator}); model written to {model_out}"
    )
