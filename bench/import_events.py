"""How fast ``leadheat import events FILE.csv`` stores events, against what SQLite can do.

What is measured, in one run, on fresh SQLite files in a temporary folder:

1. **The machine limit**: plain ``sqlite3`` ``executemany`` of pre-built tuples into the very
   schema ``Leadheat.init()`` creates (the ``events`` table with its unique index on
   ``event_id``, its two time indexes and its foreign key to ``leads``), with leadheat's
   pragmas (WAL, ``synchronous=NORMAL``, foreign keys on), in one transaction, commit
   included. The leads the foreign key needs are inserted first, untimed. Nothing can store
   these rows faster from Python, so it is the yardstick.
2. **leadheat's import path**: what the command does, in process: open the database, read the
   playbook, ``parse_events`` on the CSV file (ids in the file), then
   ``Leadheat.record_events`` on the parsed rows, into a database where ``init()`` was done.
   "parse+store" times all of it; "store only" times ``record_events`` alone, which also
   creates the leads and folds every event into its lead's heat keys and state.
3. The ratio of each to the limit, against the goal: at least half the limit. Each path runs
   ``--repeat`` times (3) on fresh files and the best time counts: the machine is shared and
   single runs vary by a third. For context, the
   plainest possible file import (``csv.reader``, tuples, ``executemany``, no checks and no
   scoring) is timed on the same CSV file too.

Why: an import is a bulk path, and the style guide asks bulk paths to be vectorised. The ratio
says how much of the machine's speed leadheat's own work (validation, lead resolution,
scoring state) costs, independent of the machine the benchmark runs on.

The data are DERIVED from the real CDNOW purchase stream (69,659 purchases by 23,570
customers, 1997-01 to 1998-06): its rows are repeated with new event ids, each repetition
shifted by a whole number of data spans (546 days) and kept between 1997 and the present;
customer ``c`` in repetition ``r`` becomes lead ``f"{c}-{r % 4}"`` (about 94,000 leads). Every
event is a ``purchase`` with properties ``cds`` and ``dollars``.

**Issue 21's case** (``--new-leads``): a CRM export whose leads are all new. Customer ``c``
in repetition ``r`` becomes lead ``f"{c}-{r % 9}"`` (212,130 leads for a million events),
and ``leadheat import events``' own library call (``Leadheat.import_event_file``: open the
database, read the playbook, read and check the file a block at a time, create the leads and
identities, store the events, fold the states, commit) is timed against the same
``executemany`` of the same rows (the leads inserted first, untimed), in interleaved rounds.
With ``--postgres URL`` (or ``$LEADHEAT_BENCH_POSTGRES_URL``) the import runs on PostgreSQL
too, against a ``COPY`` of the same rows into the same table.

Run ``.venv/bin/python bench/import_events.py [--events N] [--profile] [--new-leads
[--postgres URL]]``; without ``../shared/data`` it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import json
import os
import platform
import pstats
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy
from rich.console import Console
from rich.table import Table

from leadheat.ingest.csv_files import parse_events
from leadheat.service import Leadheat
from leadheat.times import isoformat, to_micros

DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow_lifetimes" / "CDNOW_master.txt"
)
LABEL = "derived from CDNOW (real rows repeated with new ids and shifted timestamps)"
LEAD_VARIANTS = 4
"""Each CDNOW customer becomes up to 4 leads (23,570 x 4 = 94,280): a realistic lead count."""
NEW_LEAD_VARIANTS = 9
"""For the file import (issue 21's case, a CRM export of leads not yet known): each customer
becomes up to 9 leads, 212,130 for a million events, all created by the import."""
GOAL = 0.5
"""leadheat should store at least half as fast as a bare ``executemany``."""
LATEST = datetime(2025, 12, 31, tzinfo=UTC)

out = Console(highlight=False, width=120)


@dataclass(frozen=True, slots=True)
class Purchase:
    """One real CDNOW row: who, on which day, how many CDs, for how many dollars."""

    customer: str
    day: datetime
    cds: str
    dollars: str


@dataclass(frozen=True, slots=True)
class DerivedEvent:
    event_id: str
    lead: str
    at: datetime
    cds: str
    dollars: str

    def properties_json(self) -> str:
        """The ``properties`` column as leadheat writes it for this CSV row."""
        return json.dumps({"cds": self.cds, "dollars": self.dollars})


def read_cdnow(path: Path) -> list[Purchase]:
    """The CDNOW master file: ``customer_id YYYYMMDD number_of_cds dollar_value`` per line."""
    purchases = []
    with path.open(encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) != 4 or not fields[1].isdigit():
                continue  # the header
            customer, day, cds, dollars = fields
            at = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
            purchases.append(Purchase(customer, at, cds, dollars))
    return purchases


def derive(
    purchases: Sequence[Purchase], count: int, now: datetime, variants: int = LEAD_VARIANTS
) -> Iterator[DerivedEvent]:
    """``count`` events: the real rows again and again, each pass shifted by whole spans.

    The shift wraps around before a timestamp would pass the end of 2025 or ``now``, so every
    event lies between the first CDNOW day and today.
    """
    first = min(p.day for p in purchases)
    last = max(p.day for p in purchases)
    span = last - first + timedelta(days=1)
    shifts = (min(LATEST, now) - last) // span + 1
    if shifts < 1:
        raise SystemExit("the CDNOW span does not fit before today; check the clock")
    for index in range(count):
        passes, row = divmod(index, len(purchases))
        purchase = purchases[row]
        yield DerivedEvent(
            event_id=f"cdnow-{passes}-{row}",
            lead=f"{purchase.customer}-{passes % variants}",
            at=purchase.day + (passes % shifts) * span,
            cds=purchase.cds,
            dollars=purchase.dollars,
        )


def write_csv(path: Path, events: Sequence[DerivedEvent]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lead", "type", "timestamp", "cds", "dollars"])
        for event in events:
            writer.writerow(
                [
                    event.event_id,
                    event.lead,
                    "purchase",
                    isoformat(event.at),
                    event.cds,
                    event.dollars,
                ]
            )


def initialised(url: str) -> None:
    """A fresh database with leadheat's schema, indexes and first playbook."""
    lh = Leadheat(url)
    lh.init()
    lh.engine.dispose()


def connect(path: Path) -> sqlite3.Connection:
    """A plain connection with the pragmas leadheat's engine uses."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def with_leads(
    path: Path, events: Sequence[DerivedEvent]
) -> tuple[sqlite3.Connection, dict[str, int]]:
    """A fresh leadheat schema holding the events' leads (untimed: the references only time
    the events), and each lead's id."""
    initialised(f"sqlite:///{path}")
    lead_ids: dict[str, int] = {}
    for event in events:
        lead_ids.setdefault(event.lead, len(lead_ids) + 1)
    created = to_micros(datetime.now(UTC))
    connection = connect(path)
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO leads (id, external_id, attributes, created_at, updated_at) "
        "VALUES (?, ?, '{}', ?, ?)",
        [(i, lead, created, created) for lead, i in lead_ids.items()],
    )
    connection.execute("COMMIT")
    return connection, lead_ids


def insert_events(connection: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """The yardstick itself: one plain ``executemany`` in one transaction."""
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO events (event_id, lead_id, type, occurred_at, properties) VALUES (?,?,?,?,?)",
        rows,
    )
    connection.execute("COMMIT")


def machine_limit(path: Path, events: Sequence[DerivedEvent]) -> float:
    """Seconds to ``executemany`` the events as pre-built tuples, one transaction with commit."""
    connection, lead_ids = with_leads(path, events)
    rows = [
        (e.event_id, lead_ids[e.lead], "purchase", to_micros(e.at), e.properties_json())
        for e in events
    ]
    gc.collect()
    start = time.perf_counter()
    insert_events(connection, rows)
    seconds = time.perf_counter() - start
    stored = connection.execute("SELECT count(*) FROM events").fetchone()[0]
    connection.close()
    if stored != len(events):
        raise SystemExit(f"executemany stored {stored} events, expected {len(events)}")
    return seconds


def file_limit(path: Path, csv_path: Path, events: Sequence[DerivedEvent]) -> float:
    """Seconds for the plainest file import: ``csv.reader``, tuples, ``executemany``.

    No validation, no lead resolution beyond a dict, no scoring: the yardstick for leadheat's
    whole file path, as :func:`machine_limit` is for its store path.
    """
    connection, lead_ids = with_leads(path, events)
    gc.collect()
    epoch, micro = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
    start = time.perf_counter()
    with csv_path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [
            (
                event_id,
                lead_ids[lead],
                kind,
                (datetime.fromisoformat(stamp) - epoch) // micro,
                json.dumps({"cds": cds, "dollars": dollars}),
            )
            for event_id, lead, kind, stamp, cds, dollars in reader
        ]
    insert_events(connection, rows)
    seconds = time.perf_counter() - start
    connection.close()
    return seconds


@dataclass(frozen=True)
class ImportTimes:
    parse: float
    store: float
    stored: int
    leads_created: int
    total: float = 0.0


def leadheat_import(path: Path, csv_path: Path, expected: int) -> ImportTimes:
    """What ``leadheat --db URL import events FILE.csv`` does, timed in two parts."""
    url = f"sqlite:///{path}"
    initialised(url)
    gc.collect()
    start = time.perf_counter()
    lh = Leadheat(url)
    _, book = lh.playbook()
    parsed = parse_events(csv_path, lh.clock(), book.ingest.future_tolerance)
    parsed_at = time.perf_counter()
    if parsed.bad:
        raise SystemExit(f"{csv_path}: {len(parsed.bad)} bad rows, first: {parsed.bad[0]}")
    report = lh.record_events(parsed.batch, react=False)  # as the command: no --triggers
    done = time.perf_counter()
    lh.engine.dispose()
    if report.stored != expected:
        raise SystemExit(f"leadheat stored {report.stored} events, expected {expected}")
    return ImportTimes(
        parsed_at - start, done - parsed_at, report.stored, report.leads_created, done - start
    )


def file_import(path: Path, csv_path: Path, expected: int, url: str | None = None) -> float:
    """Seconds for what ``leadheat import events FILE.csv`` does once its modules are loaded:
    open the database, read the playbook, read, check and store the file, create its leads
    and fold their states, commit (``Leadheat.import_event_file``, as the command calls it)."""
    url = url or f"sqlite:///{path}"
    initialised(url)
    gc.collect()
    start = time.perf_counter()
    lh = Leadheat(url)
    report = lh.import_event_file(csv_path)
    seconds = time.perf_counter() - start
    lh.engine.dispose()
    if report.stored.stored != expected or not report.columnar:
        raise SystemExit(
            f"leadheat stored {report.stored.stored} events (expected {expected}), "
            f"read {'column by column' if report.columnar else 'row by row'}"
        )
    return seconds


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL to a fresh schema of the PostgreSQL database at ``url``, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_copy_limit(url: str, events: Sequence[DerivedEvent]) -> float:
    """Seconds to ``COPY`` the events, as pre-built tuples, into leadheat's ``events`` table
    on PostgreSQL (its leads inserted first, untimed), one transaction, commit included."""
    initialised(url)
    lead_ids: dict[str, int] = {}
    for event in events:
        lead_ids.setdefault(event.lead, len(lead_ids) + 1)
    created = to_micros(datetime.now(UTC))
    rows = [
        (e.event_id, lead_ids[e.lead], "purchase", to_micros(e.at), e.properties_json())
        for e in events
    ]
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY leads (id, external_id, attributes, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for lead, lead_id in lead_ids.items():
                copy.write_row((lead_id, lead, "{}", created, created))
        raw.commit()
        gc.collect()
        start = time.perf_counter()
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY events (event_id, lead_id, type, occurred_at, properties) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        raw.commit()
        seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


@dataclass
class NewLeadsTimes:
    """Issue 21's case, best of each: a file of events whose leads are all new."""

    events: int
    leads: int
    limit: float
    """sqlite3 ``executemany`` of the same rows (the leads already inserted)."""
    imported: float
    """``Leadheat.import_event_file`` of the file into a fresh database."""
    pg_copy: float | None = None
    pg_imported: float | None = None

    @property
    def ratio(self) -> float:
        return self.limit / self.imported


def measure_new_leads(
    root: Path, count: int, repeat: int, postgres: str | None = None
) -> NewLeadsTimes | None:
    """Interleaved rounds (the reference, then leadheat) on fresh databases; ``None`` without
    the CDNOW data."""
    if not DATA.is_file():
        return None
    events = list(derive(read_cdnow(DATA), count, datetime.now(UTC), NEW_LEAD_VARIANTS))
    leads = len({e.lead for e in events})
    csv_path = root / "new-leads.csv"
    write_csv(csv_path, events)
    limits, imports, copies, pg_imports = [], [], [], []
    for n in range(repeat):
        limits.append(machine_limit(root / f"new-limit{n}.db", events))
        imports.append(file_import(root / f"new-import{n}.db", csv_path, count))
        if postgres:
            with postgres_schema(postgres) as url:
                copies.append(postgres_copy_limit(url, events))
            with postgres_schema(postgres) as url:
                pg_imports.append(file_import(root / "unused", csv_path, count, url))
    return NewLeadsTimes(
        count,
        leads,
        min(limits),
        min(imports),
        min(copies) if copies else None,
        min(pg_imports) if pg_imports else None,
    )


def new_leads_table(times: NewLeadsTimes, repeat: int) -> Table:
    table = Table(
        title=f"import events FILE: {times.events:,} events of {times.leads:,} leads not yet "
        f"known, {LABEL}; best of {repeat} interleaved runs",
        title_justify="left",
        caption=f"goal: leadheat at least {GOAL:.0%} of the executemany limit (SQLite)",
        caption_justify="left",
    )
    for name in ("path", "what is timed", "seconds", "events/s", "ratio"):
        table.add_column(name, justify="left" if name in ("path", "what is timed") else "right")
    count = times.events
    table.add_row(
        "sqlite3 executemany (limit)",
        "pre-built tuples into events, leads there",
        f"{times.limit:.2f}",
        rate(count, times.limit),
        "1.00",
    )
    table.add_row(
        "leadheat import events",
        "import_event_file: read, check, create leads, store, fold",
        f"{times.imported:.2f}",
        rate(count, times.imported),
        f"{times.ratio:.2f}",
    )
    if times.pg_copy is not None and times.pg_imported is not None:
        table.add_row(
            "PostgreSQL COPY (limit)",
            "pre-built tuples into events, leads there",
            f"{times.pg_copy:.2f}",
            rate(count, times.pg_copy),
            "1.00",
        )
        table.add_row(
            "leadheat import events (PostgreSQL)",
            "import_event_file, as on SQLite",
            f"{times.pg_imported:.2f}",
            rate(count, times.pg_imported),
            f"{times.pg_copy / times.pg_imported:.2f}",
        )
    return table


def profile_import(path: Path, csv_path: Path, top: int = 30) -> None:
    """cProfile of parse and store, the functions with the most time of their own first."""
    url = f"sqlite:///{path}"
    initialised(url)
    lh = Leadheat(url)
    _, book = lh.playbook()
    profiler = cProfile.Profile()
    profiler.enable()
    parsed = parse_events(csv_path, lh.clock(), book.ingest.future_tolerance)
    lh.record_events(parsed.batch, react=False)
    profiler.disable()
    lh.engine.dispose()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}"


def report(
    count: int,
    limit_s: float,
    file_s: float,
    times: ImportTimes,
    wall: dict[str, float],
    repeat: int,
) -> None:
    limit_rate = count / limit_s
    table = Table(
        title=f"Importing {count:,} events, {LABEL}; best of {repeat} runs each",
        title_justify="left",
        caption=f"goal: leadheat at least {GOAL:.0%} of the executemany limit",
        caption_justify="left",
    )
    for name in ("path", "what is timed", "seconds", "events/s", "of limit", "goal"):
        table.add_column(name, justify="left" if name in ("path", "what is timed") else "right")
    table.add_row(
        "sqlite3 executemany (limit)",
        "pre-built tuples, 1 transaction, commit",
        f"{limit_s:.2f}",
        rate(count, limit_s),
        "1.00",
        "",
    )
    for name, timed, seconds in (
        ("leadheat import: parse+store", "parse_events + record_events", times.total),
        ("leadheat import: store only", "record_events on parsed rows", times.store),
    ):
        ratio = count / seconds / limit_rate
        table.add_row(
            name,
            timed,
            f"{seconds:.2f}",
            rate(count, seconds),
            f"{ratio:.2f}",
            "met" if ratio >= GOAL else "NOT met",
        )
    table.add_row(
        "(csv.reader + executemany)",
        "the same file, no checks, no scoring",
        f"{file_s:.2f}",
        rate(count, file_s),
        f"{count / file_s / limit_rate:.2f}",
        "",
    )
    table.add_row(
        "(leadheat parse only)",
        "parse_events",
        f"{times.parse:.2f}",
        rate(count, times.parse),
        "",
        "",
    )
    out.print(table)
    out.print(
        f"leadheat stored {times.stored:,} events and created {times.leads_created:,} leads; "
        "executemany inserted the same rows into the same schema"
    )
    out.print("wall times: " + ", ".join(f"{k} {v:.1f}s" for k, v in wall.items()))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="how many events (N)")
    parser.add_argument("--data", type=Path, default=DATA, help="CDNOW_master.txt")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each path; the best time is reported"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile leadheat's import path"
    )
    parser.add_argument(
        "--new-leads",
        action="store_true",
        help="time issue 21's case instead: the file import of events whose leads are all new",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LEADHEAT_BENCH_POSTGRES_URL"),
        help="with --new-leads, also on this PostgreSQL database (a schema of its own, "
        "dropped after) against COPY; default $LEADHEAT_BENCH_POSTGRES_URL",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")
    out.print("command: " + " ".join([sys.executable, *sys.argv]))
    out.print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"SQLAlchemy {sqlalchemy.__version__}, {platform.platform()}"
    )
    if not args.data.is_file():
        out.print(
            f"{args.data} is absent: this benchmark needs the shared CDNOW data "
            "(../shared/data/cdnow_lifetimes/CDNOW_master.txt); nothing was measured, exiting 0."
        )
        return
    if args.new_leads:
        with tempfile.TemporaryDirectory(prefix="leadheat-bench-") as folder:
            measured = measure_new_leads(Path(folder), args.events, args.repeat, args.postgres)
        assert measured is not None
        out.print(new_leads_table(measured, args.repeat))
        return
    began = time.perf_counter()
    wall: dict[str, float] = {}
    purchases = read_cdnow(args.data)
    events = list(derive(purchases, args.events, datetime.now(UTC)))
    count = len(events)
    out.print(
        f"N = {count:,} events {LABEL}: {len(purchases):,} real rows, "
        f"{len({e.lead for e in events}):,} leads, "
        f"{min(e.at for e in events).date()} to {max(e.at for e in events).date()}"
    )
    with tempfile.TemporaryDirectory(prefix="leadheat-bench-") as folder:
        root = Path(folder)
        out.print(f"databases and CSV in {root}")
        csv_path = root / "events.csv"
        write_csv(csv_path, events)
        wall["data"] = time.perf_counter() - began
        mark = time.perf_counter()
        limit_s = min(machine_limit(root / f"limit{n}.db", events) for n in range(args.repeat))
        file_s = min(file_limit(root / f"file{n}.db", csv_path, events) for n in range(args.repeat))
        wall["reference phase"] = time.perf_counter() - mark
        # leadheat's import runs in a process holding only its own objects, as the CLI does:
        # a million benchmark objects alive would slow its garbage collections.
        del events
        mark = time.perf_counter()
        runs = [
            leadheat_import(root / f"import{n}.db", csv_path, count) for n in range(args.repeat)
        ]
        best = min(runs, key=lambda r: r.parse + r.store)
        times = ImportTimes(
            best.parse,
            min(r.store for r in runs),
            best.stored,
            best.leads_created,
            total=best.parse + best.store,
        )
        wall["leadheat phase"] = time.perf_counter() - mark
        wall["total"] = time.perf_counter() - began
        report(count, limit_s, file_s, times, wall, args.repeat)
        if args.profile:
            out.print(f"\ncProfile of leadheat's import path, {count:,} events:")
            profile_import(root / "profile.db", csv_path)


if __name__ == "__main__":
    main()
