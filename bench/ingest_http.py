"""How fast events come in over HTTP: Segment batches, and single REST events at a steady rate.

What is measured, in one run, against the real ``leadheat serve`` (uvicorn, exactly as the
command starts it) on loopback, once per configuration (``--config backend:processes``, e.g.
``sqlite:1``, ``postgresql:2``; each on a fresh database: a SQLite file, or a PostgreSQL
database created for the run on ``--postgres URL`` and dropped after it):

1. **Batched collection throughput**: events/s through ``POST /v1/batch``, each request a
   Segment batch of 100 ``track`` calls with the write key as HTTP Basic user name, as the
   analytics SDKs send them. The client runs in a separate process with several concurrent
   keep-alive connections (``--connections``, 8) posting back to back for ``--duration``
   seconds (8) after one second of warm-up. It writes prepared request bytes on raw sockets
   and reads status and body (no HTTP library): each body is one template with its numbers
   substituted (fresh message ids), so the client costs a hundredth of a core and measures the
   server. Reported per configuration: events/s, p50 and p99 batch latency, and the CPU the
   server's processes (and PostgreSQL's backends for the database) used over the measured
   time, read from ``/proc``: **events per server CPU-second** is the server's capacity per
   core with the client and anything else on the machine taken away. Goal: at least 20,000
   events/s. A check line gives each process's two busiest threads, in cores: in a server,
   the group commit's writing thread and the event loop; a thread near one core is the limit.
2. For context, the most single events the server answers: ``POST /api/v1/events`` with one
   event, 4 connections back to back for 3 s (SQLite, one process).
3. **Single-event latency under a steady load**: ``POST /api/v1/events`` with one event and a
   bearer key, offered open-loop at a fixed 200 requests/s for ``--latency-seconds`` (10):
   request *k* is sent at *t0 + k/200* whatever happened to the others, and its latency runs
   from then to its answer (so a stalled server cannot hide queueing by slowing the client
   down). p50 and p99 are reported with the rate actually achieved; what is unanswered 10 s
   after the last request was due is counted, not waited for. Goal: p99 at most 20 ms.
   ``--no-single`` skips 2 and 3.

Why: collection endpoints take whatever a busy shop's analytics sends, in bursts; a sales
team's tools post single events and expect them back at once. Every number is end to end:
HTTP parsing, key check, validation, identity stitching, storage, scoring and the
speed-to-lead reaction (the default playbook: triggers and SLA clocks, no alert channel).
The check lines compare what each database holds with what was answered 200, and say how
many leads' follow-up state the keeper beside the server (``leadheat keeper``, started by
``serve``) had still to compute when the load stopped, and how long it then took.

The data are SYNTHETIC (generated here): 10,000 visitors (``user-<n>``), each batch 100
"Product Viewed" calls for 20 of them with unique message ids and timestamps in the last
hour. Each batch's timestamps are a few microseconds later than the batch before's, so that
every write moves its visitors' latest event on, as live traffic does (with the same
timestamps again and again, the keeper found the follow-up state unchanged and had nothing
to store, which live traffic seldom allows). Single events are ``page_view`` for 1,000
emails. Loopback only; every phase has a time limit and the server is stopped at the end.

Run ``.venv/bin/python bench/ingest_http.py [--duration S] [--connections N]
[--config sqlite:1 --config postgresql:2 --postgres URL] [--no-single]``; without
``--config``: ``sqlite:1``, plus ``postgresql:1`` and ``postgresql:2`` when a PostgreSQL URL
is given (``--postgres`` or ``LEADHEAT_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import multiprocessing
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastapi
import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url, text

from leadheat import __version__
from leadheat.service import Leadheat
from leadheat.times import isoformat

BATCH_SIZE = 100
VISITORS = 10_000
VISITORS_PER_BATCH = 20
READERS = 1_000
RATE = 200
"""Single events offered per second in the latency phase."""
GOAL_EVENTS_PER_SECOND = 20_000
GOAL_P99_MS = 20.0
DRAIN_SECONDS = 10.0
"""How long the steady phase waits for answers after the last request was due."""
CAPACITY_CONNECTIONS = 4
LABEL = "synthetic (generated by this script)"
BATCH, GROUP, MICROS = "@BATCH@", "@GROUP@", "@MICROS@"

out = Console(highlight=False, width=150)


@dataclass(frozen=True)
class ClosedLoop:
    """Requests sent back to back on each connection for a fixed time."""

    events: int
    requests: int
    failed: int
    seconds: float
    first_error: str | None
    accepted_in_all: int
    """Events answered 200, warm-up included: what the database should hold."""
    latencies_ms: list[float] = field(default_factory=list)
    """Each measured request's time from sent to answered."""
    server_cpu_s: float = math.nan
    """CPU seconds the server's processes used over the measured time."""
    client_cpu_s: float = math.nan
    """CPU seconds the client process used over the measured time."""
    database_cpu_s: float = math.nan
    """CPU seconds PostgreSQL's backends for the bench's database used (same machine)."""
    stale_at_end: int = 0
    """Leads whose follow-up state was not yet computed when the load stopped."""
    caught_up_s: float = math.nan
    """Seconds from then until none was (``leadheat keeper`` beside the server)."""
    threads: str = ""
    """Each server process's busiest threads and the keeper's, in cores (:func:`busiest`)."""


@dataclass(frozen=True)
class OpenLoop:
    """Requests sent on a fixed schedule, whatever the answers do."""

    offered: int
    answered: int
    failed: int
    unanswered: int
    seconds: float
    latencies_ms: list[float]
    first_error: str | None


# -- the server --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(
    url: str, port: int, log: Path, workers: int = 1, *, deadline_s: float = 120
) -> subprocess.Popen[bytes]:
    """``leadheat --db URL serve --port PORT [--workers N]``: the command itself, in its own
    process (and its workers' processes)."""
    command = [sys.executable, "-m", "leadheat", "--db", url, "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            # with N workers: uvicorn's N processes and serve's follow-up keeper
            if healthy and (workers == 1 or len(descendants(server.pid)) >= workers + 1):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"the server did not start within {deadline_s:.0f} s")


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, and theirs (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def backend_pids(url: str, name: str) -> list[int]:
    """PostgreSQL's backend processes serving database ``name`` (on this machine)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            return [int(row[0]) for row in rows]
    finally:
        engine.dispose()


def _cpu_used(stat: Path) -> float | None:
    """User and system CPU seconds in a ``/proc`` ``stat`` file (``None``: it is gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds these processes have used so far (Linux ``/proc``)."""
    return sum(_cpu_used(Path(f"/proc/{pid}/stat")) or 0.0 for pid in pids)


def thread_seconds(pids: list[int]) -> dict[tuple[int, int], float]:
    """CPU seconds each thread of these processes has used so far, by ``(pid, thread id)``."""
    used = {}
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            seconds = _cpu_used(task / "stat")
            if seconds is not None:
                used[pid, int(task.name)] = seconds
    return used


def busiest(
    before: dict[tuple[int, int], float], after: dict[tuple[int, int], float], seconds: float
) -> str:
    """Each process's two busiest threads over ``seconds``, in cores: the server's writing
    thread and its event loop, and the keeper's one (a process that is one thread near one
    core, or a thread near one core, is the limit).

    >>> busiest({(1, 1): 0.0, (1, 2): 0.0}, {(1, 1): 3.0, (1, 2): 6.0}, 10.0)
    'process 1: 0.60 + 0.30 cores'
    """
    by_process: dict[int, list[float]] = {}  # in /proc's order: the server before its keeper
    for (pid, thread), used in after.items():
        by_process.setdefault(pid, []).append((used - before.get((pid, thread), 0.0)) / seconds)
    parts = []
    for pid, cores in by_process.items():
        top = sorted(cores, reverse=True)[:2]
        try:
            keeper = "keeper" in Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            keeper = False
        name = "keeper" if keeper else f"process {pid}"
        shown = " + ".join(f"{core:.2f}" for core in top if core >= 0.005)
        parts.append(f"{name}: {shown} cores")
    return "; ".join(parts)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# -- synthetic data ----------------------------------------------------------------------
def batch_template(now: datetime) -> bytes:
    """A Segment batch body of 100 track calls, as the SDKs post it, with three place-holders:
    the batch number (unique message ids), the group of 20 visitors it is about, and the
    microseconds of every timestamp (later in each batch, see the module's docstring)."""
    start = now.replace(microsecond=0) - timedelta(seconds=3600)
    messages = [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": f"user-{GROUP}-{i % VISITORS_PER_BATCH}",
            "properties": {"product_id": f"p-{i}", "price": 19.5 + i},
            "timestamp": f"{(start + timedelta(seconds=i)):%Y-%m-%dT%H:%M:%S}.{MICROS}Z",
            "messageId": f"b{BATCH}-{i}",
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        }
        for i in range(BATCH_SIZE)
    ]
    return json.dumps({"batch": messages, "sentAt": isoformat(now)}).encode()


def batch_body(template: bytes, number: int) -> bytes:
    group = number % (VISITORS // VISITORS_PER_BATCH)
    return (
        template.replace(BATCH.encode(), str(number).encode())
        .replace(GROUP.encode(), str(group).encode())
        .replace(MICROS.encode(), f"{number % 1_000_000:06d}".encode())
    )


def single_body(template: bytes, number: int) -> bytes:
    return template.replace(BATCH.encode(), str(number).encode()).replace(
        GROUP.encode(), str(number % READERS).encode()
    )


def single_template(now: datetime, prefix: str) -> bytes:
    """One ``page_view`` by one of 1,000 readers: place-holders for the event's number and
    the reader's."""
    return json.dumps(
        {
            "id": f"{prefix}-{BATCH}",
            "lead": f"reader-{GROUP}@example.com",
            "type": "page_view",
            "timestamp": isoformat(now - timedelta(minutes=30)),
            "properties": {"url": "https://shop.example/pricing"},
        }
    ).encode()


# -- the clients (run in a separate process) ---------------------------------------------
class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends prepared request bytes and reads the
    answer's status and body: a fraction of an HTTP library's CPU per request, so that the
    client, on the same cores as the server, takes as little of them as it can."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked answers are not read by this client")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def request_bytes(base: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """A whole ``POST`` request as it goes on the wire."""
    host = base.removeprefix("http://")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def closed_loop(
    base: str,
    path: str,
    headers: dict[str, str],
    body: Callable[[int], bytes],
    events_per_request: int,
    seconds: float,
    connections: int,
    server_pids: list[int] | None = None,
    postgres: tuple[str, str] | None = None,
) -> ClosedLoop:
    """Each connection posts the next body as soon as the last one is answered: one second
    of warm-up, then ``seconds`` measured. Bodies are made before they are timed (a template
    with numbers substituted), requests written as bytes on raw keep-alive connections."""
    host, _, port = base.removeprefix("http://").partition(":")
    numbers = itertools.count()
    counts = {"requests": 0, "failed": 0, "accepted": 0}
    errors: list[str] = []
    latencies: list[float] = []
    links = [RawConnection(host, int(port)) for _ in range(connections)]

    async def worker(link: RawConnection, until: float, timed: bool) -> None:
        while time.perf_counter() < until:
            request = request_bytes(base, path, headers, body(next(numbers)))
            sent = time.perf_counter()
            status, answer = await link.send(request)
            if timed:
                latencies.append((time.perf_counter() - sent) * 1000)
            counts["requests"] += 1
            if status == 200:
                counts["accepted"] += events_per_request
            else:
                counts["failed"] += 1
                errors.append(f"{status} {answer[:200].decode(errors='replace')}")

    warm = time.perf_counter() + 1.0
    await asyncio.gather(*(worker(link, warm, False) for link in links))
    counts.update(requests=0, failed=0)
    pids = [*(server_pids or []), *(descendants(server_pids[0]) if server_pids else [])]
    backends = backend_pids(*postgres) if postgres else []
    database_before = cpu_seconds(backends)
    server_before, client_before = cpu_seconds(pids), time.process_time()
    threads_before = thread_seconds(pids)
    start = time.perf_counter()
    await asyncio.gather(*(worker(link, start + seconds, True) for link in links))
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(pids) - server_before if pids else math.nan
    threads = busiest(threads_before, thread_seconds(pids), elapsed) if pids else ""
    client_cpu = time.process_time() - client_before
    database_cpu = cpu_seconds(backends) - database_before if backends else math.nan
    for link in links:
        link.close()
    return ClosedLoop(
        (counts["requests"] - counts["failed"]) * events_per_request,
        counts["requests"],
        counts["failed"],
        elapsed,
        errors[0] if errors else None,
        counts["accepted"],
        latencies,
        server_cpu,
        client_cpu,
        database_cpu,
        threads=threads,
    )


async def open_loop(
    base: str, path: str, headers: dict[str, str], body: Callable[[int], bytes], seconds: float
) -> OpenLoop:
    """Request *k* is sent at ``start + k / RATE``; its latency runs from then to its
    answer. Whatever is unanswered 10 s after the last was due counts as unanswered."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    total = int(RATE * seconds)
    bodies = [body(k) for k in range(total)]
    latencies: list[float] = []
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=DRAIN_SECONDS) as client:
        await client.get("/healthz")  # the first connection, outside the measurement

        async def one(due: float, content: bytes) -> None:
            try:
                answer = await client.post(path, content=content, headers=headers)
            except httpx.HTTPError as error:
                errors.append(repr(error))
                return
            if answer.status_code != 200:
                errors.append(f"{answer.status_code} {answer.text[:200]}")
                return
            latencies.append((time.perf_counter() - due) * 1000)

        start = time.perf_counter()
        tasks = []
        for k, content in enumerate(bodies):
            due = start + k / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, content)))
        _, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - start
    return OpenLoop(
        total,
        len(latencies),
        len(errors),
        len(pending),
        elapsed,
        latencies,
        errors[0] if errors else None,
    )


def client_process(task: str, base: str, key: str, options: dict[str, Any], results: Any) -> None:
    """Entry point of the client process: one phase, its result put on ``results``."""
    now = datetime.now(UTC)
    bearer = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    result: ClosedLoop | OpenLoop
    if task == "batches":
        basic = base64.b64encode(f"{key}:".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
        template = batch_template(now)
        result = asyncio.run(
            closed_loop(
                base,
                "/v1/batch",
                headers,
                lambda n: batch_body(template, n),
                BATCH_SIZE,
                options["seconds"],
                options["connections"],
                options.get("server_pids"),
                options.get("postgres"),
            )
        )
    elif task == "capacity":
        template = single_template(now, "capacity")
        result = asyncio.run(
            closed_loop(
                base,
                "/api/v1/events",
                bearer,
                lambda n: single_body(template, n),
                1,
                options["seconds"],
                options["connections"],
                options.get("server_pids"),
            )
        )
    else:
        template = single_template(now, "steady")
        result = asyncio.run(
            open_loop(
                base,
                "/api/v1/events",
                bearer,
                lambda n: single_body(template, n),
                options["seconds"],
            )
        )
    results.put(result)


def in_client_process(task: str, base: str, key: str, options: dict[str, Any]) -> Any:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=client_process, args=(task, base, key, options, results))
    process.start()
    try:
        result = results.get(timeout=options["seconds"] + DRAIN_SECONDS + 60)
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    return result


# -- the report --------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Config:
    """One way to run the server: a backend and a number of ``serve`` processes."""

    backend: str
    workers: int

    @staticmethod
    def parse(text: str) -> Config:
        backend, _, workers = text.partition(":")
        if backend not in ("sqlite", "postgresql") or not workers.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: use sqlite:N or postgresql:N")
        return Config(backend, int(workers))

    def __str__(self) -> str:
        processes = "1 process" if self.workers == 1 else f"{self.workers} processes"
        return f"{'SQLite' if self.backend == 'sqlite' else 'PostgreSQL'}, {processes}"


@contextmanager
def database(config: Config, folder: Path, postgres: str | None) -> Iterator[str]:
    """A fresh database for one configuration: a SQLite file, or a PostgreSQL database
    created for the run and dropped after it."""
    if config.backend == "sqlite":
        yield f"sqlite:///{folder / f'leadheat-{config.workers}.db'}"
        return
    if postgres is None:
        raise SystemExit("a postgresql configuration needs --postgres URL")
    name = f"leadheat_bench_{os.getpid()}_{config.workers}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def stored_events(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT COUNT(*), COUNT(DISTINCT lead_id) FROM events")
            ).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def run_batches(
    config: Config,
    url: str,
    folder: Path,
    seconds: float,
    connections: int,
    postgres: tuple[str, str] | None = None,
) -> ClosedLoop:
    """Phase 1 against one configuration: a fresh database, ``leadheat serve`` on it, the
    batch client in its own process."""
    with Leadheat(url) as lh:
        lh.init()
        key, _ = lh.create_key("bench", ["ingest"])
    port = free_port()
    log = folder / f"server-{config.backend}-{config.workers}.log"
    server = start_server(url, port, log, config.workers)
    try:
        batches = in_client_process(
            "batches",
            f"http://127.0.0.1:{port}",
            key,
            {
                "seconds": seconds,
                "connections": connections,
                "server_pids": [server.pid],
                "postgres": postgres,
            },
        )
        stale, caught_up = catching_up(url)
        return replace(batches, stale_at_end=stale, caught_up_s=caught_up)
    finally:
        stop_server(server)


def catching_up(url: str, within: float = 60.0) -> tuple[int, float]:
    """How many leads' follow-up state the server's keeper had still to compute when the load
    stopped, and the seconds it then took to compute them (NaN: not within ``within``): the
    keeper keeps up if the first is small and the second short."""
    engine = create_engine(url)
    try:
        start = time.monotonic()
        first = None
        while time.monotonic() - start < within:
            with engine.connect() as connection:
                stale = int(
                    connection.execute(text("SELECT COUNT(*) FROM followup_stale")).scalar_one()
                )
            first = stale if first is None else first
            if stale == 0:
                return first, time.monotonic() - start
            time.sleep(0.05)
        return first or 0, math.nan
    finally:
        engine.dispose()


def batch_row(config: Config, batches: ClosedLoop) -> list[str]:
    rate = batches.events / batches.seconds
    latencies = batches.latencies_ms
    per_core = batches.events / batches.server_cpu_s if batches.server_cpu_s > 0 else math.nan
    return [
        str(config),
        f"{rate:,.0f}",
        f"{statistics.median(latencies):,.1f}" if latencies else "",
        f"{percentile(latencies, 0.99):,.1f}" if latencies else "",
        f"{batches.server_cpu_s / batches.seconds:.2f}",
        f"{per_core:,.0f}",
        f"{batches.client_cpu_s / batches.seconds:.2f}",
        ""
        if math.isnan(batches.database_cpu_s)
        else f"{batches.database_cpu_s / batches.seconds:.2f}",
        "yes" if rate >= GOAL_EVENTS_PER_SECOND and not batches.failed else "NO",
        f"{batches.requests:,} requests, {batches.failed} refused",
    ]


def batch_table(rows: list[list[str]], connections: int, seconds: float) -> Table:
    table = Table(
        title=f"POST /v1/batch, {BATCH_SIZE} track calls a request, {connections} connections "
        f"back to back for {seconds:.0f} s; data: {LABEL}",
        title_justify="left",
    )
    for name in (
        "config",
        "events/s",
        "p50 ms",
        "p99 ms",
        "server cores",
        "events per server CPU-s",
        "client cores",
        "PostgreSQL cores",
        f">= {GOAL_EVENTS_PER_SECOND:,}/s",
        "detail",
    ):
        table.add_column(name, justify="left" if name in ("config", "detail") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def report(capacity: ClosedLoop, steady: OpenLoop) -> None:
    answered = steady.latencies_ms
    p50 = statistics.median(answered) if answered else math.nan
    p99 = percentile(answered, 0.99) if answered else math.nan
    achieved = steady.answered / steady.seconds
    kept_up = steady.answered == steady.offered
    table = Table(title=f"single events, SQLite, 1 process; data: {LABEL}", title_justify="left")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("goal", justify="right")
    table.add_column("met")
    table.add_column("detail")
    table.add_row(
        "POST /api/v1/events, one event (context)",
        f"{capacity.requests / capacity.seconds:,.0f} req/s",
        "",
        "",
        f"most the server answers: {CAPACITY_CONNECTIONS} connections back to back for "
        f"{capacity.seconds:.1f} s; {capacity.failed} refused",
    )
    table.add_row(
        f"POST /api/v1/events at {RATE}/s: p50",
        f"{p50:,.1f} ms",
        "",
        "",
        f"{steady.answered:,} of {steady.offered:,} answered over {steady.seconds:.1f} s "
        f"({achieved:.0f}/s); {steady.failed} failed, {steady.unanswered} unanswered",
    )
    table.add_row(
        f"POST /api/v1/events at {RATE}/s: p99",
        f"{p99:,.1f} ms",
        f"<= {GOAL_P99_MS:.0f} ms",
        "yes" if p99 <= GOAL_P99_MS and kept_up and not steady.failed else "NO",
        f"max {max(answered, default=math.nan):,.1f} ms; open loop, latency from when due",
    )
    out.print(table)
    for name, error in (("capacity", capacity.first_error), ("steady", steady.first_error)):
        if error:
            out.print(f"first {name} failure: {error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of batches")
    parser.add_argument("--connections", type=int, default=8, help="concurrent batch posters")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="seconds at 200/s")
    parser.add_argument(
        "--config",
        type=Config.parse,
        action="append",
        help="backend:processes, e.g. sqlite:1 or postgresql:2 (repeatable; default sqlite:1, "
        "and postgresql:1 and postgresql:2 with --postgres)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LEADHEAT_BENCH_POSTGRES_URL"),
        help="a PostgreSQL URL whose user may create databases (one is made per "
        "configuration and dropped after it); default $LEADHEAT_BENCH_POSTGRES_URL",
    )
    parser.add_argument(
        "--no-single", action="store_true", help="skip the single-event phases (2 and 3)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 60 or not 1 <= args.latency_seconds <= 60:
        parser.error("durations are 1 to 60 seconds")
    configs = args.config or [
        Config("sqlite", 1),
        *([Config("postgresql", 1), Config("postgresql", 2)] if args.postgres else []),
    ]

    out.print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    out.print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"{platform.platform()}; load average {os.getloadavg()[0]:.2f} at start"
    )
    out.print(
        f"versions: leadheat {__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, uvicorn {uvicorn.__version__}, "
        f"FastAPI {fastapi.__version__}"
    )
    rows: list[list[str]] = []
    checks: list[str] = []
    single: tuple[ClosedLoop, OpenLoop] | None = None
    with tempfile.TemporaryDirectory(prefix="leadheat-bench-") as folder:
        root = Path(folder)
        for config in configs:
            with database(config, root, args.postgres) as url:
                watched = (
                    (args.postgres, str(make_url(url).database))
                    if config.backend == "postgresql"
                    else None
                )
                batches = run_batches(config, url, root, args.duration, args.connections, watched)
                stored, leads = stored_events(url)
            rows.append(batch_row(config, batches))
            verdict = "" if stored == batches.accepted_in_all else "  MISMATCH"
            checks.append(
                f"check, {config}: the database holds {stored:,} events of {leads:,} leads; "
                f"{batches.accepted_in_all:,} were answered 200, warm-up included{verdict}"
            )
            checks.append(
                f"follow-up state, {config}: {batches.stale_at_end:,} leads still to compute "
                f"when the load stopped, all computed {batches.caught_up_s:.2f} s later"
            )
            checks.append(f"busiest threads, {config}: {batches.threads}")
            if batches.first_error:
                checks.append(f"first failure, {config}: {batches.first_error}")
        if not args.no_single:
            single = single_events(root, args.latency_seconds)
    out.print(batch_table(rows, args.connections, args.duration))
    out.print(
        "server cores: the server's CPU seconds (every process) per second measured; events "
        "per server CPU-s: what one core of server time carries (the capacity with the client "
        "and other jobs taken away); client cores: the load generator's own; PostgreSQL cores: "
        "its backends serving the bench's database"
    )
    for line in checks:
        out.print(line)
    if single is not None:
        report(*single)


def single_events(root: Path, latency_seconds: float) -> tuple[ClosedLoop, OpenLoop]:
    """Phases 2 and 3, against one ``leadheat serve`` process on SQLite."""
    url = f"sqlite:///{root / 'single.db'}"
    with Leadheat(url) as lh:
        lh.init()
        key, _ = lh.create_key("bench", ["ingest"])
    port = free_port()
    server = start_server(url, port, root / "server-single.log")
    base = f"http://127.0.0.1:{port}"
    try:
        capacity = in_client_process(
            "capacity", base, key, {"seconds": 3.0, "connections": CAPACITY_CONNECTIONS}
        )
        steady = in_client_process("steady", base, key, {"seconds": latency_seconds})
    finally:
        stop_server(server)
    stored, _ = stored_events(url)
    expected = capacity.accepted_in_all + steady.answered
    if not expected <= stored <= expected + steady.unanswered + steady.failed:
        out.print(f"check, single events: MISMATCH, {stored:,} stored, {expected:,} answered")
    return capacity, steady


if __name__ == "__main__":
    main()
