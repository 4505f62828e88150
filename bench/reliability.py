"""Reliability, measured: SIGKILLs during sustained ingestion, a bounded soak of mixed
ingestion and reads, and the fuzz cases the suite tries. Prints the table that
docs/reliability.md holds.

1. **Kills**: one ``leadheat serve`` process over a fresh SQLite file; an SDK-like client posts
   Segment batches of 20 track calls (SYNTHETIC: 200 users, unique message ids) and sends a
   batch again when it got no answer; the server is SIGKILLed ``--kills`` times (5), each after
   at least 500 more acknowledged events, and restarted. Then: every acknowledged messageId
   must be stored, each once; the stored heat of every lead must equal a replay of its history.
2. **Soak**: a fresh server; for ``--soak-seconds`` (60) an open-loop load of 40 batches/s (10
   events each) and 20 reads/s (``/api/v1/hot``, ``/api/v1/leads``) on loopback. Counted:
   requests, non-2xx, 5xx, and the server's resident memory (VmRSS) after a 5 s warm-up and at
   the end. Bound: growth under 50 MB.
3. **Fuzz**: runs ``pytest tests/test_fuzz.py`` with ``LEADHEAT_FUZZ_REPORT`` set and reports
   the cases it tried and the 5xx it saw.

Run ``.venv/bin/python bench/reliability.py [--kills N] [--soak-seconds S]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from ingest_http import free_port, start_server, stop_server
from leadheat.service import Leadheat
from leadheat.store.models import Event

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def kills(count: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'kills.db'}"
        lh = Leadheat(url)
        lh.init()
        key, _ = lh.create_key("bench", ["ingest"])
        auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        port = free_port()
        acknowledged: set[str] = set()
        sent_batches = [0]
        stop = threading.Event()
        now = datetime.now(UTC)

        def client() -> None:
            number, pending = 0, None
            with httpx.Client(timeout=5) as http:
                while not stop.is_set():
                    if pending is None:
                        pending = [
                            {
                                "type": "track",
                                "userId": f"user{(number + k) % 200}",
                                "event": "product_view",
                                "messageId": f"m-{number + k}",
                                "timestamp": (now - timedelta(seconds=number + k)).isoformat(),
                            }
                            for k in range(20)
                        ]
                        number += 20
                    try:
                        sent_batches[0] += 1
                        answer = http.post(
                            f"http://127.0.0.1:{port}/v1/batch",
                            json={"batch": pending},
                            headers=auth,
                        )
                    except httpx.TransportError:
                        time.sleep(0.02)
                        continue
                    if answer.status_code == 200:
                        acknowledged.update(str(m["messageId"]) for m in pending)
                        pending = None

        log = Path(folder) / "server.log"
        server = start_server(url, port, log)
        thread = threading.Thread(target=client)
        thread.start()
        survived = 0
        try:
            for _ in range(count):
                target = len(acknowledged) + 500
                while len(acknowledged) < target:
                    time.sleep(0.01)
                server.send_signal(signal.SIGKILL)
                server.wait(10)
                survived += 1
                server = start_server(url, port, log)
            time.sleep(1)
        finally:
            stop.set()
            thread.join(30)
            stop_server(server)
        with lh.engine.connect() as connection:
            ids = [row[0] for row in connection.execute(select(Event.event_id))]
            total = connection.execute(select(func.count()).select_from(Event)).scalar_one()
        then = datetime.now(UTC)
        mismatches = sum(
            abs(row.heat - lh.show(row.lead_id, at=then).score.heat) > 1e-9 * max(1.0, row.heat)
            for row in lh.leads(at=then)
        )
        lh.close()
        return {
            "acknowledged": len(acknowledged),
            "stored": total,
            "lost": len(acknowledged - set(ids)),
            "stored twice": total - len(set(ids)),
            "kills survived": survived,
            "heat != replay": mismatches,
        }


def soak(seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'soak.db'}"
        lh = Leadheat(url)
        lh.init()
        key, _ = lh.create_key("bench", ["admin"])
        lh.close()
        port = free_port()
        server = start_server(url, port, Path(folder) / "server.log")
        base = f"http://127.0.0.1:{port}"
        counts = {"requests": 0, "non-2xx": 0, "5xx": 0}
        lock = threading.Lock()
        stop = threading.Event()

        def load(rate: float, make: object) -> None:
            with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as http:
                number, start = 0, time.monotonic()
                while not stop.is_set():
                    due = start + number / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                    answer = make(http, number)  # type: ignore[operator]
                    number += 1
                    with lock:
                        counts["requests"] += 1
                        counts["non-2xx"] += not answer.is_success
                        counts["5xx"] += answer.status_code >= 500

        def ingest(http: httpx.Client, number: int) -> httpx.Response:
            batch = [
                {
                    "type": "track",
                    "userId": f"u{(number * 10 + k) % 5000}",
                    "event": "page_view",
                    "messageId": f"s-{number}-{k}",
                }
                for k in range(10)
            ]
            return http.post(f"{base}/v1/batch", json={"batch": batch})

        def read(http: httpx.Client, number: int) -> httpx.Response:
            path = "/api/v1/hot?limit=20" if number % 2 else "/api/v1/leads?limit=50"
            return http.get(f"{base}{path}")

        threads = [
            threading.Thread(target=load, args=(40.0, ingest)),
            threading.Thread(target=load, args=(20.0, read)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(5)
        warm = rss_mb(server.pid)
        time.sleep(max(0.0, seconds - 5))
        end = rss_mb(server.pid)
        stop.set()
        for thread in threads:
            thread.join(30)
        stop_server(server)
        return {
            **counts,
            "offered": int(60 * seconds),
            "seconds": seconds,
            "rss after warm-up MB": round(warm, 1),
            "rss at end MB": round(end, 1),
            "growth MB": round(end - warm, 1),
        }


def fuzz() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "fuzz.json"
        env = {**os.environ, "LEADHEAT_FUZZ_REPORT": str(report)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
        rows: dict[str, object] = {
            "pytest exit (0: no 5xx, no crash, no partial write)": result.returncode
        }
        for name, counts in sorted(data.get("checks", {}).items()):
            rows[name] = ", ".join(f"{k} {v}" for k, v in counts.items())
        rows["cases tried"] = data.get("total")
        return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    options = parser.parse_args(argv)
    print(f"reliability, {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, SQLite")
    for name, values in (
        ("SIGKILL during ingestion", kills(options.kills)),
        ("soak, mixed load", soak(options.soak_seconds)),
        ("fuzz (tests/test_fuzz.py)", fuzz()),
    ):
        print(f"\n{name}")
        for key, value in values.items():
            print(f"  {key:<40}{value}")


if __name__ == "__main__":
    main()
