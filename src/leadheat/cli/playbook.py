"""``leadheat playbook``: read, check and apply the team's playbook. A playbook is checked
in full (its syntax and where its webhooks may go) before anything is stored."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from leadheat.cli.options import JsonOption
from leadheat.cli.output import emit, listing, out
from leadheat.cli.reps import adopt_unowned
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.delivery.egress import Egress
from leadheat.playbook import fallback_notes, parse_playbook, signal_name_notes
from leadheat.service import LeadheatError
from leadheat.times import isoformat

playbook_app = typer.Typer(help="Read, check and apply the team's playbook.", no_args_is_help=True)


@playbook_app.command("show")
def playbook_show(as_json: JsonOption = False) -> None:
    """Print the current playbook (TOML), or its settings as JSON."""
    lh = open_leadheat()
    version, book = lh.playbook()
    if as_json:
        emit({"version": version, "playbook": book.summary()})
    else:
        # raw, unwrapped: `playbook show > mine.toml` must give a loadable file
        sys.stdout.write(f"# playbook version {version}\n{lh.playbook_source()}")


@playbook_app.command("check")
def playbook_check(file: Path) -> None:
    """Validate a playbook file; errors name the key and the line."""
    source = _read(file)
    Egress.from_environment().check_playbook(parse_playbook(source, str(file)), source, str(file))
    out.print(f"{file}: ok")
    _notes(source)


@playbook_app.command("apply")
def playbook_apply(file: Path) -> None:
    """Make FILE the next playbook version; every lead is re-scored by it."""
    source = _read(file)
    book = parse_playbook(source, str(file))
    egress = Egress.from_environment()
    egress.check_playbook(book, source, str(file))
    lh = open_leadheat()
    version = lh.apply_playbook(source, actor=ACTOR, egress=egress)
    out.print(f"playbook version {version} applied; all leads re-scored")
    _notes(source)
    adopt_unowned(lh)


def _notes(source: str) -> None:
    """Say which left-out sections fall back to the built-in defaults, and what that drops."""
    for note in [*signal_name_notes(source), *fallback_notes(source)]:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)


@playbook_app.command("history")
def playbook_history(as_json: JsonOption = False) -> None:
    """Every playbook version, oldest first."""
    rows = open_leadheat().playbook_history()
    data: list[dict[str, Any]] = [
        {"version": v, "name": n, "applied_at": isoformat(a), "sha256": h} for v, n, a, h in rows
    ]
    listing(
        data,
        as_json,
        ("version", "name", "applied at", "sha256"),
        lambda item: (
            str(item["version"]),
            item["name"],
            item["applied_at"],
            item["sha256"][:12],
        ),
    )


def _read(file: Path) -> str:
    try:
        return file.read_text("utf-8")
    except FileNotFoundError:
        raise LeadheatError(f"{file}: no such file") from None
    except UnicodeDecodeError as error:
        raise LeadheatError(f"{file}: not valid UTF-8 at byte {error.start}") from None
