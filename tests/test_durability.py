"""An event acknowledged with 2xx is never lost: the server is killed with SIGKILL in the
middle of sustained ingestion, several times, and restarted; every acknowledged messageId
must be stored exactly once, and the stored heat must equal a replay of the history."""

from __future__ import annotations

import base64
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from conftest import free_port, serve
from leadheat.service import Leadheat
from leadheat.store.models import Event

KILLS = 3


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill(db_url: str, tmp_path: Path) -> None:
    lh = Leadheat(db_url)
    lh.init()
    key, _ = lh.create_key("durability", ["ingest"])
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    port = free_port()
    acknowledged: set[str] = set()
    stop = threading.Event()
    now = datetime.now(UTC)

    def send() -> None:
        """An SDK: batches of 20 track calls; a batch without an answer is sent again."""
        number = 0
        pending: list[dict[str, object]] | None = None
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                if pending is None:
                    pending = [
                        {
                            "type": "track",
                            "userId": f"user{(number + k) % 50}",
                            "event": "product_view" if k % 3 else "add_to_cart",
                            "messageId": f"m-{number + k}",
                            "timestamp": (now - timedelta(minutes=(number + k) % 600)).isoformat(),
                        }
                        for k in range(20)
                    ]
                    number += 20
                try:
                    answer = client.post(
                        f"http://127.0.0.1:{port}/v1/batch", json={"batch": pending}, headers=auth
                    )
                except httpx.TransportError:
                    time.sleep(0.02)  # the server is down: keep the batch, try again
                    continue
                if answer.status_code == 200:
                    acknowledged.update(str(m["messageId"]) for m in pending)
                    pending = None

    log = tmp_path / "server.log"
    server = serve(db_url, port, log)
    sender = threading.Thread(target=send)
    sender.start()
    try:
        for _ in range(KILLS):
            before = len(acknowledged)
            deadline = time.monotonic() + 20
            while len(acknowledged) < before + 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.send_signal(signal.SIGKILL)  # mid-ingestion: requests are in flight
            server.wait(10)
            server = serve(db_url, port, log)
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(30)
        server.terminate()
        server.wait(10)
    assert len(acknowledged) >= KILLS * 200
    assert key not in log.read_text()  # secrets are never logged (access log included)
    with lh.engine.connect() as connection:
        stored = {row[0] for row in connection.execute(select(Event.event_id))}
        total = connection.execute(select(func.count()).select_from(Event)).scalar_one()
    assert acknowledged <= stored, f"lost: {sorted(acknowledged - stored)[:5]}"
    assert total == len(stored)  # each id once
    then = datetime.now(UTC)  # one instant for both: heat decays between two calls
    rows = lh.leads(at=then)
    assert len(rows) == 50
    for row in rows:
        replayed = lh.show(row.lead_id, at=then).score.heat
        assert abs(row.heat - replayed) <= 1e-9 * max(1.0, replayed), (
            row.email,
            row.heat,
            replayed,
        )
    lh.close()
