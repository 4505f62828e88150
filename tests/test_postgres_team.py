"""PostgreSQL for teams: four ``leadheat serve`` processes, started together on one empty
database (each migrates it at start), ingest concurrently into the same leads. Nothing may be
lost or counted twice: every lead's event count and heat equal a replay of its history, and
equal what the events sent say.

Runs only with ``LEADHEAT_TEST_POSTGRES_URL`` set (``.ci/run`` sets it); each run gets its
own schema.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from conftest import free_port
from leadheat.identity import parse_lead_key
from leadheat.playbook import default_playbook_text, parse_playbook
from leadheat.rescore import rescore_in_process
from leadheat.scoring.heat import Engagement, replay_heat
from leadheat.service import Leadheat
from leadheat.store.database import make_engine
from leadheat.store.events import NewEvent
from leadheat.times import isoformat

PROCESSES = 4
LEADS = 12
EVENTS = 2_400
BATCH = 40
TYPES = ("page_view", "product_view", "demo_request", "email_open", "trial_expired")


def start(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "leadheat", "--db", url, "serve", "--port", str(port)]
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def wait_healthy(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"a server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"a server did not start in 60 s:\n{log.read_text()}")


def test_four_processes_ingesting_into_the_same_leads_lose_no_update(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip(
            "PostgreSQL only: set LEADHEAT_TEST_POSTGRES_URL (the SQLite run has one writer)"
        )
    url = db_url + "&pool_size=4&max_overflow=2"
    ports = [free_port() for _ in range(PROCESSES)]
    logs = [tmp_path / f"serve{n}.log" for n in range(PROCESSES)]
    servers = [start(url, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for server, port, log in zip(servers, ports, logs, strict=True):
            wait_healthy(server, port, log)
        setup = Leadheat(url)
        key, _ = setup.create_key("team test", ["ingest"])
        setup.engine.dispose()
        now = datetime.now(UTC)
        rng = random.Random(10)
        events = [
            {
                "id": f"ev-{n}",
                "lead": f"shared{rng.randrange(LEADS)}@example.com",
                "type": rng.choice(TYPES),
                "timestamp": isoformat(now - timedelta(minutes=rng.randrange(1, 60 * 24 * 10))),
            }
            for n in range(EVENTS)
        ]
        batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
        # every batch goes to two different processes at once: redeliveries race too
        jobs = [(ports[n % PROCESSES], b) for n, b in enumerate(batches)]
        jobs += [(ports[(n + 1) % PROCESSES], b) for n, b in enumerate(batches)]
        rng.shuffle(jobs)

        def post(job: tuple[int, list[dict[str, str]]]) -> int:
            port, batch = job
            answer = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/events",
                json=batch,
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            return int(answer.json()["stored"])

        with ThreadPoolExecutor(PROCESSES * 2) as pool:
            stored = sum(pool.map(post, jobs))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
    assert stored == EVENTS  # each event stored once, by whichever process came first
    assert sum("Traceback" in log.read_text() for log in logs) == 0
    check = create_engine(db_url)
    with check.connect() as connection:
        versions = connection.execute(text("SELECT count(*) FROM playbook_versions")).scalar()
        states = {
            row.email: (row.events_count, row.last_engaged_at)
            for row in connection.execute(
                text(
                    "SELECT l.email, s.events_count, s.last_engaged_at FROM lead_states s "
                    "JOIN leads l ON l.id = s.lead_id"
                )
            )
        }
    check.dispose()
    assert versions == 1  # four processes set the database up once
    sent = Counter(e["lead"] for e in events)
    assert {email: count for email, (count, _) in states.items()} == dict(sent)
    lh = Leadheat(url)
    ingested = {row.email: row.heat for row in lh.leads(at=now)}
    rescore_in_process(lh)  # the replay: every lead rebuilt from its stored history
    replayed = {row.email: row.heat for row in lh.leads(at=now)}
    book = parse_playbook(default_playbook_text())
    history: dict[str, list[Engagement]] = defaultdict(list)
    for e in events:
        at = datetime.fromisoformat(e["timestamp"])
        history[e["lead"]].append(
            Engagement(at, book.points_for(e["type"]), book.half_life_for(e["type"]))
        )
    assert ingested.keys() == replayed.keys() == sent.keys()
    for email, heat in ingested.items():
        assert math.isclose(heat, replayed[email], rel_tol=1e-12), email
        assert math.isclose(heat, replay_heat(history[email], now), rel_tol=1e-9), email
    lh.engine.dispose()


def test_pool_settings_come_from_the_database_url() -> None:
    engine = make_engine(
        "postgresql+psycopg://leadheat@db.internal/leadheat?pool_size=7&max_overflow=3&pool_timeout=4"
    )
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (7, 3, 4.0)  # type: ignore[attr-defined]
    assert "pool_size" not in str(engine.url)
    with pytest.raises(ValueError, match="pool_size='many' is not a number"):
        make_engine("postgresql+psycopg://db/leadheat?pool_size=many")


def test_writers_creating_the_same_new_leads_in_opposite_orders_do_not_deadlock(
    db_url: str,
) -> None:
    """Two writers, each with a batch of events for the same brand-new leads listed in
    opposite orders, started together round after round: both batches are stored, each
    lead exactly once. (Inserting identities in batch order let each writer hold a key the
    other waited for, and PostgreSQL refused one with a deadlock: a 503 to the client.)"""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    writers = [Leadheat(db_url) for _ in range(2)]
    writers[0].init()
    now = datetime.now(UTC)
    rounds, width = 30, 30
    gate = threading.Barrier(2)

    def write(side: int) -> int:
        stored = 0
        for round_ in range(rounds):
            emails = [f"r{round_}-n{n}@example.com" for n in range(width)]
            order = emails if side == 0 else emails[::-1]
            batch = [
                NewEvent(parse_lead_key(email), "page_view", now, f"w{side}-{round_}-{email}")
                for email in order
            ]
            gate.wait(timeout=30)
            try:
                stored += writers[side].record_events(batch).stored
            except Exception:
                gate.abort()  # the other writer stops waiting for this one
                raise
        return stored

    try:
        with ThreadPoolExecutor(2) as pool:
            stored = sum(pool.map(write, (0, 1)))
        assert stored == 2 * rounds * width
        with writers[0].engine.connect() as connection:
            leads = connection.execute(text("SELECT COUNT(*) FROM leads")).scalar_one()
            identities = connection.execute(text("SELECT COUNT(*) FROM identities")).scalar_one()
        assert leads == identities == rounds * width
    finally:
        for writer in writers:
            writer.close()
