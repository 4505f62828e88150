"""Speed to lead, end to end: from an event arriving over HTTP to its alert reaching the
receiver's webhook.

One ``leadheat serve`` process (the command itself, with its built-in worker) over a fresh
SQLite file; a webhook receiver on loopback in this process records the arrival time of each
alert. For each of ``--leads`` (1,000) synthetic leads, a Segment ``identify`` makes the lead
known and qualified (title "CTO"; not timed), then a Segment ``track`` of ``demo_request``
makes it hot: the time from just before that request is sent to the alert's arrival at the
receiver is the latency. Requests are sent one at a time, paced at ``--rate`` (20) hot
transitions per second, then again for a burst with no pacing (each next lead as soon as the
previous answer is back). Both clocks are this machine's ``time.time()``.

Goal (issue 4): p99 under 1 second. The data are SYNTHETIC (``lead<n>@bench.example``).

Run ``.venv/bin/python bench/speed_to_lead.py [--leads N] [--rate R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from ingest_http import free_port, start_server, stop_server

PLAYBOOK = """
name = "speed bench"
[fit]
qualified_at = 10
[[fit.rules]]
field = "title"
matches = "(?i)cto"
points = 10
[signals.demo_request]
points = 25
[temperature]
hot_requires = []
[speed.teams.default]
hours = "00:00-24:00"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
[speed.triggers.new_qualified]
enabled = false
[[speed.alerts]]
channel = "webhook"
url = "{url}/hooks"
triggers = ["hot"]
"""


class Arrivals:
    """A webhook receiver that notes when each lead's alert arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                email = json.loads(body)["lead"]["email"]
                with arrivals.lock:
                    arrivals.at.setdefault(email, arrived)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def leadheat(url: str, *args: str) -> str:
    command = [sys.executable, "-m", "leadheat", "--db", url, *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def run(
    client: httpx.Client, base: str, arrivals: Arrivals, prefix: str, leads: int, rate: float | None
) -> list[float]:
    sent: dict[str, float] = {}
    start = time.monotonic()
    for number in range(leads):
        email = f"{prefix}{number}@bench.example"
        identify = {"userId": email, "traits": {"email": email, "title": "CTO"}}
        client.post(f"{base}/v1/identify", json=identify).raise_for_status()
        if rate is not None:
            due = start + number / rate
            time.sleep(max(0.0, due - time.monotonic()))
        sent[email] = time.time()
        track = {"userId": email, "event": "demo_request", "messageId": f"m-{email}"}
        client.post(f"{base}/v1/track", json=track).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with arrivals.lock:
            if all(email in arrivals.at for email in sent):
                break
        time.sleep(0.05)
    with arrivals.lock:
        return [arrivals.at[email] - at for email, at in sent.items() if email in arrivals.at]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    options = parser.parse_args(argv)
    arrivals = Arrivals()
    # the receiver is on loopback, where alerts go only if the operator allows it (the
    # leadheat processes started below inherit this)
    os.environ["LEADHEAT_WEBHOOK_HOSTS"] = "127.0.0.1"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'speed.db'}"
        book = Path(folder) / "playbook.toml"
        book.write_text(PLAYBOOK.format(url=arrivals.url))
        leadheat(url, "init", "--playbook", str(book))
        leadheat(url, "reps", "add", "anna@bench.example")
        leadheat(url, "reps", "add", "ben@bench.example")
        key = leadheat(url, "keys", "create", "bench", "--scope", "ingest")
        port = free_port()
        server = start_server(url, port, Path(folder) / "server.log")
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(auth=(key, ""), timeout=10) as client:
                paced = run(client, base, arrivals, "paced", options.leads, options.rate)
                burst = run(client, base, arrivals, "burst", options.leads, None)
            delivered = leadheat(
                url, "deliveries", "--status", "delivered", "--limit", "100000", "--json"
            )
        finally:
            stop_server(server)
    print(
        f"speed to lead: HTTP event -> webhook at the receiver ({options.leads} hot leads per row)"
    )
    print(f"{'load':<28}{'alerts':>8}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in (
        (f"paced, {options.rate:g} hot leads/s", paced),
        ("burst, back to back", burst),
    ):
        ms = [v * 1000 for v in values]
        print(
            f"{name:<28}{len(ms):>8}{percentile(ms, 0.5):>10.1f}{percentile(ms, 0.9):>10.1f}"
            f"{percentile(ms, 0.99):>10.1f}{max(ms):>10.1f}"
        )
    print(
        f"alerts the database marks delivered: {len(json.loads(delivered))} (goal: p99 < 1000 ms)"
    )


if __name__ == "__main__":
    main()
