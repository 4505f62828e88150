"""``make bench``: one table, each row a ratio measured in this run against a reference.

Rows (data labelled in the table):

1. **bulk import**: ``Leadheat.record_events`` (store only) against a plain sqlite3
   ``executemany`` of the same rows into the same table (``bench/import_events.py``); and
   **import 1M events / 200k new leads vs executemany**: ``leadheat import events``' library
   call on a CSV file whose 212,130 leads are all new (read, check, create leads, store,
   fold, commit) against the same ``executemany`` (``bench/import_events.py --new-leads``),
   and on PostgreSQL against ``COPY`` when ``$LEADHEAT_BENCH_POSTGRES_URL`` is set.
2. **re-scoring** every lead from history after a playbook change: leadheat's kernel
   (``SignalTable.fold``, compiled by numba: points and half-lives by type, exact heat keys,
   last engagement, churn, first event, counts) against a bare NumPy kernel over the same
   arrays (heat at one ``now`` only, one ``bincount``) and against a pandas group-by
   computing the same outputs (context: a pandas group-by of heat at one ``now`` only). The
   kernel's first call in the process (numba loading it from its cache, or compiling it) is
   timed on its own and shown as a context row; the rounds compared come after it. Context:
   the same fold called as the store calls it (``fold_activity``, a value per event: property
   rules can give two events of one type different points), which is what a playbook apply
   and a Spark partition pay per event. Context:
   the same through the database (``Leadheat.apply_playbook`` over the import's database)
   against importing it.
3. **hot now**: the top 50 hot leads among 1,000,000 (p50 of repeated calls) against
   scoring every lead (one SQL scan of every key and its facts, heat vectorised, top 50 by
   ``argpartition``); both must name the same 50 leads. Then the same with a negative signal
   (``careers_view``, -10 points, half-life 2 days) seen by a tenth of the leads: the index
   is read by the positive keys and each row read is lowered by its negative keys.
3b. **hot accounts**: the top 50 hot accounts among 100,000 (of three leads each; p50 of
   repeated calls, what ``leadheat accounts --temperature hot`` and the Accounts page ask)
   against scoring every account's stored key; both must name the same 50.
4. **HTTP batched ingestion**: ``POST /v1/batch`` of 100 Segment ``track`` calls against
   one ``leadheat serve`` on SQLite (``bench/ingest_http.py``), as a share of row 1's
   in-process rate, with the server's own CPU (events per server CPU-second: its capacity
   with the load generator and other jobs taken away); and against ``leadheat serve
   --workers 2`` on PostgreSQL when ``LEADHEAT_BENCH_POSTGRES_URL`` is set.
5. **follow-up views**: ``GET /api/v1/tasks?limit=50`` and ``/api/v1/recover?limit=50`` from
   the kept follow-up state against replaying every lead's history, and the report's
   follow-ups table (``bench/followup.py``; 20,000 leads and 100,000 events here, the
   acceptance size with ``python bench/followup.py``).
5b. **leadheat report**: the whole report (``build_report``) on 20,000 leads and 100,000
   events imported from a CSV file, against the replay of every lead's history it used
   before, checked equal (``bench/report.py``; a million leads with ``python
   bench/report.py``).
6. **predictive model**: ``train_model`` and ``predict_proba`` rows/s on the UCI online
   shoppers table against a default LightGBM on the same table.
7. **CLI start**: ``leadheat show LEAD`` on a one-lead database, a new process each time
   (median wall ms), against a bare ``python -c pass`` in the same rounds
   (``bench/cli_start.py``).

Run ``.venv/bin/python bench/run.py [--quick]``; ``--quick`` shrinks every size for a smoke
test. Without ``../shared/data`` the rows that need it say so.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_start
import followup
import import_events
import ingest_http
import report
from leadheat.playbook import Playbook
from leadheat.service import Leadheat
from leadheat.store.ranking import hot_leads
from leadheat.times import to_micros

out = Console(highlight=False, width=160)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
RESCORE_TYPES = ("purchase", "product_view", "email_click", "add_to_cart", "demo_request")
"""The event types of the derived re-scoring stream: CDNOW purchases, each repetition of
the data given another (rule-free) type of the default playbook."""
NEW_PLAYBOOK_POINTS = {"purchase": 25, "product_view": 2, "email_click": 4, "add_to_cart": 9}


@dataclass
class Row:
    measure: str
    data: str
    result: str
    reference: str
    ratio: float | None
    goal: str
    met: bool | None


def best(seconds: Callable[[], float], repeat: int) -> float:
    return min(seconds() for _ in range(repeat))


def best_interleaved(works: list[Callable[[], object]], repeat: int) -> list[float]:
    """The best time of each work over ``repeat`` rounds, each round running every work once
    in turn: on a shared machine a burst of someone else's load then hits all of them alike,
    not the one that happened to run during it."""
    times = [float("inf")] * len(works)
    for _ in range(repeat):
        for index, work in enumerate(works):
            times[index] = min(times[index], timed(work))
    return times


def median_call(work: Callable[[], object], calls: int) -> float:
    """The median wall time of ``calls`` calls of ``work``, in seconds (a read's p50)."""
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        work()
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies)


def timed(work: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _without(measure: str, data: str) -> str:
    """A follow-up row's measure without its data, which has a column of its own."""
    return measure.replace(f" ({data})", "").replace(f"{data}; ", "")


def bench_followup(leads: int, events: int) -> list[Row]:
    found = followup.main(["--leads", str(leads), "--events", str(events), "--calls", "11"])
    data = f"{leads:,} leads, {events:,} events"
    return [
        Row(_without(r.measure, data), data, r.result, r.reference, r.ratio, r.goal, r.met)
        for r in found
    ]


def bench_report(leads: int) -> Row:
    """``leadheat report`` whole at a small size, against the replay it replaced (checked
    equal); ``python bench/report.py`` times it at a million leads."""
    found = {r.measure: r for r in report.main(["--leads", str(leads), "--replay"])}
    whole = next(r for name, r in found.items() if name.startswith("leadheat report"))
    replay = next(r for name, r in found.items() if name.startswith("before"))
    goal = report.GOAL_S * leads / report.GOAL_LEADS
    return Row(
        "leadheat report, whole",
        f"{leads:,} leads, {5 * leads:,} events (bench/report.py)",
        f"{whole.wall_s:,.2f} s",
        f"replay of every lead {replay.wall_s:,.1f} s ({replay.note})",
        replay.wall_s / whole.wall_s,
        f"<= 30 s at 1,000,000 leads ({goal:.1f} s here)",
        whole.wall_s <= goal,
    )


# -- 1. import ---------------------------------------------------------------------------
def bench_import(root: Path, count: int, repeat: int) -> tuple[Row, float, Path | None]:
    path = DATA / "cdnow_lifetimes" / "CDNOW_master.txt"
    if not path.is_file():
        return Row("bulk import", "needs ../shared/data", "", "", None, "", None), 0.0, None
    events = list(import_events.derive(import_events.read_cdnow(path), count, datetime.now(UTC)))
    csv_path = root / "events.csv"
    import_events.write_csv(csv_path, events)
    gc.freeze()  # the bench's own million objects are not leadheat's to collect
    limits, stores = [], []
    for n in range(repeat):  # interleaved, as in best_interleaved
        limits.append(import_events.machine_limit(root / f"limit{n}.db", events))
        stores.append(import_events.leadheat_import(root / f"import{n}.db", csv_path, count).store)
    limit, store = min(limits), min(stores)
    ratio = limit / store
    row = Row(
        "bulk import: record_events (store only)",
        f"{count:,} events, derived from CDNOW",
        f"{count / store:,.0f} events/s",
        f"sqlite3 executemany {count / limit:,.0f} events/s",
        ratio,
        ">= 0.5",
        ratio >= 0.5,
    )
    return row, count / store, root / "import0.db"


NEW_LEADS_ROW = "import 1M events / 200k new leads vs executemany"


def bench_new_leads(root: Path, count: int, repeat: int) -> list[Row]:
    """Issue 21's case: ``leadheat import events`` of a file whose leads are all new, against
    ``executemany`` of the same rows (``bench/import_events.py --new-leads``); on PostgreSQL
    too, against ``COPY``, when ``$LEADHEAT_BENCH_POSTGRES_URL`` names a database."""
    postgres = os.environ.get("LEADHEAT_BENCH_POSTGRES_URL")
    times = import_events.measure_new_leads(root, count, repeat, postgres)
    if times is None:
        return [Row(NEW_LEADS_ROW, "needs ../shared/data", "", "", None, "", None)]
    data = f"{count:,} events, {times.leads:,} new leads, derived from CDNOW"
    rows = [
        Row(
            NEW_LEADS_ROW,
            data,
            f"{count / times.imported:,.0f} events/s",
            f"sqlite3 executemany {count / times.limit:,.0f} events/s",
            times.ratio,
            ">= 0.5",
            times.ratio >= 0.5,
        )
    ]
    if times.pg_copy is not None and times.pg_imported is not None:
        rows.append(
            Row(
                "the same import on PostgreSQL vs COPY",
                data,
                f"{count / times.pg_imported:,.0f} events/s",
                f"COPY {count / times.pg_copy:,.0f} events/s",
                times.pg_copy / times.pg_imported,
                "",
                None,
            )
        )
    else:
        rows.append(
            Row(
                "the same import on PostgreSQL vs COPY",
                "set LEADHEAT_BENCH_POSTGRES_URL",
                "",
                "",
                None,
                "",
                None,
            )
        )
    return rows


# -- 2. re-scoring -----------------------------------------------------------------------
def derived_stream(count: int) -> tuple[npt.NDArray[np.int64], ...]:
    """``(lead_ids, type_codes, at_us)``: CDNOW's purchases repeated, as in the import
    bench (customer × repetition mod 4 is a lead, each repetition shifted by the data span)."""
    rows = [
        line.split()
        for line in (DATA / "cdnow_lifetimes" / "CDNOW_master.txt").read_text().splitlines()
    ]
    rows = [r for r in rows if len(r) == 4 and r[1].isdigit()]
    customers = np.array([int(r[0]) for r in rows], dtype=np.int64)
    days = np.array(
        [to_micros(datetime.strptime(r[1], "%Y%m%d").replace(tzinfo=UTC)) for r in rows],
        dtype=np.int64,
    )
    span = int(days.max() - days.min()) + 86_400_000_000
    shifts = max(1, (to_micros(NOW) - int(days.max())) // span)
    passes = np.arange(count, dtype=np.int64) // len(rows)
    row = np.arange(count, dtype=np.int64) % len(rows)
    lead_ids = customers[row] * 4 + passes % 4
    at_us = days[row] + (passes % shifts) * span
    type_codes = (passes % len(RESCORE_TYPES)).astype(np.intp)
    return lead_ids, type_codes, at_us


def bench_rescore(count: int, repeat: int) -> list[Row]:
    import pandas as pd

    from leadheat.playbook import parse_playbook
    from leadheat.scoring.rescoring import SignalTable, compiled_fold, fold_activity

    if not (DATA / "cdnow_lifetimes").is_dir():
        return [Row("re-scoring", "needs ../shared/data", "", "", None, "", None)]
    lead_ids, type_codes, at_us = derived_stream(count)
    source = "\n".join(
        f"[signals.{name}]\npoints = {NEW_PLAYBOOK_POINTS.get(name, 20)}" for name in RESCORE_TYPES
    )
    table = SignalTable.of(parse_playbook(source), RESCORE_TYPES)
    half_life_us = int(table.half_life_us[0])
    now_us = to_micros(NOW)

    def leadheat() -> None:
        table.fold(lead_ids, type_codes, at_us)

    # what the store hands the fold (store.state.rebuild, the Spark partitions): a value per
    # event, since property rules can give two events of one type different points
    points, spans, churned = (
        table.points[type_codes],
        table.half_life_us[type_codes],
        table.churn[type_codes],
    )

    def per_event() -> None:
        fold_activity(lead_ids, at_us, points, spans, churned)

    def bare_numpy() -> None:
        """Heat at one ``now`` only: no keys, no activity, nothing kept for later."""
        np.bincount(lead_ids, table.points[type_codes] * np.exp2((at_us - now_us) / half_life_us))

    def pandas_same() -> None:
        """The same outputs with pandas: per lead the exact heat key (latest half-life count
        factored out), first and last event, event count."""
        frame = pd.DataFrame({"lead": lead_ids, "type": type_codes, "at": at_us})
        frame["turns"] = frame["at"] // half_life_us
        frame["top"] = frame.groupby("lead")["turns"].transform("max")
        frame["term"] = np.exp2(
            (frame["at"] - frame["top"] * half_life_us) / half_life_us
            + np.log2(table.points[frame["type"].to_numpy()])
        )
        state = frame.groupby("lead").agg(
            total=("term", "sum"),
            top=("turns", "max"),
            first=("at", "min"),
            last=("at", "max"),
            events=("at", "size"),
        )
        exponent = np.log2(state["total"])
        state["whole"] = state["top"] + np.floor(exponent).astype(np.int64)
        state["frac"] = exponent - np.floor(exponent)

    def pandas_heat_now() -> None:
        frame = pd.DataFrame({"lead": lead_ids, "type": type_codes, "at": at_us})
        frame["heat"] = table.points[frame["type"].to_numpy()] * np.exp2(
            (frame["at"] - now_us) / half_life_us
        )
        frame.groupby("lead")["heat"].sum()

    first_s = timed(leadheat)  # numba loads the compiled kernel from its cache or compiles it
    how = "compiled now" if compiled_fold().stats.cache_misses else "loaded from numba's cache"
    ours, numpy_s, pandas_s, pandas_now_s, per_event_s = best_interleaved(
        [leadheat, bare_numpy, pandas_same, pandas_heat_now, per_event], repeat
    )
    leads = len(np.unique(lead_ids))
    data = f"{count:,} events of {leads:,} leads, derived from CDNOW"
    rate = count / ours
    return [
        Row(
            "re-scoring from history (arrays): vs NumPy",
            data,
            f"{rate / 1e6:,.1f} M events/s",
            f"bare NumPy heat-now bincount {count / numpy_s / 1e6:,.1f} M events/s",
            numpy_s / ours,
            ">= 10 M events/s",
            rate >= 10e6,
        ),
        Row(
            "re-scoring from history (arrays): vs pandas",
            data,
            f"{rate / 1e6:,.1f} M events/s",
            f"pandas group-by, same outputs {count / pandas_s / 1e6:,.1f} M events/s",
            pandas_s / ours,
            ">= 5x pandas",
            pandas_s / ours >= 5,
        ),
        Row(
            "  context: vs pandas heat-now only",
            data,
            f"{rate / 1e6:,.1f} M events/s",
            f"one pandas sum at one now {count / pandas_now_s / 1e6:,.1f} M events/s",
            pandas_now_s / ours,
            "",
            None,
        ),
        Row(
            "  context: the fold as a playbook apply calls it",
            "the same events, a value per event (fold_activity)",
            f"{count / per_event_s / 1e6:,.1f} M events/s",
            f"by type code (rows above) {rate / 1e6:,.1f} M events/s",
            ours / per_event_s,
            "",
            None,
        ),
        Row(
            "  context: re-scoring, the process's first call",
            f"the same events, not in the rows above; kernel {how}",
            f"{first_s:,.2f} s",
            f"a later call {ours:,.2f} s",
            None,
            "",
            None,
        ),
    ]


def bench_apply_playbook(database: Path, events: int, import_rate: float) -> Row:
    source = "\n".join(
        [
            '[decay]\nhalf_life = "10d"',
            *(f"[signals.{name}]\npoints = {p}" for name, p in NEW_PLAYBOOK_POINTS.items()),
        ]
    )
    with Leadheat(f"sqlite:///{database}") as lh:
        seconds = timed(lambda: lh.apply_playbook(source))
    rate = events / seconds
    return Row(
        "  context: playbook apply (re-score via SQLite)",
        f"{events:,} events, every lead (row 1's database)",
        f"{rate / 1e6:,.2f} M events/s",
        f"importing them (row 1) {import_rate / 1e6:,.2f} M events/s",
        rate / import_rate,
        "",
        None,
    )


# -- 3. hot now --------------------------------------------------------------------------
NEGATIVE_SIGNAL = '\n[signals.careers_view]\npoints = -10\nhalf_life = "2d"\n'


def build_leads(path: Path, leads: int, negative_share: float = 0.0) -> Playbook:
    """A leadheat database of ``leads`` SYNTHETIC leads with their states and heat keys:
    1-5 events each within ten days before a last activity spread over a year (folded by
    leadheat's own kernel), half of them qualified, a third with fresh evidence; with
    ``negative_share``, that share of leads also viewed the careers page (-10 points, 2
    days) within three days of their last activity."""
    from leadheat.playbook import default_playbook_text
    from leadheat.scoring.rescoring import fold_activity

    with Leadheat(f"sqlite:///{path}") as lh:
        lh.init()
        if negative_share:
            lh.apply_playbook(default_playbook_text() + NEGATIVE_SIGNAL)
        _, book = lh.playbook()
    rng = np.random.default_rng(11)
    per_lead = rng.integers(1, 6, leads)
    lead_ids = np.repeat(np.arange(1, leads + 1), per_lead)
    last = to_micros(NOW) - rng.integers(0, 365 * 86_400_000_000, leads)
    at_us = np.repeat(last, per_lead) - rng.integers(0, 10 * 86_400_000_000, len(lead_ids))
    points = rng.choice([1.0, 3.0, 8.0, 10.0, 20.0], len(lead_ids))
    span = book.decay.half_life // MICRO
    spans = np.full(len(lead_ids), span, dtype=np.int64)
    if negative_share:
        looked = np.flatnonzero(rng.random(leads) < negative_share)
        lead_ids = np.concatenate([lead_ids, looked + 1])
        at_us = np.concatenate(
            [at_us, last[looked] - rng.integers(0, 3 * 86_400_000_000, len(looked))]
        )
        points = np.concatenate([points, np.full(len(looked), -10.0)])
        spans = np.concatenate(
            [spans, np.full(len(looked), book.half_life_for("careers_view") // MICRO)]
        )
    activity = fold_activity(
        lead_ids, at_us, points, spans, np.zeros(len(lead_ids), dtype=np.bool_)
    )
    qualified = rng.random(leads) < 0.5
    fresh = rng.random(leads) < 0.33
    until = np.where(fresh, to_micros(NOW) + 30 * 86_400_000_000, to_micros(NOW) - 1)
    created = to_micros(NOW) - 400 * 86_400_000_000
    ids = activity.leads.tolist()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO leads (id, external_id, attributes, created_at, updated_at) "
        "VALUES (?, ?, '{}', ?, ?)",
        ((i, f"lead-{i}", created, created) for i in ids),
    )
    connection.executemany(
        "INSERT INTO lead_states (lead_id, playbook_version, fit, qualified, disqualified, "
        "evidence_until, status, last_engaged_at, churned_at, events_count) "
        "VALUES (?, 1, ?, ?, 0, ?, 'open', ?, NULL, ?)",
        zip(
            ids,
            np.where(qualified, 15.0, 0.0).tolist(),
            qualified.tolist(),
            until.tolist(),
            activity.last_engaged_at.tolist(),
            activity.events.tolist(),
            strict=True,
        ),
    )
    for signed_span, (keys_leads, whole, frac) in activity.keys.items():
        connection.executemany(
            "INSERT INTO heat_keys (lead_id, half_life_us, whole, frac) VALUES (?, ?, ?, ?)",
            zip(
                keys_leads.tolist(),
                [signed_span] * len(keys_leads),
                whole.tolist(),
                frac.tolist(),
                strict=True,
            ),
        )
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    return book


def full_scan(path: Path, book: Playbook, limit: int) -> list[int]:
    """Score every lead: one SQL scan of every heat key with its lead's facts, heat and the
    hot rules vectorised, the ``limit`` hottest by ``argpartition``."""
    span = book.decay.half_life // MICRO
    rules = book.temperature
    now_us = to_micros(NOW)
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT k.lead_id, k.whole, k.frac, s.qualified, s.evidence_until, s.status, "
        "s.last_engaged_at, coalesce(s.churned_at, -1) FROM heat_keys k "
        "JOIN lead_states s ON s.lead_id = k.lead_id WHERE k.half_life_us = ?",
        (span,),
    ).fetchall()
    lowering = connection.execute(
        "SELECT lead_id, -half_life_us, whole, frac FROM heat_keys WHERE half_life_us < 0"
    ).fetchall()
    connection.close()
    lead, whole, frac, qualified, until, status, engaged, churned = zip(*rows, strict=True)
    turns, rest = divmod(now_us, span)
    heat = np.exp2((np.array(whole) - turns) + (np.array(frac) - rest / span))
    if lowering:
        low_lead, low_span, low_whole, low_frac = (np.array(c) for c in zip(*lowering, strict=True))
        low_turns, low_rest = np.divmod(now_us, low_span)
        pulled = np.exp2((low_whole - low_turns) + (low_frac - low_rest / low_span))
        order = np.argsort(np.array(lead))
        at = order[np.searchsorted(np.array(lead)[order], low_lead)]
        np.subtract.at(heat, at, pulled)
    engaged_at = np.array(engaged, dtype=np.int64)
    hot = (
        np.array(qualified, dtype=np.bool_)
        & (np.array([u if u is not None else -1 for u in until]) > now_us)
        & (np.array(status) != "won")
        & (heat >= rules.hot_heat)
        & (now_us - engaged_at <= rules.cold_after // MICRO)
        & (np.array(churned) < engaged_at)
    )
    candidates = np.flatnonzero(hot)
    if len(candidates) > limit:
        candidates = candidates[np.argpartition(-heat[candidates], limit)[:limit]]
    top = candidates
    ids = np.array(lead)[top]
    return [int(i) for i in ids[np.lexsort((ids, -heat[top]))]]


def bench_hot(root: Path, leads: int, calls: int, negative_share: float = 0.0) -> Row:
    path = root / ("hot-negative.db" if negative_share else "hot.db")
    book = build_leads(path, leads, negative_share)
    scan = best(lambda: timed(lambda: full_scan(path, book, 50)), 2)
    expected = full_scan(path, book, 50)
    with Leadheat(f"sqlite:///{path}") as lh, lh.engine.connect() as connection:
        got = [r.lead_id for r in hot_leads(connection, book, NOW, 50)]
        p50 = median_call(lambda: hot_leads(connection, book, NOW, 50), calls)
    same = "same 50 leads" if got == expected else "DIFFERENT leads"
    signals = f"; {negative_share:.0%} with a negative signal" if negative_share else ""
    return Row(
        "hot now: top 50 (p50)",
        f"{leads:,} leads, synthetic{signals}; {same}",
        f"{p50 * 1000:,.2f} ms",
        f"scoring every lead {scan * 1000:,.0f} ms",
        scan / p50,
        "<= 5 ms and >= 100x",
        p50 <= 0.005 and scan / p50 >= 100 and got == expected,
    )


# -- 3b. hot accounts --------------------------------------------------------------------
def build_accounts(path: Path, accounts: int, members: int = 3) -> Playbook:
    """A leadheat database of ``accounts`` SYNTHETIC accounts of ``members`` leads each: each
    account's key the log-sum of its members' (leadheat's own kernels), its forecasts by
    :func:`~leadheat.scoring.accounts.falls_to`, as the store keeps them."""
    from leadheat.scoring.accounts import falls_to, fold_account_keys
    from leadheat.scoring.heat import HeatKey
    from leadheat.scoring.rescoring import fold_activity

    with Leadheat(f"sqlite:///{path}") as lh:
        lh.init()
        _, book = lh.playbook()
    rng = np.random.default_rng(13)
    leads = accounts * members
    lead_ids = np.arange(1, leads + 1)
    account_of = (lead_ids - 1) // members + 1
    last = to_micros(NOW) - rng.integers(0, 120 * 86_400_000_000, accounts)
    at_us = np.repeat(last, members) - rng.integers(0, 5 * 86_400_000_000, leads)
    points = rng.choice([1.0, 3.0, 8.0, 10.0, 20.0], leads)
    span = book.decay.half_life // MICRO
    activity = fold_activity(
        lead_ids,
        at_us,
        points,
        np.full(leads, span, dtype=np.int64),
        np.zeros(leads, dtype=np.bool_),
    )
    keys_leads, whole, frac = activity.keys[span]
    ids, a_whole, a_frac = fold_account_keys(account_of[keys_leads - 1], whole, frac)
    half_life = book.decay.half_life
    forecasts = []
    for w, f in zip(a_whole.tolist(), a_frac.tolist(), strict=True):
        keys = {half_life: HeatKey(w, f)}
        hot, warm = falls_to(keys, book.accounts.hot_heat), falls_to(keys, book.accounts.warm_heat)
        forecasts.append((to_micros(hot) if hot else None, to_micros(warm) if warm else None))
    created = to_micros(NOW) - 400 * 86_400_000_000
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO leads (id, email, title, attributes, created_at, updated_at) "
        "VALUES (?, ?, ?, '{}', ?, ?)",
        (
            (
                i,
                f"p{i}@a{(i - 1) // members + 1}.com",
                "VP Sales" if i % 3 else "Engineer",
                created,
                created,
            )
            for i in lead_ids.tolist()
        ),
    )
    connection.executemany(
        "INSERT INTO accounts (id, key, domain, traits, created_at, updated_at, hot_until, "
        "warm_until) VALUES (?, ?, ?, '{}', ?, ?, ?, ?)",
        (
            (a, f"a{a}.com", f"a{a}.com", created, created, hot, warm)
            for a, (hot, warm) in zip(ids.tolist(), forecasts, strict=True)
        ),
    )
    connection.executemany(
        "INSERT INTO account_members (lead_id, account_id, since, source) VALUES (?, ?, NULL, "
        "'email')",
        zip(lead_ids.tolist(), account_of.tolist(), strict=True),
    )
    connection.executemany(
        "INSERT INTO account_heat_keys (account_id, half_life_us, whole, frac) VALUES (?, ?, ?, ?)",
        zip(ids.tolist(), [span] * len(ids), a_whole.tolist(), a_frac.tolist(), strict=True),
    )
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    return book


def account_scan(path: Path, book: Playbook, limit: int) -> list[str]:
    """Score every account: one SQL scan of every account key, heat vectorised, the hot ones
    hottest first by ``argpartition``."""
    span = book.decay.half_life // MICRO
    now_us = to_micros(NOW)
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT a.key, k.account_id, k.whole, k.frac FROM account_heat_keys k "
        "JOIN accounts a ON a.id = k.account_id WHERE k.half_life_us = ?",
        (span,),
    ).fetchall()
    connection.close()
    key, account, whole, frac = zip(*rows, strict=True)
    turns, rest = divmod(now_us, span)
    heat = np.exp2((np.array(whole) - turns) + (np.array(frac) - rest / span))
    candidates = np.flatnonzero(heat >= book.accounts.hot_heat)
    if len(candidates) > limit:
        candidates = candidates[np.argpartition(-heat[candidates], limit)[:limit]]
    ids = np.array(account)[candidates]
    order = np.lexsort((ids, -heat[candidates]))
    return [key[i] for i in candidates[order].tolist()]


def bench_hot_accounts(root: Path, accounts: int, calls: int) -> Row:
    from leadheat.store.account_views import hot_accounts

    path = root / "accounts.db"
    book = build_accounts(path, accounts)
    scan = best(lambda: timed(lambda: account_scan(path, book, 50)), 2)
    expected = account_scan(path, book, 50)
    with Leadheat(f"sqlite:///{path}") as lh, lh.engine.connect() as connection:
        got = [r.key for r in hot_accounts(connection, book, NOW, 50)]
        p50 = median_call(lambda: hot_accounts(connection, book, NOW, 50), calls)
    same = "same 50 accounts" if got == expected else "DIFFERENT accounts"
    return Row(
        "hot accounts: top 50 (p50)",
        f"{accounts:,} accounts of 3 leads, synthetic; {same}",
        f"{p50 * 1000:,.2f} ms",
        f"scoring every account {scan * 1000:,.0f} ms",
        scan / p50,
        "<= 5 ms",
        p50 <= 0.005 and got == expected,
    )


# -- 4. HTTP -----------------------------------------------------------------------------
def bench_http(root: Path, seconds: float, in_process_rate: float) -> list[Row]:
    """``POST /v1/batch`` against ``leadheat serve`` on SQLite (one process), and on
    PostgreSQL with two (``--workers 2``) when ``LEADHEAT_BENCH_POSTGRES_URL`` names a server
    whose user may create a database."""
    configs = [ingest_http.Config("sqlite", 1)]
    postgres = os.environ.get("LEADHEAT_BENCH_POSTGRES_URL")
    if postgres:
        configs.append(ingest_http.Config("postgresql", 2))
    rows = []
    for config in configs:
        with ingest_http.database(config, root, postgres) as url:
            watched = (
                (postgres, str(make_url(url).database))
                if postgres and config.backend == "postgresql"
                else None
            )
            batches = ingest_http.run_batches(config, url, root, seconds, 8, watched)
        rate = batches.events / batches.seconds
        per_core = batches.events / batches.server_cpu_s if batches.server_cpu_s > 0 else 0.0
        goal = ingest_http.GOAL_EVENTS_PER_SECOND
        rows.append(
            Row(
                f"HTTP batched ingestion (/v1/batch x100), {config}",
                "synthetic Segment track calls",
                f"{rate:,.0f} events/s",
                f"row 1 in process {in_process_rate:,.0f} events/s" if in_process_rate else "",
                rate / in_process_rate if in_process_rate else None,
                f">= {goal:,} events/s; {per_core:,.0f} per server CPU-s, "
                f"{batches.server_cpu_s / batches.seconds:.2f} server cores",
                rate >= goal and not batches.failed,
            )
        )
    return rows


# -- 5. predictive model -----------------------------------------------------------------
def bench_predict() -> list[Row]:
    from leadheat.predict.baselines import DefaultLightGBM
    from leadheat.predict.model import train_model
    from leadheat.predict.table import read_table

    path = DATA / "uci_online_shoppers" / "online_shoppers_intention.csv"
    if not path.is_file():
        return [Row("predictive model", "needs ../shared/data", "", "", None, "", None)]
    table = read_table(path)
    rows = len(table)
    model = train_model(table, "Revenue", seed=7, threads=2)
    baseline = DefaultLightGBM.fit(table, "Revenue", seed=7, threads=2)
    train_s = best(lambda: timed(lambda: train_model(table, "Revenue", seed=7, threads=2)), 2)
    base_s = best(
        lambda: timed(lambda: DefaultLightGBM.fit(table, "Revenue", seed=7, threads=2)), 2
    )
    score_s = best(lambda: timed(lambda: model.predict_proba(table)), 3)
    base_score_s = best(lambda: timed(lambda: baseline.predict_proba(table)), 3)
    data = f"{rows:,} rows, UCI online shoppers (real)"
    return [
        Row(
            "predictive training",
            data,
            f"{rows / train_s:,.0f} rows/s",
            f"default LightGBM {rows / base_s:,.0f} rows/s",
            base_s / train_s,
            "",
            None,
        ),
        Row(
            "predictive scoring",
            data,
            f"{rows / score_s:,.0f} rows/s",
            f"default LightGBM {rows / base_score_s:,.0f} rows/s",
            base_score_s / score_s,
            "",
            None,
        ),
    ]


# -- 6. CLI start ------------------------------------------------------------------------
def bench_cli_start(root: Path, runs: int) -> Row:
    folder = root / "cli-start"
    folder.mkdir()
    show = cli_start.show_ms(cli_start.measure(runs, folder))
    return Row(
        "CLI start: leadheat show LEAD",
        f"one lead, SQLite; median of {runs} new processes",
        f"{show.median_ms:,.0f} ms",
        f"python -c pass {show.reference_ms:,.0f} ms",
        None,
        f"<= {cli_start.GOAL_MS:.0f} ms wall",
        show.median_ms <= cli_start.GOAL_MS,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = parser.parse_args(argv)
    imports, rescore, leads, http_s = (
        (20_000, 1_000_000, 50_000, 2.0) if args.quick else (1_000_000, 10_000_000, 1_000_000, 6.0)
    )
    out.print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    out.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, NumPy "
        f"{np.__version__}; load average {os.getloadavg()[0]:.2f} at start"
    )
    began = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="leadheat-bench-") as folder:
        root = Path(folder)
        row, in_process, database = bench_import(root, imports, 2)
        rows.append(row)
        rows.extend(bench_new_leads(root, imports, 2))
        rescoring = bench_rescore(rescore, 5)
        rows.extend(rescoring)
        if database is not None:
            rows.append(bench_apply_playbook(database, imports, in_process))
        rows.append(bench_hot(root, leads, 101))
        rows.append(bench_hot(root, leads, 101, negative_share=0.1))
        rows.append(bench_hot_accounts(root, leads // 10, 101))
        rows.extend(bench_http(root, http_s, in_process))
        rows.extend(bench_followup(*((2_000, 10_000) if args.quick else (20_000, 100_000))))
        rows.append(bench_report(2_000 if args.quick else 20_000))
        rows.extend(bench_predict())
        rows.append(bench_cli_start(root, 5 if args.quick else 20))
    table = Table(title="leadheat bench: each ratio measured in this run", title_justify="left")
    for name in ("measure", "data", "leadheat", "reference", "ratio", "goal", "met"):
        table.add_column(name, justify="right" if name in ("leadheat", "ratio") else "left")
    for r in rows:
        met = "" if r.met is None else "yes" if r.met else "NO"
        ratio = "" if r.ratio is None else f"{r.ratio:,.2f}"
        table.add_row(r.measure, r.data, r.result, r.reference, ratio, r.goal, met)
    out.print(table)
    out.print(
        f"ratio: leadheat's speed over the reference's (>1: leadheat faster); total "
        f"{time.perf_counter() - began:,.0f} s; load average {os.getloadavg()[0]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
