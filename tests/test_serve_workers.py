"""``leadheat serve --workers N``: several server processes on one port and one database.

The batch is posted by several clients at once, each request answered by whichever process
accepts it, and every message id is sent twice: what is stored must be each event once, as
with one process (PostgreSQL settles the race for a new lead by retrying; SQLite by its write
lock).
"""

from __future__ import annotations

import base64
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from conftest import free_port, serve
from leadheat.service import Leadheat
from leadheat.times import isoformat


def _batch(first: int, now: datetime) -> dict[str, object]:
    return {
        "batch": [
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": f"visitor-{n % 7}",
                "messageId": f"m-{n}",
                "timestamp": isoformat(now - timedelta(minutes=n)),
            }
            for n in range(first, first + 20)
        ]
    }


def test_several_processes_store_each_event_once(db_url: str, tmp_path: Path) -> None:
    with Leadheat(db_url) as lh:
        lh.init()
        key, _ = lh.create_key("site", ["ingest"])
    port, log = free_port(), tmp_path / "serve.log"
    server = serve(db_url, port, log, "--workers", "2", within=120)
    try:
        auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        now = datetime.now(UTC)
        bodies = [_batch(first, now) for first in (0, 20, 40, 60)] * 2  # each sent twice
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

            def post(body: dict[str, object]) -> int:
                return client.post(
                    "/v1/batch", json=body, headers={"Authorization": auth}
                ).status_code

            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(post, bodies)) == [200] * 8
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert len(set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))) == 2
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            events, leads = connection.execute(
                text("SELECT COUNT(*), COUNT(DISTINCT lead_id) FROM events")
            ).one()
            identities = connection.execute(
                text("SELECT COUNT(*) FROM identities WHERE kind = 'external'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert (events, leads, identities) == (80, 7, 7)
