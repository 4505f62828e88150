"""``leadheat model``: train a conversion model on a CSV file, predict for another.

A thin shell over :func:`~leadheat.predict.model.train_model` and
:class:`~leadheat.predict.model.TabularModel`; every error is one line naming the file, line
and column, with exit status 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from leadheat.predict.model import ModelFileError, TabularModel, train_model
from leadheat.predict.table import TableError, append_column, read_table

PROBABILITY = "probability"

model_app = typer.Typer(
    help="Predict conversion from your own CSV data: train a model, then score new rows.",
    no_args_is_help=True,
)
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except (TableError, ModelFileError) as error:
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
        Path,
        typer.Option(
            "--from-csv", help="Past leads with their outcome, one per row, oldest first."
        ),
    ],
    target: Annotated[
        str, typer.Option("--target", help="The outcome column: 0/1, yes/no, won/lost.")
    ],
    model_path: Annotated[Path, typer.Option("--out", help="Write the model file here.")],
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop",
            help="Leave this column out, e.g. one filled in after the outcome; repeatable.",
        ),
    ] = None,
) -> None:
    """Train a calibrated conversion model (LightGBM) on a CSV file and store it."""
    with _one_line_errors():
        table = read_table(from_csv)
        model = train_model(table, target, drop or ())
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
    out.print(f"model written to {model_path}")


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
