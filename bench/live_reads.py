"""The follow-up commands a rep runs while a website's analytics posts events to the server.

What is measured, in one run: a SQLite database of ``--leads`` leads and ``--events`` events
is built through leadheat's own writes (``bench/followup.py``'s ``build``, the history ending
an hour ago), the real ``leadheat serve`` is started on it, and ``--posters`` client processes
post Segment batches of ``--batch`` (10) ``track`` calls to ``/v1/batch``, each event stamped
at the moment it is sent (as the SDKs stamp them), for visitors drawn in turn from
``--visitors`` per poster, at ``--rate`` events/s each (0: back to back). Small batches, many
of them: a website's traffic comes from many browsers, each flushing a few events at a time.
Meanwhile the CLI runs, as a rep would, ``leadheat tasks --limit 50 --json`` and
``leadheat recover --limit 50 --json``, each ``--rounds`` times; then the posting stops and
each runs twice more on the now idle server. Every command's wall time is reported, process
start included, with how many leads it listed. The check line gives the events stored, what
the posters were answered, and how many leads' follow-up state the keeper had still to
compute when the posting stopped.

Why: live traffic stamps its events a moment after every read begins. A read that sent any
fact later than its instant to a replay of every lead took 25 to 42 s here beside 1,000
events/s; the reads must stay as fast as on an idle server.

The data are SYNTHETIC (generated here). Run ``.venv/bin/python bench/live_reads.py
[--rate 250] [--posters 4] [--visitors 25000] [--batch 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import followup
from ingest_http import free_port, start_server, stop_server
from leadheat.engage.followup import keep_current
from leadheat.service import Leadheat

out = Console(highlight=False, width=140)
COMMANDS = (["tasks", "--limit", "50", "--json"], ["recover", "--limit", "50", "--json"])


def post(number: int, base: str, key: str, options: dict[str, Any], stop: Any, sent: Any) -> None:
    """One poster: batches of ``batch`` events stamped now, at ``rate`` events/s (0: no
    pause)."""
    rate, visitors, size = options["rate"], options["visitors"], options["batch"]
    began, batches = time.monotonic(), 0
    with httpx.Client(base_url=base, auth=(key, ""), timeout=60) as client:
        while not stop.is_set():
            if rate and batches * size / rate > time.monotonic() - began:
                time.sleep(0.01)
                continue
            stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            batch = [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": f"v{number}-{(batches * size + i) % visitors}",
                    "timestamp": stamp,
                    "messageId": f"{number}-{batches}-{i}",
                    "properties": {"product_id": f"p{i}"},
                }
                for i in range(size)
            ]
            answer = client.post("/v1/batch", json={"batch": batch})
            if answer.status_code == 200:
                with sent.get_lock():
                    sent.value += size
            batches += 1


def run_cli(url: str, command: list[str]) -> tuple[float, int]:
    """One CLI command, as a rep types it: its wall time and how many leads it listed."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "leadheat", "--db", url, *command],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"leadheat {' '.join(command)} failed:\n{done.stderr}")
    return took, len(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--rate", type=float, default=250.0, help="events/s per poster")
    parser.add_argument("--visitors", type=int, default=25_000, help="visitors per poster")
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    out.print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    out.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )
    rows: list[tuple[str, str, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="leadheat-live-") as folder:
        path = Path(folder) / "live.db"
        url = f"sqlite:///{path}"
        followup.NOW = datetime.now(UTC) - timedelta(hours=1)
        with Leadheat(url) as lh:
            lh.init()
            followup.build(lh, args.leads, args.events)
            keep_current(lh)
            key, _ = lh.create_key("live", ["ingest"])
        port = free_port()
        server = start_server(url, port, Path(folder) / "server.log")
        stop = multiprocessing.Event()
        sent = multiprocessing.Value("q", 0)
        options = {"rate": args.rate, "visitors": args.visitors, "batch": args.batch}
        posters = [
            multiprocessing.Process(
                target=post, args=(n, f"http://127.0.0.1:{port}", key, options, stop, sent)
            )
            for n in range(args.posters)
        ]
        try:
            for poster in posters:
                poster.start()
            time.sleep(3)  # the posting under way
            began = time.monotonic()
            for _ in range(args.rounds):
                for command in COMMANDS:
                    rows.append(("posting", command[0], *run_cli(url, command)))
            posted_s = time.monotonic() - began + 3
            stop.set()
            for poster in posters:
                poster.join()
            with sqlite3.connect(path) as connection:
                stale = connection.execute("SELECT count(*) FROM followup_stale").fetchone()[0]
            time.sleep(2)
            for _ in range(2):
                for command in COMMANDS:
                    rows.append(("idle", command[0], *run_cli(url, command)))
        finally:
            stop.set()
            stop_server(server)
        with sqlite3.connect(path) as connection:
            stored = connection.execute("SELECT count(*) FROM events").fetchone()[0]
    table = Table(title="reads beside live ingestion, this run", title_justify="left")
    for name in ("server", "command", "wall", "listed"):
        table.add_column(name, justify="right" if name in ("wall", "listed") else "left")
    for state, command, took, listed in rows:
        table.add_row(state, f"leadheat {command} --limit 50", f"{took:.2f} s", str(listed))
    out.print(table)
    out.print(
        f"check: {sent.value:,} events answered 200 in {posted_s:.0f} s of posting "
        f"({sent.value / posted_s:,.0f} events/s, the build's {args.events:,} aside); the "
        f"database holds {stored:,}; {stale:,} leads still to compute when the posting stopped"
    )


if __name__ == "__main__":
    main()
