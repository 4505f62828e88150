"""Segment's limits on every ingest route, over a real server: 32 KB a record or event and
500 KB a list of events on the REST routes too (they stored events of several MB), refused
with 413 naming the place before anything is stored."""

from __future__ import annotations

import httpx

from conftest import LiveServer


def _event(n: int, size: int) -> dict[str, object]:
    return {
        "id": f"e{n}",
        "lead": "ana@example.com",
        "type": "page_view",
        "properties": {"x": "a" * size},
    }


def test_rest_ingest_routes_hold_records_to_32_kb_and_lists_to_500_kb(
    live_server: LiveServer,
) -> None:
    url = f"{live_server.url}/api/v1"
    ingest = {"Authorization": f"Bearer {live_server.ingest_key}"}
    admin = {"Authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(timeout=30) as client:
        refused = [
            (client.post(f"{url}/events", json=_event(0, 3_000_000), headers=ingest), "body"),
            (client.post(f"{url}/events", json=_event(0, 40_000), headers=ingest), "body"),
            (
                client.post(
                    f"{url}/events", json=[_event(0, 100), _event(1, 40_000)], headers=ingest
                ),
                "[1]",
            ),
            (
                client.post(
                    f"{url}/events", json=[_event(n, 30_000) for n in range(20)], headers=ingest
                ),
                "body",
            ),
            (
                client.post(
                    f"{url}/leads",
                    json={"email": "bo@example.com", "attributes": {"notes": "b" * 40_000}},
                    headers=ingest,
                ),
                "body",
            ),
            (
                client.post(
                    f"{url}/leads/ana@example.com/evidence",
                    json={"kind": "budget", "value": "c" * 40_000},
                    headers=admin,
                ),
                "body",
            ),
            (
                client.patch(
                    f"{url}/leads/ana@example.com",
                    json={"attributes": {"notes": "d" * 40_000}},
                    headers=admin,
                ),
                "body",
            ),
        ]
        for answer, field in refused:
            assert answer.status_code == 413, (answer.request.url, answer.text[:200])
            assert answer.json()["field"] == field
            assert "the limit is" in answer.json()["error"]
        assert live_server.lh.leads() == []  # nothing was stored
        # what fits is taken: fifteen events of 30 KB (450 KB) in one list
        fits = client.post(
            f"{url}/events", json=[_event(n, 30_000) for n in range(15)], headers=ingest
        )
        assert fits.status_code == 200, fits.text[:200]
        assert fits.json()["stored"] == 15
