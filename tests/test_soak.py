"""A short soak (the long one is ``bench/reliability.py``): mixed ingestion and reads at a
fixed rate against a real server for a few seconds, with zero errors and bounded memory."""

from __future__ import annotations

import base64
import resource
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import LiveServer

SECONDS = 6.0
Send = Callable[[httpx.Client, int], httpx.Response]


@pytest.mark.slow
def test_mixed_load_without_errors_or_growth(live_server: LiveServer) -> None:
    basic = base64.b64encode(f"{live_server.ingest_key}:".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    read = {"Authorization": f"Bearer {live_server.read_key}"}
    statuses: list[int] = []
    lock = threading.Lock()

    def run(rate: float, send: Send) -> None:
        with httpx.Client(timeout=10) as client:
            start, number = time.monotonic(), 0
            while time.monotonic() - start < SECONDS:
                time.sleep(max(0.0, start + number / rate - time.monotonic()))
                answer = send(client, number)
                number += 1
                with lock:
                    statuses.append(answer.status_code)

    def ingest(client: httpx.Client, number: int) -> httpx.Response:
        batch = [
            {
                "type": "track",
                "userId": f"u{(number * 5 + k) % 300}",
                "event": "page_view",
                "messageId": f"{number}-{k}",
            }
            for k in range(5)
        ]
        return client.post(f"{live_server.url}/v1/batch", json={"batch": batch}, headers=auth)

    def lists(client: httpx.Client, number: int) -> httpx.Response:
        path = "/api/v1/hot" if number % 2 else "/api/v1/leads?limit=20"
        return client.get(f"{live_server.url}{path}", headers=read)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    threads = [
        threading.Thread(target=run, args=(20.0, ingest)),
        threading.Thread(target=run, args=(10.0, lists)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(statuses) > 0.6 * 30 * SECONDS
    assert set(statuses) == {200}, sorted(set(statuses))
    assert grown_mb < 100, grown_mb  # the server runs in this process (a thread)
