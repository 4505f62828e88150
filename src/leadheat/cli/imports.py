"""``leadheat import``: leads, events, touches and outcomes from CSV. A file with bad rows is
refused whole, or its good rows stored and the bad ones set aside with ``--skip-bad``: never
a silent partial import."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from leadheat.cli.output import err, out
from leadheat.cli.reps import adopt_unowned
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.ingest.csv_files import (
    BadRow,
    CsvImportError,
    Parsed,
    parse_leads,
    parse_mapping,
    parse_outcomes,
    parse_touches,
    write_bad_rows,
)
from leadheat.playbook import Playbook, unscored_types
from leadheat.service import Leadheat, LeadheatError, LeadInput

import_app = typer.Typer(
    help="Import leads, events, touches and outcomes from CSV.", no_args_is_help=True
)
T = TypeVar("T")

TriggersOption = Annotated[
    bool,
    typer.Option(
        "--triggers/--no-triggers",
        help="Fire speed-to-lead triggers (alerts, SLA clocks) for what the file changes; "
        "off by default: imports are usually history.",
    ),
]
SkipBadOption = Annotated[
    Path | None,
    typer.Option("--skip-bad", help="Store the good rows; write bad rows with reasons to FILE."),
]


@contextmanager
def _progress(path: Path, verb: str = "reading") -> Iterator[Callable[[int], None]]:
    size = path.stat().st_size if path.exists() else 0
    with Progress(
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=size < 5_000_000 or not err.is_terminal,
    ) as progress:
        task = progress.add_task(path.name, total=size or 1)
        yield lambda done: progress.update(task, completed=done)


def _settle(path: Path, parsed: Parsed[T], skip_bad: Path | None) -> list[T]:
    """Stop on bad rows, or set them aside when asked; never a silent partial import."""
    _set_aside(path, parsed.bad, skip_bad)
    return parsed.rows


def _set_aside(path: Path, bad: list[BadRow], skip_bad: Path | None) -> None:
    if bad:
        if skip_bad is None:
            raise CsvImportError(path, bad)
        write_bad_rows(skip_bad, bad)
        err.print(f"{len(bad)} bad rows written to {skip_bad}")


def _unknown_leads(lh: Leadheat, parsed: Parsed[Any], skip_bad: Path | None, path: Path) -> None:
    """Touches and outcomes need leads that exist: unknown ones are bad rows."""
    known = lh.known_leads([row.lead for row in parsed.rows])
    kept, lines = [], []
    for row, line in zip(parsed.rows, parsed.lines, strict=True):
        if row.lead in known:
            kept.append(row)
            lines.append(line)
        else:
            parsed.bad.append(BadRow(line, "lead", f"no lead known as {str(row.lead)!r}"))
    parsed.rows, parsed.lines = kept, lines
    parsed.bad.sort(key=lambda b: b.line)


def _summary(read: int, stored: int, duplicates: int, bad: int, extra: str = "") -> None:
    out.print(
        f"rows read {read}, stored {stored}, duplicates {duplicates}, bad {bad}"
        + (f", {extra}" if extra else "")
    )


@import_app.command("leads")
def import_leads(
    file: Path,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help='Rename a column: "CSV column=field" (repeatable).'),
    ] = None,
    skip_bad: SkipBadOption = None,
    triggers: TriggersOption = False,
) -> None:
    """Create or update leads; columns become fields and attributes."""
    lh = open_leadheat()
    lh.playbook()
    with _progress(file) as progress:
        parsed = parse_leads(file, parse_mapping(map_ or []), progress)
    rows = _settle(file, parsed, skip_bad)
    report = lh.upsert_leads(
        [LeadInput(r.keys, r.fields, r.created_at) for r in rows], react=triggers, actor=ACTOR
    )
    _summary(
        parsed.read,
        report.created + report.updated,
        0,
        len(parsed.bad),
        f"created {report.created}, updated {report.updated}",
    )
    adopt_unowned(lh)


def unscored(book: Playbook, types: Iterable[str]) -> list[str]:
    """One line per event type the playbook has no ``[signals.*]`` for, most events first:
    the count, and the scored type it may be a typo of. Such events are stored at 0 points,
    so a misspelt type would otherwise cool every lead that sent it without a word.

    >>> from leadheat.playbook import parse_playbook
    >>> book = parse_playbook("[signals.demo_request]\\npoints = 25\\n")
    >>> for line in unscored(book, ["demo_requets", "demo_request", "webinar", "webinar"]):
    ...     print(line)
    webinar: 2 events
    demo_requets: 1 event (did you mean demo_request?)
    """
    return [str(found) for found in unscored_types(book, Counter(types))]


def unscored_counts(book: Playbook, types: Counter[str]) -> list[str]:
    """:func:`unscored` of event types counted already."""
    return [str(found) for found in unscored_types(book, types)]


@import_app.command("events")
def import_events(
    file: Path,
    skip_bad: SkipBadOption = None,
    triggers: TriggersOption = False,
    strict_types: Annotated[
        bool,
        typer.Option(
            "--strict-types",
            help="Refuse the file (nothing stored) when any event type is not scored by "
            "the playbook.",
        ),
    ] = False,
) -> None:
    """Import events: lead, type, timestamp, optional id; other columns are properties."""
    lh = open_leadheat()
    _, book = lh.playbook()

    def check_types(types: Counter[str]) -> None:
        lines = unscored_counts(book, types)
        if lines and strict_types:
            raise LeadheatError(
                f"{file}: event types the playbook does not score (--strict-types; nothing "
                f"stored): {'; '.join(lines)}"
            )

    with _progress(file, "storing") as progress:
        report = lh.import_event_file(
            file,
            react=triggers,
            set_aside=None if skip_bad is None else lambda bad: _set_aside(file, bad, skip_bad),
            check_types=check_types,
            progress=progress,
        )
    _summary(
        report.read,
        report.stored.stored,
        report.stored.duplicates,
        len(report.bad),
        f"new leads {report.stored.leads_created}",
    )
    lines = unscored_counts(book, report.types)
    if lines:
        out.print("event types the playbook does not score (stored at 0 points):")
        for line in lines:
            out.print(f"  {line}", highlight=False)
    adopt_unowned(lh)


@import_app.command("touches")
def import_touches(file: Path, skip_bad: SkipBadOption = None) -> None:
    """Import touches: lead, kind, timestamp, optional direction, result, rep, note."""
    lh = open_leadheat()
    _, book = lh.playbook()
    now = lh.clock()
    parsed = parse_touches(file, now, book.ingest.future_tolerance, oldest=book.ingest.oldest(now))
    _unknown_leads(lh, parsed, skip_bad, file)
    rows = _settle(file, parsed, skip_bad)
    stored, duplicates = lh.record_touches(rows)
    _summary(parsed.read, stored, duplicates, len(parsed.bad))


@import_app.command("outcomes")
def import_outcomes(file: Path, skip_bad: SkipBadOption = None) -> None:
    """Import outcomes: lead, outcome (won|lost|disqualified), timestamp, optional reason."""
    lh = open_leadheat()
    _, book = lh.playbook()
    now = lh.clock()
    parsed = parse_outcomes(file, now, book.ingest.future_tolerance, oldest=book.ingest.oldest(now))
    _unknown_leads(lh, parsed, skip_bad, file)
    rows = _settle(file, parsed, skip_bad)
    stored, duplicates = lh.record_outcomes(rows, actor=ACTOR)
    _summary(parsed.read, stored, duplicates, len(parsed.bad))
