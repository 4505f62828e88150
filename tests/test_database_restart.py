"""A PostgreSQL restart under load: requests during the outage get 503 with Retry-After
(never a lost acknowledgement), and the server carries on by itself afterwards."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from conftest import POSTGRES_URL, LiveServer
from leadheat.service import Leadheat
from leadheat.store.models import Event


def _cluster() -> list[str] | None:
    """The ``pg_ctlcluster`` command line of the local Debian cluster, if this process may
    restart it (CI runs as root, as .ci/run starts the cluster)."""
    clusters = (
        sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    )
    if not clusters or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1].parent.name, "main"]


@pytest.mark.slow
@pytest.mark.exclusive
@pytest.mark.skipif(POSTGRES_URL is None, reason="LEADHEAT_TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_server_rides_out_a_postgresql_restart(db_url: str) -> None:
    command = _cluster()
    if command is None:
        pytest.skip(
            "cannot restart the local PostgreSQL cluster here (needs root and pg_ctlcluster)"
        )
    lh = Leadheat(db_url)
    lh.init()
    server = LiveServer(lh, rate_limit=0)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{server.ingest_key}:".encode()).decode()}
    acknowledged: set[str] = set()
    statuses: list[int] = []
    stop = threading.Event()

    def send() -> None:
        number = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                message_id = f"r-{number}"
                try:
                    answer = client.post(
                        f"{server.url}/v1/track",
                        json={
                            "userId": f"u{number % 20}",
                            "event": "page_view",
                            "messageId": message_id,
                        },
                        headers=auth,
                    )
                except httpx.TransportError:
                    continue
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    acknowledged.add(message_id)
                    number += 1
                else:
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["Retry-After"] == "1"
                    time.sleep(0.05)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        time.sleep(1)
        subprocess.run([*command, "restart", "-m", "fast"], check=True, capture_output=True)
        deadline = time.monotonic() + 30
        before = len(acknowledged)
        while len(acknowledged) < before + 50:
            assert time.monotonic() < deadline, "ingestion did not resume after the restart"
            time.sleep(0.05)
    finally:
        stop.set()
        sender.join(30)
        server.stop()
    assert 500 not in statuses
    with lh.engine.connect() as connection:
        stored = {row[0] for row in connection.execute(select(Event.event_id))}
        total = connection.execute(select(func.count()).select_from(Event)).scalar_one()
    assert acknowledged <= stored and total == len(stored)
    lh.close()
