"""The ``leadheat`` app: its ``--db`` option, every command and group registered in the order
``--help`` lists them, and :func:`main`, which turns expected errors into one line.

The commands live one module per group beside this one; they share :mod:`.options`,
:mod:`.output` and :mod:`.state`, and only this module knows them all. It knows them by name
(:data:`COMMANDS`, :data:`GROUPS`) and imports a group's module only when its command runs
(or ``--help`` lists it): ``leadheat show`` loads what showing a lead needs, not the web
dashboard, the model trainer or matplotlib (see docs/performance.md, "CLI start").
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from leadheat.cli.output import err
from leadheat.cli.state import close_all, environment_url, use_database

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("report", "analytics", "report"),
    ("backtest", "analytics", "backtest"),
    ("expect", "analytics", "expect"),
    ("rescore", "rescore", "rescore_command"),
    ("init", "setup", "init"),
    ("demo", "setup", "demo"),
    ("serve", "serve", "serve"),
    ("worker", "serve", "worker"),
    ("keeper", "serve", "keeper"),
    ("track", "record", "track"),
    ("touch", "record", "touch"),
    ("outcome", "record", "outcome"),
    ("evidence", "record", "evidence"),
    ("merge", "merges", "merge"),
    ("hot", "leads", "hot"),
    ("leads", "leads", "leads"),
    ("show", "leads", "show"),
    ("accounts", "accounts", "accounts_command"),
    ("account", "accounts", "account_command"),
    ("sla", "sla", "sla"),
    ("assign", "reps", "assign"),
    ("export", "privacy", "export_lead"),
    ("erase", "privacy", "erase"),
    ("audit", "privacy", "audit_log"),
    ("tasks", "engage", "tasks_command"),
    ("recover", "engage", "recover_command"),
    ("winback", "engage", "winback_command"),
    ("unsubscribe", "engage", "unsubscribe_command"),
)
"""Each command: its name, the module of this package that defines it, the function."""
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("playbook", "playbook", "playbook_app"),
    ("keys", "keys", "keys_app"),
    ("import", "imports", "import_app"),
    ("model", "model", "model_app"),
    ("reps", "reps", "reps_app"),
    ("deliveries", "deliveries", "deliveries_app"),
    ("merges", "merges", "merges_app"),
    ("users", "users", "users_app"),
    ("sequences", "engage", "sequences_app"),
)
"""Each group of commands (``leadheat playbook apply``…): its name, module and Typer app."""


Command = Any
"""A click command as Typer builds it (Typer carries its own copy of click, private)."""


class _Commands(MutableMapping[str, Command]):
    """The app's commands by name, each built (its module imported) when first looked up;
    iterating names them all in order without building any."""

    def __init__(self, build: Mapping[str, tuple[bool, str, str]]) -> None:
        self._build = dict(build)
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            group, module, attribute = self._build[name]
            found = getattr(importlib.import_module(f"leadheat.cli.{module}"), attribute)
            self._built[name] = (
                get_group_from_info(
                    TyperInfo(found, name=name),
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode,
                    suggest_commands=app.suggest_commands,
                )
                if group
                else get_command_from_info(
                    CommandInfo(name=name, callback=found),
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode,
                )
            )
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._build.setdefault(name, (False, "", ""))
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._build[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._build)

    def __len__(self) -> int:
        return len(self._build)


class _LazyGroup(TyperGroup):
    """The root group, whose commands are :class:`_Commands`: a command's module is imported
    when it runs, or when ``--help`` describes it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.commands = _Commands(
            {name: (False, module, function) for name, module, function in COMMANDS}
            | {name: (True, module, typer_app) for name, module, typer_app in GROUPS}
        )

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    cls=_LazyGroup,
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
    use_database(db or environment_url())
    ctx.call_on_close(close_all)


EXPECTED = (
    ("leadheat.errors", "LeadheatError"),
    ("leadheat.predict.table", "TableError"),
    ("leadheat.predict.model", "ModelFileError"),
    ("leadheat.ingest.csv_files", "CsvImportError"),
    ("leadheat.playbook", "PlaybookError"),
    ("leadheat.times", "TimeFormatError"),
    ("leadheat.identity", "LeadKeyError"),
)
"""The errors a command may end with that :func:`main` prints as one line (exit status 1),
besides :class:`FileNotFoundError`: by module and name, so that checking one imports nothing
(an error whose module was never imported cannot have been raised)."""


def errors() -> tuple[type[Exception], ...]:
    """The classes of :data:`EXPECTED` (importing their modules), and FileNotFoundError."""
    return (
        *(getattr(importlib.import_module(module), name) for module, name in EXPECTED),
        FileNotFoundError,
    )


def expected(error: BaseException) -> bool:
    """Whether ``error`` is one of :data:`EXPECTED` (or a missing file), importing nothing."""
    if isinstance(error, FileNotFoundError):
        return True
    return any(
        module in sys.modules and isinstance(error, getattr(sys.modules[module], name))
        for module, name in EXPECTED
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app and turn expected errors into one clear line (exit 1).

    Usage errors are Typer's own (exit 2).
    """
    try:
        app(args=list(argv) if argv is not None else None)
    except Exception as error:
        if not expected(error):
            raise
        from rich.markup import escape

        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
