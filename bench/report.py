"""How long ``leadheat report`` takes at a million leads (issue 21: at most 30 s).

Builds a SQLite database the way a team with a big CRM export would fill one: events from a
generated CSV file through ``leadheat import events``' own library call
(``Leadheat.import_event_file``: leads and identities created, events stored, states
folded), leads arriving over 120 days and heavier lately, a third of them at company domains
(so accounts form), page views some of them on the pricing page (a property rule); then, each
through leadheat's bulk writes, a title for a tenth (qualified by the default playbook's
fit) with BANT evidence, some of it stale, touches for a fifth by five reps, wins for a
fiftieth and losses for another; then the kept follow-up state brought current (what the
worker does in the background). Then it times ``build_report`` as ``leadheat report`` calls
it, whole (wall and CPU time), and each of its parts, on the same database.

With ``--replay`` it also times the replay of every lead's history the report used before
(decisions, heat trend, account breakdowns) and checks both give the same numbers: at small
sizes only (about 0.3 ms a lead).

``python bench/report.py --leads 1000000 --db /tmp/report-1m.db`` builds once and keeps the
file, so a second run only times; ``make bench`` runs it at 20,000 leads with ``--replay``
(``bench/run.py``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from leadheat.analytics import breakdowns
from leadheat.analytics.accounts import account_breakdowns
from leadheat.analytics.columns import decision_rows, load_columns, snapshots_at
from leadheat.analytics.decisions import DEFAULT_HORIZON, enrolled
from leadheat.analytics.pipeline import funnel, sla_by_rep, trend_instants
from leadheat.analytics.report import follow_ups
from leadheat.bulk import paused_gc
from leadheat.identity import LeadKey
from leadheat.ingest.records import EvidenceInput, OutcomeInput, TouchInput
from leadheat.service import Leadheat, LeadInput
from leadheat.times import isoformat

out = Console(highlight=False, width=160)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ("page_view", "email_click", "product_view", "form_submit", "demo_request", "reply")
SHARES = (0.45, 0.2, 0.2, 0.08, 0.04, 0.03)
REPS = ("anna@x.com", "ben@x.com", "cleo@x.com", "dan@x.com", "eve@x.com")
BATCH = 100_000
GOAL_S = 30.0
GOAL_LEADS = 1_000_000


@dataclass
class Row:
    measure: str
    wall_s: float
    cpu_s: float | None = None
    note: str = ""


def email(i: int) -> str:
    """Lead ``i``'s address: a third at one of ``i // 3 % 50,000`` company domains."""
    return f"p{i}@co{i // 3 % 50_000}.com" if i % 3 == 0 else f"p{i}@gmail.com"


def write_events(path: Path, leads: int, events: int) -> None:
    """The CSV file: every lead at least one event, over the last 120 days, heavier lately."""
    rng = np.random.default_rng(21)
    lead_of = rng.integers(0, leads, events)
    lead_of[:leads] = np.arange(leads)
    age_s = (rng.beta(1.0, 3.0, events) * 120 * 86_400).astype(np.int64)
    kinds = rng.choice(len(TYPES), events, p=SHARES)
    pricing = rng.random(events) < 0.2
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lead", "type", "timestamp", "url"])
        for i in range(events):
            kind = TYPES[kinds[i]]
            url = ("/pricing" if pricing[i] else "/blog") if kind == "page_view" else ""
            at = NOW - timedelta(seconds=int(age_s[i]))
            writer.writerow([f"e{i}", email(int(lead_of[i])), kind, isoformat(at), url])


def build(lh: Leadheat, folder: Path, leads: int, events: int) -> list[Row]:
    """Fill the database; the time of each step."""
    from leadheat.engage.followup import keep_current

    rows = []
    csv_path = folder / "events.csv"
    began = time.perf_counter()
    write_events(csv_path, leads, events)
    rows.append(Row(f"build: write the CSV file ({events:,} events)", since(began)))
    began = time.perf_counter()
    report = lh.import_event_file(csv_path)
    csv_path.unlink()
    rows.append(Row(f"build: import_event_file ({report.read:,} rows read)", since(began)))
    rng = np.random.default_rng(22)
    picked = rng.permutation(leads)
    said = picked[: leads // 10].tolist()
    began = time.perf_counter()
    for start in range(0, len(said), BATCH):
        lh.upsert_leads(
            [LeadInput([LeadKey("email", email(i))], {"title": "VP Sales", "source": "ads"})
             for i in said[start : start + BATCH]],
            react=False,
        )  # fmt: skip
    stated = rng.integers(1, 60, len(said)).tolist()
    facts = [
        EvidenceInput(LeadKey("email", email(i)), kind, "yes", NOW - timedelta(days=d))
        for i, d in zip(said, stated, strict=True)
        for kind in ("need", "budget", "timeline")
    ]
    for start in range(0, len(facts), BATCH):
        lh.record_evidence(facts[start : start + BATCH], react=False)
    touched = picked[leads // 20 : leads // 20 + leads // 5].tolist()
    hours = rng.integers(1, 24 * 60, len(touched)).tolist()
    touches = [
        TouchInput(LeadKey("email", email(i)), "call", NOW - timedelta(hours=h),
                   rep=REPS[i % len(REPS)])
        for i, h in zip(touched, hours, strict=True)
    ]  # fmt: skip
    for start in range(0, len(touches), BATCH):
        lh.record_touches(touches[start : start + BATCH])
    closed = picked[-(leads // 25) :].tolist()
    lh.record_outcomes(
        [
            OutcomeInput(LeadKey("email", email(i)), "won" if n % 2 else "lost",
                         NOW - timedelta(days=1 + n % 30))
            for n, i in enumerate(closed)
        ]
    )  # fmt: skip
    rows.append(
        Row(f"build: titles and evidence for {len(said):,}, touches for {len(touched):,}, "
            f"outcomes for {len(closed):,}", since(began))
    )  # fmt: skip
    began = time.perf_counter()
    keep_current(lh)
    rows.append(Row("build: follow-up state brought current (the worker's backfill)", since(began)))
    return rows


def warm() -> None:
    """Load the compiled fold and sums as ``leadheat report`` does once per process (numba's
    disk cache), by calling them on nothing."""
    from leadheat.analytics.columns import kernels

    fold, fsum = kernels()
    ints, floats = np.zeros(1, np.int64), np.zeros(0, np.float64)
    nothing = np.zeros(0, np.int64)
    fold(ints, nothing, floats, np.zeros(0, np.intp), nothing, np.zeros(0, bool),
         np.zeros(0, bool), np.zeros(0, np.intp), nothing, 1.0, 2.0)  # fmt: skip
    fsum(floats, ints)


def since(began: float) -> float:
    return time.perf_counter() - began


def timed(measure: str, work: Callable[[], Any], note: str = "") -> tuple[Row, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return Row(measure, since(wall), time.process_time() - cpu, note), result


def parts(lh: Leadheat, until: datetime) -> list[Row]:
    """Each part of ``build_report``, in its order, on the same database (the cycle
    collector paused as the report pauses it)."""
    _, book = lh.playbook()
    rows = []
    rows.append(timed("  follow-ups per owner (kept state)", lambda: follow_ups(lh, until))[0])
    with paused_gc():
        rows.extend(report_parts(lh, book, until))
    return rows


def report_parts(lh: Leadheat, book: Any, until: datetime) -> list[Row]:
    rows = []  # the parts after the follow-ups, in build_report's order
    with lh.engine.connect() as connection:
        row, columns = timed("  read leads, events, evidence, outcomes, touches as columns",
                             lambda: load_columns(connection, book, until))  # fmt: skip
        rows.append(row)
        row, decided = timed(
            "  every lead at its first touch (decision_rows)",
            lambda: decision_rows(columns, book, DEFAULT_HORIZON, None),
        )
        rows.append(row)
        row, sequences = timed("  nurture enrollments", lambda: enrolled(connection, until))
        rows.append(row)
        rows.append(timed("  SLA per rep", lambda: sla_by_rep(connection, until, None))[0])
        rows.append(
            timed("  account breakdowns",
                  lambda: account_breakdowns(connection, book, decided, columns))[0]
        )  # fmt: skip
    start = min(r.created_at for r in decided)
    instants = trend_instants(start, until, 8)
    rows.append(
        timed("  heat trend, 8 instants", lambda: snapshots_at(columns, book, None, instants))[0]
    )
    rows.append(
        timed("  breakdowns and funnel over the decisions", lambda: (
            breakdowns.by_temperature(decided), breakdowns.by_grade(decided),
            breakdowns.by_first_touch_delay(decided), breakdowns.by_lead_age(decided),
            breakdowns.decay_curve(decided, until), breakdowns.by_source(decided),
            breakdowns.by_campaign(decided), breakdowns.by_rep(decided),
            breakdowns.by_sequence(decided, sequences), funnel(decided),
        ))[0]
    )  # fmt: skip
    return rows


def replayed(lh: Leadheat, until: datetime) -> tuple[Row, Any]:
    """What the report computed before, by replaying every lead's history."""
    from leadheat.analytics.accounts import Members, account_decisions
    from leadheat.analytics.decisions import load_story
    from leadheat.analytics.pipeline import snapshots

    _, book = lh.playbook()

    def work() -> Any:
        with lh.engine.connect() as connection:
            story = load_story(connection, until)
            decided = story.decisions(book)
            accounts = account_decisions(Members(connection), book, decided)
        start = min(r.created_at for r in decided)
        trend = snapshots(story.leads, book, trend_instants(start, until, 8))
        return decided, accounts, trend

    return timed("before: replay (decisions, accounts, trend)", work)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=GOAL_LEADS)
    parser.add_argument("--events", type=int, help="default: five per lead")
    parser.add_argument("--db", type=Path, help="keep the database here (reused if present)")
    parser.add_argument("--runs", type=int, default=1, help="time the whole report this often")
    parser.add_argument("--replay", action="store_true", help="time and check the old replay")
    args = parser.parse_args(argv)
    events = args.events or 5 * args.leads
    out.print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    out.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )
    from leadheat.analytics.report import build_report

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="leadheat-report-") as folder:
        path = args.db or Path(folder) / "report.db"
        until = NOW + timedelta(hours=1)
        lh = Leadheat(f"sqlite:///{path}", clock=lambda: until)
        if not path.exists():
            lh.init()
            rows.extend(build(lh, Path(folder), args.leads, events))
        with lh.engine.connect() as connection:
            counted = [
                connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
                for table in ("leads", "events", "account_members", "touches", "evidence")
            ]
        data = (
            f"{counted[0]:,} leads, {counted[1]:,} events, {counted[2]:,} account members, "
            f"{counted[3]:,} touches, {counted[4]:,} BANT facts"
        )
        out.print(f"database: {data}; load average {os.getloadavg()[0]:.2f}")
        rows.append(timed("first use in a process: the compiled fold loaded", warm)[0])
        whole = []
        for _ in range(args.runs):
            row, report = timed(
                "leadheat report, whole (build_report)", lambda: build_report(lh, until=until)
            )
            whole.append(row)
        best = min(whole, key=lambda r: r.wall_s)
        goal = GOAL_S * counted[0] / GOAL_LEADS
        best.note = f"goal {GOAL_S:.0f} s at {GOAL_LEADS:,} leads ({goal:.1f} s at this size): " + (
            "met" if best.wall_s <= goal else "NOT met"
        )
        rows.append(best)
        rows.extend(parts(lh, until))
        if args.replay:
            from leadheat.analytics.accounts import folded_account_decisions

            row, (decided, accounts, trend) = replayed(lh, until)
            _, book = lh.playbook()
            with lh.engine.connect() as connection:
                columns = load_columns(connection, book, until)
                same = report.decisions == decided and report.heat_trend == trend
                same = same and accounts == folded_account_decisions(
                    connection, columns, book, report.decisions
                )
            row.note = f"same numbers: {'yes' if same else 'NO'}"
            rows.append(row)
            if not same:
                raise SystemExit("the report's fast path and the replay differ")
        lh.engine.dispose()
    table = Table(title=f"leadheat report ({data})", title_justify="left")
    for name in ("measure", "wall", "CPU", "note"):
        table.add_column(name, justify="right" if name in ("wall", "CPU") else "left")
    for r in rows:
        cpu = "" if r.cpu_s is None else f"{r.cpu_s:,.2f} s"
        table.add_row(r.measure, f"{r.wall_s:,.2f} s", cpu, r.note)
    out.print(table)
    out.print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return rows


if __name__ == "__main__":
    main()
