"""Every route against every key: a test that fails when a route is added without saying
which scope it needs, or when a key gets through a door it should not."""

from __future__ import annotations

import base64

import httpx
import pytest

from conftest import LiveServer
from leadheat.api import create_app
from leadheat.service import Leadheat

NEEDS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/leads"): "read",
    ("POST", "/api/v1/leads"): "ingest",
    ("GET", "/api/v1/leads/{lead}"): "read",
    ("PATCH", "/api/v1/leads/{lead}"): "admin",
    ("GET", "/api/v1/leads/{lead}/timeline"): "read",
    ("GET", "/api/v1/leads/{lead}/explanation"): "read",
    ("POST", "/api/v1/leads/{lead}/touches"): "admin",
    ("POST", "/api/v1/leads/{lead}/outcomes"): "admin",
    ("POST", "/api/v1/leads/{lead}/evidence"): "admin",
    ("POST", "/api/v1/events"): "ingest",
    ("GET", "/api/v1/hot"): "read",
    ("GET", "/api/v1/accounts"): "read",
    ("GET", "/api/v1/accounts/{account_key}"): "read",
    ("PATCH", "/api/v1/accounts/{account_key}"): "admin",
    ("GET", "/api/v1/playbook"): "read",
    ("PUT", "/api/v1/playbook"): "admin",
    ("GET", "/api/v1/reps"): "read",
    ("POST", "/api/v1/reps"): "admin",
    ("POST", "/api/v1/reps/{email}/pause"): "admin",
    ("POST", "/api/v1/reps/{email}/resume"): "admin",
    ("GET", "/api/v1/deliveries"): "read",
    ("POST", "/api/v1/deliveries/{delivery_id}/retry"): "admin",
    ("GET", "/api/v1/sla"): "read",
    ("DELETE", "/api/v1/leads/{lead}"): "admin",
    ("GET", "/api/v1/leads/{lead}/export"): "admin",
    ("GET", "/api/v1/audit"): "admin",
    ("GET", "/api/v1/merges/suggested"): "admin",
    ("POST", "/api/v1/merges/suggested/{suggestion_id}/confirm"): "admin",
    ("POST", "/api/v1/merges/suggested/{suggestion_id}/dismiss"): "admin",
    ("GET", "/api/v1/analytics/report"): "read",
    ("GET", "/api/v1/analytics/half-lives"): "read",
    ("POST", "/api/v1/analytics/backtest"): "read",
    ("GET", "/api/v1/analytics/expectation"): "read",
    ("GET", "/api/v1/tasks"): "read",
    ("GET", "/api/v1/recover"): "read",
    ("GET", "/api/v1/winback"): "read",
    ("POST", "/api/v1/winback"): "admin",
    ("GET", "/api/v1/enrollments"): "read",
    ("POST", "/api/v1/leads/{lead}/enrollments"): "admin",
    ("DELETE", "/api/v1/leads/{lead}/enrollments/{sequence}"): "admin",
    ("POST", "/api/v1/unsubscribes"): "admin",
    **{
        ("POST", f"/v1/{call}"): "ingest"
        for call in ("batch", "track", "identify", "page", "screen", "group", "alias")
    },
}
"""The scope each route needs. A new route must be added here, or the first test fails."""
RANK = {"ingest": {"ingest", "admin"}, "read": {"read", "admin"}, "admin": {"admin"}}


def _routes() -> list[tuple[str, str]]:
    """Every documented route and method, from the app's own OpenAPI schema (routers are
    included lazily, so the schema is the one complete list)."""
    lh = Leadheat("sqlite://")
    paths = create_app(lh=lh).openapi()["paths"]
    lh.close()
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def test_every_route_says_which_scope_it_needs() -> None:
    routes = set(_routes())
    assert routes, "no routes found: the walk is broken"
    assert routes == set(NEEDS), (
        f"routes without a scope in NEEDS: {sorted(routes - set(NEEDS))}; "
        f"gone: {sorted(set(NEEDS) - routes)}"
    )


def _url(server: LiveServer, path: str) -> str:
    filled = (
        path.replace("{lead}", "nobody@example.com")
        .replace("{email}", "nobody@example.com")
        .replace("{delivery_id}", "1")
        .replace("{suggestion_id}", "1")
        .replace("{account_key}", "acme.com")
    )
    return f"{server.url}{filled}"


def _headers(path: str, key: str | None) -> dict[str, str]:
    if key is None:
        return {}
    if path.startswith("/v1/"):
        return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(("method", "path"), sorted(NEEDS))
def test_each_route_refuses_the_keys_it_should(
    live_server: LiveServer, method: str, path: str
) -> None:
    keys = {
        "ingest": live_server.ingest_key,
        "read": live_server.read_key,
        "admin": live_server.admin_key,
    }
    needed = NEEDS[(method, path)]
    body = {} if method in ("POST", "PUT", "PATCH") else None
    with httpx.Client() as client:
        anonymous = client.request(method, _url(live_server, path), json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["error"]
        for scope, key in keys.items():
            answer = client.request(
                method, _url(live_server, path), json=body, headers=_headers(path, key)
            )
            if scope in RANK[needed]:
                assert answer.status_code not in (401, 403), (method, path, scope, answer.text)
            else:
                assert answer.status_code == 403, (method, path, scope, answer.text)
