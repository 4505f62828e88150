"""Collection from web pages over real HTTP, as the browser SDKs send it: CORS preflights,
Segment's short paths, RudderStack's beacon route, ``text/plain`` bodies, the write key in
the query string, ``"userId": ""``; and public keys held to their origins.

(The SDKs themselves run in Chromium in ``test_browser_sdks.py``.)
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from conftest import LiveServer

PAGE = "http://127.0.0.1:5173"
"""The web page's origin: another port than the server's."""
FOREIGN = "https://evil.example"


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _post(
    server: LiveServer, path: str, body: dict[str, Any], key: str | None, origin: str | None = PAGE
) -> httpx.Response:
    """A browser's simple POST: a ``text/plain`` JSON body, no preflight needed."""
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    if origin is not None:
        headers["Origin"] = origin
    if key is not None:
        headers["Authorization"] = _basic(key)
    return httpx.post(f"{server.url}{path}", content=json.dumps(body), headers=headers)


@pytest.fixture
def site_key(live_server: LiveServer) -> str:
    key, _ = live_server.lh.create_key("website", ["ingest"], public=True, origins=[PAGE])
    return key


@pytest.mark.parametrize(
    ("path", "asked"),
    [
        ("/v1/p", "content-type,authorization"),  # analytics-next
        ("/v1/b", "content-type,authorization"),
        ("/v1/page", "anonymousid,authorization,content-type,sentat"),  # analytics-js v3
        ("/v1/batch", "anonymousid,authorization,content-type,sentat"),
        ("/beacon/v1/batch", "content-type"),
    ],
)
def test_preflights_are_answered_for_what_the_sdks_send(
    live_server: LiveServer, path: str, asked: str
) -> None:
    answer = httpx.options(
        f"{live_server.url}{path}",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert set(asked.split(",")) <= allowed
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "Origin" in answer.headers["vary"]


def test_a_preflight_reflects_only_header_names(live_server: LiveServer) -> None:
    answer = httpx.options(
        f"{live_server.url}/v1/t",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-trace-id, bad header, a:b",
        },
    )
    allowed = answer.headers["access-control-allow-headers"]
    assert "x-trace-id" in allowed and "bad header" not in allowed and "a:b" not in allowed


def test_segment_short_paths_take_text_plain_bodies(live_server: LiveServer, site_key: str) -> None:
    anonymous = {"anonymousId": "a-short"}
    calls = [
        ("/v1/p", {**anonymous, "type": "page", "name": "Pricing"}),
        ("/v1/t", {**anonymous, "type": "track", "event": "Demo Requested"}),
        ("/v1/s", {**anonymous, "type": "screen", "name": "Home"}),
        ("/v1/i", {**anonymous, "type": "identify", "userId": "u-short"}),
        ("/v1/g", {"userId": "u-short", "type": "group", "groupId": "g-1"}),
        ("/v1/a", {"userId": "u-short", "type": "alias", "previousId": "a-short"}),
        ("/v1/b", {"batch": [{**anonymous, "type": "track", "event": "Trial Started"}]}),
    ]
    for path, body in calls:
        answer = _post(live_server, path, body, site_key)
        assert (answer.status_code, answer.json()) == (200, {"success": True}), path
        assert answer.headers["access-control-allow-origin"] == PAGE
        assert "Origin" in answer.headers["vary"]
    view = live_server.lh.show("u-short")
    assert {s.type: s.events for s in view.score.signals} == {
        "page_view": 1,
        "screen_view": 1,
        "demo_request": 1,
        "trial_signup": 1,
    }


def test_the_beacon_route_takes_the_write_key_in_the_query(
    live_server: LiveServer, site_key: str
) -> None:
    batch = {
        "batch": [
            {"type": "page", "anonymousId": "a-beacon", "userId": "", "name": "Home"},
            {"type": "track", "anonymousId": "a-beacon", "userId": "", "event": "Demo Requested"},
        ]
    }
    answer = _post(live_server, f"/beacon/v1/batch?writeKey={site_key}", batch, None)
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert answer.headers["access-control-allow-origin"] == PAGE
    view = live_server.lh.show("anon:a-beacon")
    assert view.score.events_seen == 2


def test_the_write_key_in_the_query_of_any_collection_route(live_server: LiveServer) -> None:
    answer = _post(
        live_server,
        f"/v1/track?writeKey={live_server.ingest_key}",
        {"userId": "", "anonymousId": "a-query", "event": "Demo Requested"},
        None,
        origin=None,
    )
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert live_server.lh.show("anon:a-query").score.events_seen == 1


def test_an_empty_user_id_is_an_anonymous_visitor(live_server: LiveServer) -> None:
    """RudderStack's analytics-js sends ``"userId": ""`` until identify."""
    answer = _post(
        live_server,
        "/v1/batch",
        {"batch": [{"type": "page", "userId": "", "anonymousId": "a-empty", "name": "Home"}]},
        live_server.ingest_key,
    )
    assert answer.status_code == 200, answer.text
    assert live_server.lh.show("anon:a-empty").score.events_seen == 1
    nobody = _post(
        live_server,
        "/v1/track",
        {"userId": "", "anonymousId": "", "event": "x"},
        live_server.ingest_key,
    )
    assert nobody.status_code == 400 and nobody.json()["field"] == "userId"


def test_errors_carry_cors_too(live_server: LiveServer) -> None:
    """A page's SDK can read why it was refused (unknown key, bad body)."""
    unknown = _post(live_server, "/v1/p", {"anonymousId": "a"}, "lh_00000000_" + "x" * 32)
    assert unknown.status_code == 401
    assert unknown.headers["access-control-allow-origin"] == PAGE
    bad = _post(live_server, "/v1/t", {"anonymousId": "a"}, live_server.ingest_key)
    assert bad.status_code == 400 and bad.json()["field"] == "event"
    assert bad.headers["access-control-allow-origin"] == PAGE
    # the REST API is not for web pages: no CORS there
    rest = httpx.get(
        f"{live_server.url}/api/v1/hot",
        headers={"Origin": PAGE, "Authorization": f"Bearer {live_server.read_key}"},
    )
    assert rest.status_code == 200 and "access-control-allow-origin" not in rest.headers


def test_a_public_key_is_refused_from_an_origin_it_does_not_list(
    live_server: LiveServer, site_key: str
) -> None:
    page = {"type": "page", "anonymousId": "a-foreign", "name": "Home"}
    for path, body in (("/v1/p", page), ("/v1/b", {"batch": [page]})):
        refused = _post(live_server, path, body, site_key, origin=FOREIGN)
        assert refused.status_code == 403, path
        assert "not among the key's" in refused.json()["error"]
        assert "access-control-allow-origin" not in refused.headers
    beacon = _post(
        live_server, f"/beacon/v1/batch?writeKey={site_key}", {"batch": [page]}, None, FOREIGN
    )
    assert beacon.status_code == 403
    assert live_server.lh.leads() == []  # nothing stored

    # the listed origin, and a server (no Origin), are accepted
    assert _post(live_server, "/v1/p", page, site_key).status_code == 200
    assert (
        _post(live_server, "/v1/p", {**page, "messageId": "m2"}, site_key, None).status_code == 200
    )
    assert live_server.lh.show("anon:a-foreign").score.events_seen == 2


def test_a_secret_ingest_key_still_works_from_a_browser(live_server: LiveServer) -> None:
    """As before public keys existed (documented in SECURITY.md: move pages to a public key)."""
    answer = _post(
        live_server, "/v1/p", {"anonymousId": "a-secret"}, live_server.ingest_key, FOREIGN
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == FOREIGN


def test_a_public_key_only_collects(live_server: LiveServer, site_key: str) -> None:
    bearer = {"Authorization": f"Bearer {site_key}"}
    for method, path, body in (
        ("GET", "/api/v1/hot", None),
        ("GET", "/api/v1/leads", None),
        ("POST", "/api/v1/events", {"lead": "ana@initech.example", "type": "page_view"}),
        ("POST", "/api/v1/leads", {"email": "ana@initech.example"}),
    ):
        answer = httpx.request(method, f"{live_server.url}{path}", headers=bearer, json=body)
        assert answer.status_code == 403, path
        assert answer.json()["error"].startswith("this is a public key: it only collects")
    assert live_server.lh.leads() == []


def test_a_public_keys_bad_email_trait_is_left_out_and_the_call_kept(
    live_server: LiveServer, site_key: str
) -> None:
    """A web form's typo must not make the SDK resend a refused batch forever: over HTTP,
    a public key's invalid ``email`` trait is dropped and the rest stored; a secret key is
    told which field was wrong."""
    identify = {
        "type": "identify",
        "anonymousId": "a-typo",
        "traits": {"email": "ana@x.com, eve@evil.example", "name": "Ana"},
    }
    kept = _post(live_server, "/v1/b", {"batch": [identify]}, site_key)
    assert kept.status_code == 200, kept.text
    single = _post(live_server, "/v1/i", {**identify, "messageId": "m-single"}, site_key)
    assert single.status_code == 200, single.text
    lead = live_server.lh.show("anon:a-typo").lead
    assert lead["email"] is None and lead["attributes"]["name"] == "Ana"
    refused = _post(live_server, "/v1/identify", identify, live_server.ingest_key, None)
    assert refused.status_code == 400 and "email" in refused.json()["field"]
