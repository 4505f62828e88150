"""The REST API on a real server: keys and scopes, leads, events, errors that name fields."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import Cli, LiveServer
from leadheat.times import isoformat


def client(server: LiveServer, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


def call(
    server: LiveServer, key: str | None, method: str, path: str, **kwargs: object
) -> httpx.Response:
    """One request with its own connection, closed after."""
    with client(server, key) as session:
        return session.request(method, path, **kwargs)  # type: ignore[arg-type]


def recent(hours: float = 1) -> str:
    return isoformat(datetime.now(UTC) - timedelta(hours=hours)) or ""


def test_keys_and_scopes(live_server: LiveServer) -> None:
    assert call(live_server, None, "GET", "/api/v1/leads").status_code == 401
    wrong = call(live_server, "lh_nope_nope", "GET", "/api/v1/leads")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "the API key is unknown or revoked"
    assert call(live_server, live_server.ingest_key, "GET", "/api/v1/leads").status_code == 403
    assert call(live_server, live_server.read_key, "GET", "/api/v1/leads").status_code == 200
    event = {"lead": "a@example.com", "type": "form_submit"}
    assert (
        call(live_server, live_server.read_key, "POST", "/api/v1/events", json=event).status_code
        == 403
    )
    assert (
        call(live_server, live_server.ingest_key, "POST", "/api/v1/events", json=event).status_code
        == 200
    )
    assert live_server.lh.revoke_key("tests (read)") == 1  # revoking clears the key cache
    assert call(live_server, live_server.read_key, "GET", "/api/v1/leads").status_code == 401


def test_events_leads_and_lists(live_server: LiveServer) -> None:
    with client(live_server, live_server.admin_key) as admin:
        _events_leads_and_lists(admin)


def _events_leads_and_lists(admin: httpx.Client) -> None:
    created = admin.post(
        "/api/v1/leads",
        json={
            "email": "VP@Example.com",
            "title": "VP Sales",
            "company": "Acme",
            "attributes": {"company_size": 120},
        },
    )
    assert created.status_code == 200, created.text
    events = [
        {"id": "e1", "lead": "vp@example.com", "type": "trial_signup", "timestamp": recent(2)},
        {"id": "e2", "lead": "vp@example.com", "type": "demo_request", "timestamp": recent(1)},
    ]
    assert admin.post("/api/v1/events", json=events).json() == {
        "stored": 2,
        "duplicates": 0,
        "leads_created": 0,
    }
    assert admin.post("/api/v1/events", json=events).json()["duplicates"] == 2
    for kind in ("need", "budget", "timeline"):
        answer = admin.post(
            "/api/v1/leads/vp@example.com/evidence",
            json={"kind": kind, "value": "yes", "timestamp": recent(3)},
        )
        assert answer.status_code == 200, answer.text
    hot = admin.get("/api/v1/hot").json()
    assert [row["email"] for row in hot] == ["vp@example.com"]
    shown = admin.get("/api/v1/leads/vp@example.com").json()
    assert shown["temperature"] == "hot" and shown["lead"]["company"] == "Acme"
    assert admin.patch("/api/v1/leads/vp@example.com", json={"owner": "rita"}).status_code == 200
    page = admin.get("/api/v1/leads", params={"owner": "rita"}).json()
    assert [row["owner"] for row in page["items"]] == ["rita"]
    timeline = admin.get("/api/v1/leads/vp@example.com/timeline").json()
    assert [item["kind"] for item in timeline].count("event") == 2
    assert admin.get("/api/v1/leads/vp@example.com/explanation").json()["heat"]
    done = {"ok": True, "lead": shown["lead"]["id"]}
    assert admin.post("/api/v1/leads/vp@example.com/touches", json={"kind": "call"}).json() == done
    assert (
        admin.post("/api/v1/leads/vp@example.com/outcomes", json={"outcome": "won"}).json() == done
    )
    assert admin.get("/api/v1/hot").json() == []


def test_cursor_pages_cover_every_lead_once(live_server: LiveServer) -> None:
    with client(live_server, live_server.admin_key) as admin:
        _pages(admin)


def _pages(admin: httpx.Client) -> None:
    events = [
        {"id": f"p{i}", "lead": f"p{i}@example.com", "type": "page_view", "timestamp": recent(i)}
        for i in range(1, 13)
    ]
    assert admin.post("/api/v1/events", json=events).json()["stored"] == 12
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/leads", params=params).json()
        seen += [row["email"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i}@example.com" for i in range(1, 13)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lead": "x@example.com", "type": "page_view", "timestamp": "yesterday"}, "timestamp"),
        ({"lead": "x@example.com"}, "type"),
        ({"lead": "", "type": "page_view"}, "lead"),
        (
            [{"lead": "a@example.com", "type": "a"}, {"lead": "not an @ email", "type": "a"}],
            "[1].lead",
        ),
        ({"lead": "x@example.com", "type": "a", "timestamp": "2099-01-01T00:00:00Z"}, "timestamp"),
    ],
)
def test_bad_events_name_the_field_and_store_nothing(
    live_server: LiveServer, body: object, field: str
) -> None:
    answer = call(live_server, live_server.admin_key, "POST", "/api/v1/events", json=body)
    assert 400 <= answer.status_code < 500
    assert answer.json()["field"] == field, answer.json()
    listed = call(live_server, live_server.admin_key, "GET", "/api/v1/leads")
    assert listed.json()["items"] == []


def test_playbook_read_and_replace(live_server: LiveServer) -> None:
    read, admin = live_server.read_key, live_server.admin_key
    assert call(live_server, read, "GET", "/api/v1/playbook").json()["version"] == 1
    assert (
        call(live_server, read, "PUT", "/api/v1/playbook", json={"source": ""}).status_code == 403
    )
    bad = call(
        live_server,
        admin,
        "PUT",
        "/api/v1/playbook",
        json={"source": "[temperature]\nhot_heat = 'x'\n"},
    )
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["line"]) == ("temperature.hot_heat", 2)
    good = call(
        live_server,
        admin,
        "PUT",
        "/api/v1/playbook",
        json={"source": "[decay]\nhalf_life = '3d'\n"},
    )
    assert good.json()["version"] == 2


def test_a_playbook_applied_from_the_cli_is_the_one_a_running_server_answers_and_scores_with(
    live_server: LiveServer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest, read = live_server.ingest_key, live_server.read_key
    signal = {"lead": "early@example.com", "type": "webinar_joined"}
    assert call(live_server, ingest, "POST", "/api/v1/events", json=signal).status_code == 200
    assert call(live_server, read, "GET", "/api/v1/playbook").json()["version"] == 1
    assert call(live_server, read, "GET", "/api/v1/leads/early@example.com").json()["heat"] == 0

    book = tmp_path / "webinars.toml"
    book.write_text("[signals.webinar_joined]\npoints = 40\n", encoding="utf-8")
    assert Cli(db_url, capsys)("playbook", "apply", str(book))[0] == 0  # another process's view

    # the next write scores by version 2 at once: its transaction asks which version is current
    signal = {"lead": "late@example.com", "type": "webinar_joined"}
    assert call(live_server, ingest, "POST", "/api/v1/events", json=signal).status_code == 200
    listed = call(live_server, read, "GET", "/api/v1/leads").json()["items"]
    heat = {item["email"]: item["heat"] for item in listed}
    assert heat["late@example.com"] == pytest.approx(40, rel=1e-3)
    assert heat["early@example.com"] == pytest.approx(40, rel=1e-3)  # re-scored by the apply
    deadline = time.monotonic() + 5
    while call(live_server, read, "GET", "/api/v1/playbook").json()["version"] != 2:
        assert time.monotonic() < deadline, "the server still answers version 1 after 5 s"
        time.sleep(0.1)
    shown = call(live_server, read, "GET", "/api/v1/leads/late@example.com").json()
    assert shown["heat"] == pytest.approx(40, rel=1e-3)


def test_segment_single_calls_gzip_and_limits(live_server: LiveServer) -> None:
    key = live_server.ingest_key
    track = {
        "userId": "u1",
        "event": "Product Viewed",
        "properties": {"sku": "shoe"},
        "timestamp": recent(1),
        "messageId": "m1",
    }
    plain = httpx.post(f"{live_server.url}/v1/track", json=track, auth=(key, ""))
    assert (plain.status_code, plain.json()) == (200, {"success": True})
    zipped = httpx.post(
        f"{live_server.url}/v1/track",
        content=gzip.compress(json.dumps({**track, "messageId": "m2", "writeKey": key}).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert zipped.status_code == 200, zipped.text
    assert live_server.lh.show("u1").score.events_seen == 2
    big = {**track, "properties": {"blob": "x" * 40_000}}
    assert httpx.post(f"{live_server.url}/v1/track", json=big, auth=(key, "")).status_code == 413
    bomb = gzip.compress(b"{" + b" " * 5_000_000 + b"}")
    answer = httpx.post(
        f"{live_server.url}/v1/batch",
        content=bomb,
        headers={"Content-Encoding": "gzip"},
        auth=(key, ""),
    )
    assert answer.status_code == 413
    assert httpx.post(f"{live_server.url}/v1/track", json=track).status_code == 401


def test_concurrent_writers_all_succeed(live_server: LiveServer) -> None:
    """Requests writing at once queue for the write lock instead of failing."""
    from concurrent.futures import ThreadPoolExecutor

    def send(worker: int) -> list[int]:
        with client(live_server, live_server.ingest_key) as session:
            return [
                session.post(
                    "/api/v1/events",
                    json={
                        "id": f"w{worker}-{n}",
                        "lead": f"lead{n % 5}@example.com",
                        "type": "page_view",
                        "timestamp": recent(0.5),
                    },
                ).status_code
                for n in range(25)
            ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [code for batch in pool.map(send, range(8)) for code in batch]
    assert codes == [200] * 200
    shown = [live_server.lh.show(f"lead{n}@example.com").score.events_seen for n in range(5)]
    assert shown == [40] * 5


def test_unknown_fields_are_kept_not_refused(live_server: LiveServer) -> None:
    admin = live_server.admin_key
    event = {
        "id": "u1",
        "lead": "kim@example.com",
        "type": "form_submit",
        "plan": "pro",
        "properties": {"url": "/signup"},
    }
    assert call(live_server, admin, "POST", "/api/v1/events", json=event).status_code == 200
    lead = {"email": "kim@example.com", "favourite_colour": "teal", "attributes": {"tier": 2}}
    assert call(live_server, admin, "POST", "/api/v1/leads", json=lead).status_code == 200
    assert (
        call(
            live_server, admin, "PATCH", "/api/v1/leads/kim@example.com", json={"shoe_size": 42}
        ).status_code
        == 200
    )
    timeline = call(live_server, admin, "GET", "/api/v1/leads/kim@example.com/timeline").json()
    assert timeline[0]["properties"] == {"plan": "pro", "url": "/signup"}
    shown = call(live_server, admin, "GET", "/api/v1/leads/kim@example.com").json()
    assert shown["lead"]["attributes"] == {"favourite_colour": "teal", "tier": 2, "shoe_size": 42}
