"""The ``leadheat`` app: its ``--db`` option, every command and group registered in the order
``--help`` lists them, and :func:`main`, which turns expected errors into one line.

The commands live one module per group beside this one; they share :mod:`.options`,
:mod:`.output` and :mod:`.state`, and only this module knows them all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.markup import escape

from leadheat.cli.accounts import account_command, accounts_command
from leadheat.cli.analytics import backtest, expect, report
from leadheat.cli.deliveries import deliveries_app
from leadheat.cli.engage import (
    recover_command,
    sequences_app,
    tasks_command,
    unsubscribe_command,
    winback_command,
)
from leadheat.cli.imports import import_app
from leadheat.cli.keys import keys_app
from leadheat.cli.leads import hot, leads, show
from leadheat.cli.merges import merge, merges_app
from leadheat.cli.model import model_app
from leadheat.cli.output import err
from leadheat.cli.playbook import playbook_app
from leadheat.cli.privacy import audit_log, erase, export_lead
from leadheat.cli.record import evidence, outcome, touch, track
from leadheat.cli.reps import assign, reps_app
from leadheat.cli.rescore import rescore_command
from leadheat.cli.serve import serve, worker
from leadheat.cli.setup import demo, init
from leadheat.cli.sla import sla
from leadheat.cli.state import close_all, use_database
from leadheat.cli.users import users_app
from leadheat.identity import LeadKeyError
from leadheat.ingest.csv_files import CsvImportError
from leadheat.playbook import PlaybookError
from leadheat.predict.model import ModelFileError
from leadheat.predict.table import TableError
from leadheat.service import LeadheatError
from leadheat.settings import Settings
from leadheat.times import TimeFormatError

app = typer.Typer(
    help="leadheat: which leads are hot right now, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="SQLAlchemy database URL (default: $LEADHEAT_DATABASE_URL or sqlite:///leadheat.db).",
        ),
    ] = None,
) -> None:
    use_database(db or Settings().database_url)
    ctx.call_on_close(close_all)


app.add_typer(playbook_app, name="playbook")
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
app.add_typer(model_app, name="model")
app.add_typer(reps_app, name="reps")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(merges_app, name="merges")
app.add_typer(users_app, name="users")
app.add_typer(sequences_app, name="sequences")

app.command("report")(report)
app.command("backtest")(backtest)
app.command("expect")(expect)
app.command("rescore")(rescore_command)
app.command("init")(init)
app.command("demo")(demo)
app.command("serve")(serve)
app.command("worker")(worker)
app.command("track")(track)
app.command("touch")(touch)
app.command("outcome")(outcome)
app.command("evidence")(evidence)
app.command("merge")(merge)
app.command("hot")(hot)
app.command("leads")(leads)
app.command("show")(show)
app.command("accounts")(accounts_command)
app.command("account")(account_command)
app.command("sla")(sla)
app.command("assign")(assign)
app.command("export")(export_lead)
app.command("erase")(erase)
app.command("audit")(audit_log)
app.command("tasks")(tasks_command)
app.command("recover")(recover_command)
app.command("winback")(winback_command)
app.command("unsubscribe")(unsubscribe_command)

ERRORS = (
    LeadheatError,
    TableError,
    ModelFileError,
    CsvImportError,
    PlaybookError,
    TimeFormatError,
    LeadKeyError,
    FileNotFoundError,
)
"""The errors a command may end with that :func:`main` prints as one line (exit status 1)."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app and turn expected errors into one clear line (exit 1).

    Usage errors are Typer's own (exit 2).
    """
    try:
        app(args=list(argv) if argv is not None else None)
    except ERRORS as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
