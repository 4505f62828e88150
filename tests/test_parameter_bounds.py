"""Parameters a page or a list route cannot take are refused with a 4xx naming them, over a
real server: never a 500 (a number too large for the database) or a 503 (a pattern the
database gives up on)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from conftest import LiveServer
from leadheat.service import Leadheat
from leadheat.web.auth import add_user
from test_web_auth import PASSWORD, csrf_in


@pytest.fixture
def signed_in(lh: Leadheat) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """A live server with a few leads, and a rep's browser signed in to it."""
    add_user(lh, "rita@example.com", "rep", PASSWORD)
    for n in range(3):
        lh.track(f"lead{n}@example.com", "page_view")
    server = LiveServer(lh)
    with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}) as browser:
        token = csrf_in(browser.get("/login").text)
        reply = browser.post(
            "/login", data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert reply.status_code == 303
        yield server, browser
    server.stop()


def test_the_lists_page_refuses_parameters_it_cannot_take_by_name(
    signed_in: tuple[LiveServer, httpx.Client],
) -> None:
    _, browser = signed_in
    assert browser.get("/lists", params={"offset": "50"}).status_code == 200
    for offset in ("99999999999999999999", "-1", "2.5", "100001"):
        refused = browser.get("/lists", params={"offset": offset})
        assert refused.status_code == 400, (offset, refused.status_code)
        assert "offset must be a whole number from 0 to 100000" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
    for name in ("q", "owner", "source"):
        refused = browser.get("/lists", params={name: "x" * 60_000})
        assert refused.status_code == 400, (name, refused.status_code)
        assert f"{name} is 60000 characters long; at most 200" in refused.text
        csv = browser.get("/lists.csv", params={name: "x" * 60_000})
        assert csv.status_code == 400 and name in csv.text
    found = browser.get("/lists", params={"q": "lead1@"})
    assert found.status_code == 200 and "lead1@example.com" in found.text


def test_a_forged_api_cursor_is_refused_by_name(signed_in: tuple[LiveServer, httpx.Client]) -> None:
    server, _ = signed_in
    bearer = {"Authorization": f"Bearer {server.read_key}"}
    for offset in (-1, 99999999999999999999):
        text = json.dumps({"at": "2026-11-01T12:00:00+00:00", "offset": offset})
        cursor = base64.urlsafe_b64encode(text.encode()).decode()
        refused = httpx.get(f"{server.url}/api/v1/leads", params={"cursor": cursor}, headers=bearer)
        assert refused.status_code == 400, (offset, refused.status_code, refused.text)
        assert refused.json()["field"] == "cursor"
    fine = httpx.get(f"{server.url}/api/v1/leads", params={"limit": 2}, headers=bearer)
    following = fine.json()["next_cursor"]
    again = httpx.get(f"{server.url}/api/v1/leads", params={"cursor": following}, headers=bearer)
    assert again.status_code == 200 and len(again.json()["items"]) == 1
