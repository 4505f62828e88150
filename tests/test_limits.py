"""Abuse controls over a real server: per-key rate limits on the ingest routes (429 with
Retry-After), a cap on request bodies, and security headers on every response."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from leadheat.service import Leadheat


@pytest.fixture
def strict_server(tmp_path) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    lh = Leadheat(f"sqlite:///{tmp_path / 'limits.db'}")
    lh.init()
    server = LiveServer(lh, rate_limit=5, max_body=20_000)
    yield server
    server.stop()
    lh.close()


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_each_key_has_its_own_bucket_and_is_told_when_to_retry(strict_server: LiveServer) -> None:
    url = f"{strict_server.url}/v1/track"
    codes = []
    with httpx.Client() as client:
        for number in range(15):  # burst of 10 (twice the rate), then refusals
            answer = client.post(
                url,
                json={"userId": f"u{number}", "event": "page_view", "messageId": f"m{number}"},
                headers=_basic(strict_server.ingest_key),
            )
            codes.append(answer.status_code)
        refused = answer
        assert codes.count(200) >= 10 and codes[-1] == 429, codes
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"].startswith("too many requests")
        assert refused.json()["code"] == 429  # Segment's shape too, for the SDKs
        # another key is not affected; reads are not limited
        other, _ = strict_server.lh.create_key("other page", ["ingest"])
        fine = client.post(url, json={"userId": "x", "event": "e"}, headers=_basic(other))
        assert fine.status_code == 200
        bearer = {"Authorization": f"Bearer {strict_server.admin_key}"}
        assert all(
            client.get(f"{strict_server.url}/api/v1/hot", headers=bearer).status_code == 200
            for _ in range(15)
        )
        time.sleep(float(refused.headers["Retry-After"]))
        again = client.post(
            url, json={"userId": "y", "event": "e"}, headers=_basic(strict_server.ingest_key)
        )
        assert again.status_code == 200
    # what was refused was not stored: one lead per accepted call (and x, y)
    assert len(strict_server.lh.leads()) == codes.count(200) + 2


def test_bodies_over_the_limit_are_refused_before_they_are_read(strict_server: LiveServer) -> None:
    bearer = {"Authorization": f"Bearer {strict_server.admin_key}"}
    big = {"lead": "ana@example.com", "type": "page_view", "properties": {"x": "a" * 30_000}}
    answer = httpx.post(f"{strict_server.url}/api/v1/events", json=big, headers=bearer)
    assert answer.status_code == 413
    assert answer.json()["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"lead": "ana@example.com", "type": "page_view", "properties": {"x": "'
        for _ in range(40):
            yield b"a" * 1000
        yield b'"}}'

    streamed = httpx.post(
        f"{strict_server.url}/api/v1/events",
        content=chunks(),
        headers={**bearer, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert not strict_server.lh.leads()


def test_security_headers_on_every_response(strict_server: LiveServer) -> None:
    for path, status in (("/api/v1/hot", 401), ("/healthz", 200), ("/nowhere", 404)):
        answer = httpx.get(f"{strict_server.url}{path}")
        assert answer.status_code == status
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"
    docs = httpx.get(f"{strict_server.url}/docs")  # its own policy: its scripts, from here
    assert docs.status_code == 200
    assert "script-src 'self' 'sha256-" in docs.headers["content-security-policy"]


def test_bot_user_agents_are_flagged_and_carry_no_heat(strict_server: LiveServer) -> None:
    crawler = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    for who, agent in (("crawled-1", crawler), ("person-1", browser)):
        answer = httpx.post(
            f"{strict_server.url}/v1/track",
            json={"userId": who, "event": "add_to_cart", "context": {"userAgent": agent}},
            headers=_basic(strict_server.ingest_key),
        )
        assert answer.status_code == 200
    crawled = strict_server.lh.timeline("crawled-1")
    assert crawled[0]["type"] == "bot:add_to_cart" and crawled[0]["properties"]["bot"] is True
    assert strict_server.lh.show("crawled-1").score.heat == 0
    assert strict_server.lh.show("person-1").score.heat > 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"lead": "ana@example.com", "type": "page_view", "properties": {"x": NaN}}',
        b'{"lead": "ana@example.com", "type": "page_view", "properties": {"x": 1e400}}',
        b'{"lead": "ana@example.com", "type": "page_view", "properties": {"x": 1'
        + b"0" * 400
        + b"}}",
        b'{"lead": "ana@example.com", "lead": "bo@example.com", "type": "page_view"}',
        b'{"lead": "ana@example.com", "type": "page_view", "properties": {"x": "\\ud800"}}',
        b'{"lead": "ana@example.com", "type": "page_view", "properties": '
        + b'{"x": ' * 40
        + b"1"
        + b"}" * 41,
    ],
    ids=["nan", "infinite", "huge-int", "duplicate-key", "lone-surrogate", "deep"],
)
def test_rest_bodies_are_read_as_strictly_as_collection(
    strict_server: LiveServer, body: bytes
) -> None:
    answer = httpx.post(
        f"{strict_server.url}/api/v1/events",
        content=body,
        headers={
            "Authorization": f"Bearer {strict_server.admin_key}",
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"].startswith("body")
    assert not strict_server.lh.leads()


def test_the_playbook_can_refuse_records_that_are_too_old(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from leadheat.cli import app
    from leadheat.service import LeadheatError

    db = f"sqlite:///{tmp_path / 'old.db'}"
    lh = Leadheat(db)
    lh.init('[ingest]\nmax_age = "30d"\n')
    now = lh.clock()
    with pytest.raises(LeadheatError, match="max_age"):
        lh.track("ana@example.com", "page_view", at=now - timedelta(days=31))
    lh.track("ana@example.com", "page_view", at=now - timedelta(days=29))
    server = LiveServer(lh)
    try:
        answer = httpx.post(
            f"{server.url}/v1/batch",
            json={
                "batch": [
                    {
                        "type": "track",
                        "userId": "u1",
                        "event": "e",
                        "timestamp": "1970-01-02T00:00:00Z",
                    }
                ]
            },
            headers=_basic(server.ingest_key),
        )
        assert answer.status_code == 400 and answer.json()["field"] == "batch[0].timestamp"
    finally:
        server.stop()
    old = (now - timedelta(days=40)).isoformat()
    events = tmp_path / "events.csv"
    events.write_text(f"lead,type,timestamp\nbo@example.com,page_view,{old}\n")
    result = CliRunner().invoke(app, ["--db", db, "import", "events", str(events)])
    assert result.exit_code == 1
    assert 'line 2, column "timestamp"' in str(result.exception) and "max_age" in str(
        result.exception
    )
    assert [r.email for r in lh.leads()] == ["ana@example.com"]
    lh.close()
