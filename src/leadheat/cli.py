"""The ``leadheat`` command: a thin shell over :class:`leadheat.service.Leadheat`.

Every read command takes ``--json`` for scripts; every error is one line that says what
was wrong and where, with exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from leadheat.analytics import cli as analytics_cli
from leadheat.delivery.egress import Egress
from leadheat.identity import LeadKeyError
from leadheat.ingest.csv_files import (
    BadRow,
    CsvImportError,
    Parsed,
    parse_events,
    parse_leads,
    parse_mapping,
    parse_outcomes,
    parse_touches,
    write_bad_rows,
)
from leadheat.playbook import PlaybookError, parse_playbook
from leadheat.predict.cli import model_app
from leadheat.predict.model import ModelFileError
from leadheat.predict.table import TableError
from leadheat.service import Leadheat, LeadheatError, LeadInput, LeadRow
from leadheat.settings import Settings
from leadheat.spark.cli import rescore_command
from leadheat.store.keys import normalise_origin
from leadheat.times import TimeFormatError, format_duration, isoformat, parse_instant
from leadheat.views import (
    audit_json,
    clock_json,
    delivery_json,
    rep_json,
    row_json,
    suggestion_json,
    timing_json,
    view_json,
)
from leadheat.web.cli import users_app

app = typer.Typer(
    help="leadheat: which leads are hot right now, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
playbook_app = typer.Typer(help="Read, check and apply the team's playbook.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import leads, events, touches and outcomes from CSV.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys for machines: create, list, revoke.", no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
app.add_typer(model_app, name="model")
reps_app = typer.Typer(
    help="Sales reps who own leads: add, list, pause, resume.", no_args_is_help=True
)
app.add_typer(reps_app, name="reps")
deliveries_app = typer.Typer(
    help="Notifications: what was sent, what waits, what failed; retry; the signing secret.",
    invoke_without_command=True,
)
app.add_typer(deliveries_app, name="deliveries")
merges_app = typer.Typer(
    help="Merges public collection suggested (two known leads it named as one person): list, "
    "confirm, dismiss.",
    invoke_without_command=True,
)
app.add_typer(merges_app, name="merges")
app.command("report")(analytics_cli.report)
app.command("backtest")(analytics_cli.backtest)
app.command("expect")(analytics_cli.expect)
app.add_typer(users_app, name="users")
app.command("rescore")(rescore_command)

out = Console(highlight=False, markup=False, soft_wrap=True)  # data may contain [brackets]
err = Console(stderr=True, highlight=False, soft_wrap=True)
T = TypeVar("T")
ACTOR = "cli"
"""Who the audit log says acted, for every change made by a command."""


class _State:
    url: str = Settings().database_url
    opened: list[Leadheat] = []  # noqa: RUF012  (one per command, closed when it ends)


def _open() -> Leadheat:
    lh = Leadheat(_State.url)
    _State.opened.append(lh)
    return lh


def _close_all() -> None:
    while _State.opened:
        _State.opened.pop().close()


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
    _State.url = db or Settings().database_url
    ctx.call_on_close(_close_all)


def _at(text: str | None) -> datetime | None:
    return None if text is None else parse_instant(text)


def _emit(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


Item = dict[str, Any]


def _listing(
    data: Sequence[Item],
    as_json: bool,
    headers: Sequence[str],
    cells: Callable[[Item], Sequence[str]],
) -> None:
    """A list as JSON for scripts, or as a table of ``cells(item)`` under ``headers``."""
    if as_json:
        _emit(data)
        return
    table = Table(*headers)
    for item in data:
        table.add_row(*cells(item))
    out.print(table)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}s"


AtOption = Annotated[
    str | None,
    typer.Option("--at", help="A past or present time (ISO 8601 with offset, or epoch seconds)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, help="At most N leads.")]
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


# -- set-up -------------------------------------------------------------------------------
@app.command()
def init(
    playbook: Annotated[
        Path | None, typer.Option("--playbook", help="Start with this playbook.")
    ] = None,
) -> None:
    """Create the database (or upgrade it) with the default or a given playbook."""
    source = playbook.read_text("utf-8") if playbook is not None else None
    if source is not None:
        book = parse_playbook(source, str(playbook))
        Egress.from_environment().check_playbook(book, source, str(playbook))
    version = _open().init(source)
    out.print(f"database ready at {_State.url} (playbook version {version})")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same leads.")] = 7,
    leads: Annotated[int, typer.Option(min=10, help="How many leads.")] = 400,
) -> None:
    """Load a reproducible, SYNTHETIC demo population (a shoe shop and a SaaS trial funnel)."""
    from leadheat.demo import SYNTHETIC_NOTE, load_demo

    lh = _open()
    lh.init()
    summary = load_demo(lh, seed=seed, leads=leads)
    out.print(SYNTHETIC_NOTE)
    out.print(
        f"loaded {summary.leads} leads, {summary.events} events, {summary.touches} touches, "
        f"{summary.outcomes} outcomes, {summary.evidence} evidence facts"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also run the notification worker in this process (default: yes).",
        ),
    ] = True,
) -> None:
    """Serve the HTTP API (REST under /api/v1, Segment-compatible /v1, docs at /docs)."""
    import uvicorn

    from leadheat.api import create_app

    lh = _open()
    settings = Settings(database_url=_State.url)
    application = create_app(settings, lh=lh, worker=worker)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    out.print(
        f"leadheat serving {_State.url} at http://{shown}:{port}  (API docs: /docs)"
        + ("" if worker else "  [no worker: run `leadheat worker`]")
    )
    # uvicorn believes X-Forwarded-For from loopback unless told otherwise: only from the
    # proxies the operator names (LEADHEAT_TRUSTED_PROXIES)
    trusted = settings.trusted_proxies.strip()
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Do what is due now, then exit (for cron and tests).")
    ] = False,
    poll: Annotated[
        float | None,
        typer.Option(
            "--poll", min=0.05, help="Seconds between looks (default LEADHEAT_WORKER_POLL)."
        ),
    ] = None,
) -> None:
    """Send alerts from the outbox (with retries) and escalate SLA breaches.

    Any number of workers may run against one PostgreSQL database.
    """
    import signal
    import threading

    from leadheat.delivery.worker import Worker

    lh = _open()
    lh.playbook()
    settings = Settings(database_url=_State.url)
    if poll is not None:
        settings = settings.model_copy(update={"worker_poll": poll})
    runner = Worker(lh, settings)
    try:
        if once:
            report = runner.run_once()
            out.print(
                f"escalated {report.escalated}, delivered {report.delivered}, "
                f"retrying {report.retrying}, failed {report.failed}"
            )
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        err.print(f"leadheat worker on {_State.url} (Ctrl-C to stop)")
        with suppress(KeyboardInterrupt):
            runner.run(stop)
    finally:
        runner.close()


# -- API keys ------------------------------------------------------------------------------
def _origins(values: list[str] | None) -> list[str]:
    """``--origin`` values as browsers send them, or a usage error naming the bad one."""
    try:
        return [normalise_origin(v) for v in values or []]
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@keys_app.command("create")
def keys_create(
    name: str,
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="ingest (collection only), read or admin; repeatable."),
    ],
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="A publishable key for web pages (with --scope ingest alone): it only "
            "collects, and may not change what trusted sources set (SECURITY.md).",
        ),
    ] = False,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            callback=_origins,
            help="A web origin (scheme://host[:port], e.g. https://www.acme.com) a public "
            "key is accepted from; repeatable. Browsers on any other origin are refused.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    if public and set(scope) != {"ingest"}:
        raise typer.BadParameter(
            f"a public key only collects: give --scope ingest alone (not {', '.join(scope)})",
            param_hint="'--public'",
        )
    if origin and not public:
        raise typer.BadParameter(
            "origins are for public keys: add --public", param_hint="'--origin'"
        )
    key, info = _open().create_key(name, scope, public=public, origins=origin or [], actor=ACTOR)
    if as_json:
        _emit(
            {
                "key": key,
                "prefix": info.prefix,
                "name": info.name,
                "scopes": sorted(info.scopes),
                "public": info.public,
                "origins": list(info.origins),
            }
        )
        return
    out.print(key)
    kind = "public key" if info.public else "key"
    err.print(
        f"{kind} {info.prefix} ({', '.join(sorted(info.scopes))}) for {name!r}: store it now, "
        "it is not shown again"
    )
    if info.public and not info.origins:
        err.print(
            "no --origin: browsers (requests with an Origin header) are refused with this key"
        )


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """Every key (never the secret): prefix, name, scopes, public or secret and its origins,
    created and revoked."""
    keys = _open().keys()
    data: list[dict[str, Any]] = [
        {
            "prefix": k.prefix,
            "name": k.name,
            "scopes": sorted(k.scopes),
            "public": k.public,
            "origins": list(k.origins),
            "created_at": isoformat(k.created_at),
            "revoked_at": isoformat(k.revoked_at),
        }
        for k in keys
    ]
    _listing(
        data,
        as_json,
        ("prefix", "name", "scopes", "kind", "origins", "created", "revoked"),
        lambda item: (
            item["prefix"],
            item["name"],
            ",".join(item["scopes"]),
            "public" if item["public"] else "secret",
            " ".join(item["origins"]),
            item["created_at"],
            item["revoked_at"] or "",
        ),
    )


@keys_app.command("revoke")
def keys_revoke(prefix_or_name: str) -> None:
    """Revoke keys by prefix (the 8 characters after lh_) or by name."""
    count = _open().revoke_key(prefix_or_name, actor=ACTOR)
    if not count:
        raise LeadheatError(f"no active key with prefix or name {prefix_or_name!r}")
    out.print(f"revoked {count} key(s)")


# -- playbook ----------------------------------------------------------------------------
@playbook_app.command("show")
def playbook_show(as_json: JsonOption = False) -> None:
    """Print the current playbook (TOML), or its settings as JSON."""
    lh = _open()
    version, book = lh.playbook()
    if as_json:
        _emit({"version": version, "playbook": book.summary()})
    else:
        # raw, unwrapped: `playbook show > mine.toml` must give a loadable file
        sys.stdout.write(f"# playbook version {version}\n{lh.playbook_source()}")


@playbook_app.command("check")
def playbook_check(file: Path) -> None:
    """Validate a playbook file; errors name the key and the line."""
    source = _read(file)
    Egress.from_environment().check_playbook(parse_playbook(source, str(file)), source, str(file))
    out.print(f"{file}: ok")


@playbook_app.command("apply")
def playbook_apply(file: Path) -> None:
    """Make FILE the next playbook version; every lead is re-scored by it."""
    source = _read(file)
    book = parse_playbook(source, str(file))
    egress = Egress.from_environment()
    egress.check_playbook(book, source, str(file))
    version = _open().apply_playbook(source, actor=ACTOR, egress=egress)
    out.print(f"playbook version {version} applied; all leads re-scored")


@playbook_app.command("history")
def playbook_history(as_json: JsonOption = False) -> None:
    """Every playbook version, oldest first."""
    rows = _open().playbook_history()
    data: list[dict[str, Any]] = [
        {"version": v, "name": n, "applied_at": isoformat(a), "sha256": h} for v, n, a, h in rows
    ]
    _listing(
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


# -- imports -----------------------------------------------------------------------------
@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int], None]]:
    size = path.stat().st_size if path.exists() else 0
    with Progress(
        TextColumn("reading {task.description}"),
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
    lh = _open()
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


@import_app.command("events")
def import_events(
    file: Path, skip_bad: SkipBadOption = None, triggers: TriggersOption = False
) -> None:
    """Import events: lead, type, timestamp, optional id; other columns are properties."""
    lh = _open()
    _, book = lh.playbook()
    with _progress(file) as progress:
        now = lh.clock()
        oldest = book.ingest.oldest(now)
        parsed = parse_events(file, now, book.ingest.future_tolerance, progress, oldest)
    _set_aside(file, parsed.bad, skip_bad)
    report = lh.record_events(parsed.batch, react=triggers)
    _summary(
        parsed.read,
        report.stored,
        report.duplicates,
        len(parsed.bad),
        f"new leads {report.leads_created}",
    )


@import_app.command("touches")
def import_touches(file: Path, skip_bad: SkipBadOption = None) -> None:
    """Import touches: lead, kind, timestamp, optional direction, result, rep, note."""
    lh = _open()
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
    lh = _open()
    _, book = lh.playbook()
    now = lh.clock()
    parsed = parse_outcomes(file, now, book.ingest.future_tolerance, oldest=book.ingest.oldest(now))
    _unknown_leads(lh, parsed, skip_bad, file)
    rows = _settle(file, parsed, skip_bad)
    stored, duplicates = lh.record_outcomes(rows, actor=ACTOR)
    _summary(parsed.read, stored, duplicates, len(parsed.bad))


# -- recording one thing -----------------------------------------------------------------
@app.command()
def track(
    lead: str,
    event_type: Annotated[str, typer.Argument(metavar="TYPE")],
    at: AtOption = None,
    prop: Annotated[
        list[str] | None, typer.Option("--prop", help="An event property k=v (repeatable).")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="Event id (for idempotency).")
    ] = None,
) -> None:
    """Record an event for a lead (created if unknown)."""
    properties = {}
    for item in prop or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LeadheatError(f"--prop {item!r} must look like name=value")
        properties[name] = value
    report = _open().track(lead, event_type, _at(at), properties or None, event_id)
    out.print("stored" if report.stored else "duplicate: already stored")


@app.command()
def touch(
    lead: str,
    kind: str,
    at: AtOption = None,
    direction: Annotated[str, typer.Option(help="inbound or outbound")] = "outbound",
    result: Annotated[str | None, typer.Option(help="e.g. connected, voicemail")] = None,
    rep: Annotated[str | None, typer.Option(help="Who made the contact.")] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
) -> None:
    """Record a contact by the team (call, email, sms, meeting)."""
    _open().touch(lead, kind, _at(at), direction=direction, result=result, rep=rep, note=note)
    out.print("touch recorded")


@app.command()
def outcome(
    lead: str,
    result: Annotated[str, typer.Argument(metavar="won|lost|disqualified")],
    at: AtOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, in a few words.")] = None,
) -> None:
    """Record the outcome of a lead."""
    _open().outcome(lead, result, _at(at), reason, actor=ACTOR)
    out.print(f"outcome {result} recorded")


@app.command()
def evidence(
    lead: str,
    kind: Annotated[str, typer.Argument(metavar="need|budget|timeline|authority")],
    value: str,
    at: AtOption = None,
) -> None:
    """Record BANT evidence stated by the lead at a time (default now)."""
    _open().evidence(lead, kind, value, _at(at))
    out.print(f"{kind} evidence recorded")


@app.command()
def merge(keep: str, absorb: str) -> None:
    """Merge lead ABSORB into KEEP: one person, one history."""
    _open().merge(keep, absorb, actor=ACTOR)
    out.print(f"{absorb} merged into {keep}")


@merges_app.callback()
def merges(
    ctx: typer.Context,
    suggested: Annotated[
        bool, typer.Option("--suggested", help="Only the open ones: those waiting for a person.")
    ] = False,
    lead: Annotated[str | None, typer.Option("--lead", help="Only those naming this lead.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List suggested merges, newest first: the lead that would go, the one it would join,
    why, who suggested it, and what became of it."""
    if ctx.invoked_subcommand is not None:
        return
    found = _open().suggested_merges(status="open" if suggested else None, lead=lead, limit=limit)
    _listing(
        [suggestion_json(item) for item in found],
        as_json,
        ("id", "created", "lead", "into", "status", "source", "reason"),
        lambda item: (
            str(item["id"]),
            item["created_at"],
            str(item["lead_id"]),
            str(item["into_lead_id"]),
            item["status"] + (f" by {item['resolved_by']}" if item["resolved_by"] else ""),
            item["source"],
            item["reason"],
        ),
    )


@merges_app.command("confirm")
def merges_confirm(suggestion_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Merge the suggestion's lead into the other, as suggested (audited)."""
    kept = _open().confirm_merge(suggestion_id, actor=ACTOR)
    out.print(f"suggested merge {suggestion_id} confirmed: the leads are one, lead {kept}")


@merges_app.command("dismiss")
def merges_dismiss(suggestion_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Close the suggestion without merging: two people after all (audited)."""
    _open().dismiss_merge(suggestion_id, actor=ACTOR)
    out.print(f"suggested merge {suggestion_id} dismissed")


# -- reading -----------------------------------------------------------------------------
def _print_rows(rows: Sequence[LeadRow], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("lead", "name", "company", "heat", "grade", "temp", "status", "why"):
        table.add_column(name, justify="right" if name == "heat" else "left")
    for row in rows:
        table.add_row(
            row.email or row.external_id or str(row.lead_id),
            row.name or "",
            row.company or "",
            f"{row.heat:.1f}",
            row.grade,
            row.temperature.value,
            row.status,
            row.reason,
        )
    out.print(table)


@app.command()
def hot(at: AtOption = None, limit: LimitOption = None, as_json: JsonOption = False) -> None:
    """Hot leads, hottest first."""
    rows = _open().hot(_at(at), limit)
    if as_json:
        _emit([row_json(r) for r in rows])
    else:
        _print_rows(rows, f"{len(rows)} hot leads" + (f" at {at}" if at else ""))


@app.command()
def leads(
    temperature: Annotated[
        str | None, typer.Option(help="Only leads of this temperature: hot, warm or cold.")
    ] = None,
    at: AtOption = None,
    limit: LimitOption = None,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="heat (hottest first), fit, or probability (the model's, highest first).",
        ),
    ] = "heat",
    as_json: JsonOption = False,
) -> None:
    """Leads, hottest first (or best fit, or most likely to convert)."""
    if temperature is not None and temperature not in ("hot", "warm", "cold"):
        raise LeadheatError(f"--temperature {temperature!r} must be hot, warm or cold")
    lh = _open()
    if order == "heat":
        rows = lh.leads(temperature, _at(at), limit)
    else:
        rows, _ = lh.browse(
            temperature=temperature, order=order, at=_at(at), limit=limit or 1_000_000_000
        )
    if as_json:
        _emit([row_json(r) for r in rows])
    else:
        _print_rows(rows, f"{len(rows)} leads")


@app.command()
def show(lead: str, at: AtOption = None, as_json: JsonOption = False) -> None:
    """One lead's score, explained: heat by signal, fit, evidence, when it cools."""
    lh = _open()
    view = lh.show(lead, _at(at))
    _, book = lh.playbook()
    data = view_json(view, book.fit.qualified_at)
    if as_json:
        _emit(data)
        return
    who = data["lead"]
    name = " ".join(str(who[k]) for k in ("email", "external_id", "name", "company") if who[k])
    out.print(name, style="bold")
    out.print(
        f"{data['temperature'].upper()} {data['grade']}  heat {data['heat']:.2f}"
        f"  fit {data['fit']:g}  qualified {'yes' if data['qualified'] else 'no'}"
        f"  status {data['status']}"
    )
    out.print(f"why: {data['explanation']['temperature']}")
    if data["hot_until"]:
        out.print(f"hot until {data['hot_until']}")
    if data["warm_until"]:
        out.print(f"warm until {data['warm_until']}")
    table = Table(
        "signal", "events", "heat now", "last", title="heat by signal", title_justify="left"
    )
    for signal in data["explanation"]["heat"]:
        table.add_row(
            signal["type"], str(signal["events"]), f"{signal['heat']:.2f}", signal["last_at"]
        )
    out.print(table)
    fit = data["explanation"]["fit"]
    for rule in fit["matched"]:
        out.print(f"  + {rule['points']:g}  {rule['rule']}")
    for rule in fit["missed"]:
        out.print(
            f"  . {rule['points']:g}  {rule['rule']}" + ("  (missing)" if rule["missing"] else "")
        )
    for rule in fit["disqualified_by"]:
        out.print(f"  x disqualified: {rule}")
    for kind, status in data["evidence"].items():
        out.print(
            f"  {kind}: {status['state']}" + (f" ({status['value']})" if status["value"] else "")
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
    from leadheat.predict.cli import print_evaluation

    info, _, _ = _current_model(_open())
    if as_json:
        _emit(
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

    lh = _open()
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
        _emit(data)
        return
    out.print(f"{lead}: probability {why.probability:.1%} (model version {version})")
    for word, factors in (("raises it", why.raising), ("lowers it", why.lowering)):
        for factor in factors:
            out.print(f"  {word}: {factor}")


@model_app.command("score")
def model_score() -> None:
    """Store every open lead's probability as of now (run after big imports, or daily)."""
    from leadheat.predict import team

    count = team.score_leads(_open())
    out.print(f"scored {count} open leads")


# -- speed to lead ------------------------------------------------------------------------
@reps_app.command("add")
def reps_add(
    email: str,
    name: Annotated[str | None, typer.Option("--name", help="Shown in alerts.")] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="A team of [speed.teams] (default team if not).")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option("--capacity", min=0, help="Most open hot leads at once.")
    ] = None,
    weight: Annotated[
        float, typer.Option("--weight", min=0.01, help="Round-robin share (2 = twice the leads).")
    ] = 1.0,
) -> None:
    """Add a rep (or update one): they join round robin level with the others."""
    rep = _open().add_rep(
        email, name=name, team=team, capacity=capacity, weight=weight, actor=ACTOR
    )
    out.print(f"rep {rep.email} in team {rep.team}" + ("" if rep.active else " (paused)"))


@reps_app.command("list")
def reps_list(as_json: JsonOption = False) -> None:
    """Every rep: team, active or paused, capacity, weight, leads assigned, open hot leads."""
    found = _open().reps()
    _listing(
        [rep_json(rep, count) for rep, count in found],
        as_json,
        ("email", "name", "team", "active", "open hot", "capacity", "weight", "assigned"),
        lambda item: (
            item["email"],
            item["name"] or "",
            item["team"],
            "yes" if item["active"] else "paused",
            str(item["open_hot"]),
            "" if item["capacity"] is None else str(item["capacity"]),
            f"{item['weight']:g}",
            str(item["assigned"]),
        ),
    )


@reps_app.command("pause")
def reps_pause(email: str) -> None:
    """Stop giving a rep new leads (holiday, full pipeline); they keep the ones they have."""
    rep = _open().set_rep_active(email, False, actor=ACTOR)
    out.print(f"paused {rep.email}")


@reps_app.command("resume")
def reps_resume(email: str) -> None:
    """Give a paused rep new leads again."""
    rep = _open().set_rep_active(email, True, actor=ACTOR)
    out.print(f"resumed {rep.email}")


@deliveries_app.callback()
def deliveries(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or failed.")
    ] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Only this lead's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List notifications, newest first: channel, trigger, status, attempts, last error."""
    if ctx.invoked_subcommand is not None:
        return
    found = _open().deliveries(status=status, lead=lead, limit=limit)
    _listing(
        [delivery_json(item) for item in found],
        as_json,
        ("id", "created", "trigger", "channel", "target", "lead", "status", "tries", "error"),
        lambda item: (
            str(item["id"]),
            item["created_at"],
            item["trigger"],
            item["channel"],
            item["target"],
            item["lead"]["email"] or str(item["lead"]["id"]),
            item["status"],
            str(item["attempts"]),
            (item["last_error"] or "")[:60],
        ),
    )


@deliveries_app.command("retry")
def deliveries_retry(delivery_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Send a failed notification again (the worker picks it up at once)."""
    _open().retry_delivery(delivery_id, actor=ACTOR)
    out.print(f"notification {delivery_id} will be sent again")


@deliveries_app.command("secret")
def deliveries_secret() -> None:
    """Print the database's webhook signing secret (when LEADHEAT_WEBHOOK_SECRET is unset)."""
    out.print(_open().signing_secret())


@app.command()
def sla(
    lead: Annotated[str | None, typer.Option("--lead", help="Only this lead's clocks.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this rep's clocks.")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only clocks still running (no touch yet).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    by_rep: Annotated[
        bool, typer.Option("--by-rep", help="Per rep: met, missed, breached, median response.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="With --by-rep: clocks started since then.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """SLA clocks: trigger, owner, deadline, time to first touch, met or breached."""
    lh = _open()
    now = lh.clock()
    if by_rep:
        _listing(
            [timing_json(t) for t in lh.sla_by_rep(_at(since))],
            as_json,
            ("owner", "clocks", "met", "missed", "breached", "running", "median response"),
            lambda item: (
                item["owner"] or "(nobody)",
                *(str(item[k]) for k in ("clocks", "met", "missed", "breached", "running")),
                _seconds(item["median_response_seconds"]),
            ),
        )
        return
    clocks = lh.sla_clocks(lead=lead, owner=owner, open_only=open_only, limit=limit)
    _listing(
        [clock_json(clock, now) for clock in clocks],
        as_json,
        ("lead", "trigger", "owner", "started", "deadline", "response", "state"),
        lambda item: (
            str(item["lead"]),
            item["trigger"],
            item["owner"] or "(nobody)",
            item["started_at"],
            item["deadline"],
            _seconds(item["response_seconds"]),
            item["state"],
        ),
    )


# -- people's data and the audit log -------------------------------------------------------
@app.command("export")
def export_lead(
    lead: str,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the JSON to FILE (created readable by its owner only), not stdout."
        ),
    ] = None,
) -> None:
    """Everything stored about a person, as JSON: to answer a request for their data."""
    data = _open().export(lead, actor=ACTOR)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    descriptor = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    rows = sum(len(found) for found in data["tables"].values())
    err.print(f"wrote {rows} rows about lead {data['lead']} to {out_file}")


@app.command()
def erase(
    lead: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Erase without asking (needed when not at a terminal).")
    ] = False,
) -> None:
    """Remove a person and everything about them, for good (right to erasure)."""
    if not yes:
        if not sys.stdin.isatty():
            raise LeadheatError(
                f"erasing {lead!r} cannot be undone: add --yes to confirm (no terminal to ask)"
            )
        typer.confirm(
            f"Erase {lead} and everything stored about them? This cannot be undone", abort=True
        )
    erased = _open().erase(lead, actor=ACTOR)
    removed = ", ".join(f"{table} {count}" for table, count in erased.removed.items() if count)
    out.print(f"erased lead {erased.lead_id}: {removed}")


@app.command("audit")
def audit_log(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. lead.erase.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Who changed what, and when: playbooks, outcomes, owners, keys, reps, erasures."""
    _listing(
        [audit_json(entry) for entry in _open().audit_log(limit=limit, action=action)],
        as_json,
        ("at", "actor", "action", "subject", "detail"),
        lambda item: (
            item["at"],
            item["actor"],
            item["action"],
            item["subject"],
            json.dumps(item["detail"], separators=(", ", ": ")),
        ),
    )


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

# Follow-ups, nurture, recovery and win-back live in their own module; registered last, as
# they build on the helpers above.
from leadheat.engage.cli import register as _register_engagement  # noqa: E402

_register_engagement(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app and turn expected errors into one clear line (exit 1).

    Usage errors are Typer's own (exit 2).
    """
    try:
        app(args=list(argv) if argv is not None else None)
    except ERRORS as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
