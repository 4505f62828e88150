"""The OpenAPI schema tells the whole truth: every route is in it, every operation documents
its errors in the one error shape, and nothing a client can send makes the server fail (5xx),
checked by schemathesis generating requests, valid and invalid, from the schema itself."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from starlette.routing import BaseRoute, Route

from conftest import LiveServer
from leadheat.api import create_app
from leadheat.settings import Settings

UNDOCUMENTED = {
    ("GET", "/healthz"),  # for load balancers, not clients
    # the browser SDKs' own paths, aliases of the documented /v1/* (docs/api.md lists them)
    *{("POST", f"/v1/{short}") for short in "tpigasb"},
    ("POST", "/beacon/v1/batch"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    # the dashboard's HTML pages and forms (tests/test_web_auth.py checks their access)
    ("GET", "/static/{name}"),
    ("GET", "/favicon.ico"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/"),
    ("GET", "/hot/rows"),
    ("GET", "/accounts"),
    ("GET", "/accounts/rows"),
    ("GET", "/accounts/{key}"),
    ("GET", "/leads/{lead_id}"),
    ("POST", "/leads/{lead_id}/touch"),
    ("POST", "/leads/{lead_id}/take"),
    ("POST", "/leads/{lead_id}/assign"),
    ("POST", "/leads/{lead_id}/outcome"),
    ("POST", "/leads/{lead_id}/evidence"),
    ("POST", "/leads/{lead_id}/sequence"),
    ("GET", "/lists"),
    ("GET", "/lists.csv"),
    ("POST", "/lists/assign"),
    ("GET", "/playbook"),
    ("POST", "/playbook"),
    ("GET", "/playbook/suggestion/{job}"),
    ("GET", "/tasks"),
    ("GET", "/recovery"),
    ("GET", "/winback"),
    ("GET", "/analytics"),
    ("POST", "/refresh"),
    # the unsubscribe page every nurture mail links to (tests/test_nurture.py follows it)
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
}
"""Routes served on purpose without being in the schema."""
ERROR_SCHEMA = "#/components/schemas/ErrorOut"
EXAMPLES_PER_OPERATION = 25
KNOWN_LEAD = "ana@example.com"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """The application over a fresh SQLite file."""
    application = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'leadheat.db'}"))
    yield application
    application.state.lh.close()


def served(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, bool]]:
    """``(method, path, in_schema)`` for every route the app answers. Recent FastAPI keeps
    an included router as one entry holding the original router; older versions copy its
    routes into the app's list: both are walked."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from served(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute | Route):
            in_schema = route.include_in_schema
            for method in route.methods or ():
                if method != "HEAD":
                    yield method, prefix + route.path, in_schema


def test_every_route_is_in_the_schema(app: FastAPI) -> None:
    routes = set(served(app.routes))
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert {(m, p) for m, p, in_schema in routes if in_schema} == documented
    assert {(m, p) for m, p, in_schema in routes if not in_schema} == UNDOCUMENTED
    assert ("POST", "/v1/batch") in documented
    assert ("GET", "/api/v1/leads/{lead}") in documented


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_its_errors_as_error_out(app: FastAPI) -> None:
    schema = app.openapi()
    for name, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"400", "401", "403"}  # every operation reads input and needs a key
        if name.split()[1].startswith("/v1/"):
            expected.add("413")  # collection bodies have Segment's size limits
        else:
            expected.add("422")  # the REST API validates bodies and parameters
        if "{lead}" in name:
            expected.add("404")
        assert expected <= set(responses), (name, sorted(responses))
        for status, response in responses.items():
            if status.startswith("4"):
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": ERROR_SCHEMA}, (name, status, body)
                assert response["description"], (name, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    fields = schema["components"]["schemas"]["ErrorOut"]["properties"]
    assert {"error", "field"} <= set(fields)


@pytest.fixture
def api(app: FastAPI) -> schemathesis.BaseSchema:
    """The app's own schema, loaded the way any client would, with an admin key on every
    request (keys are checked before anything else, so without one the fuzzing would only
    ever meet the 401), over a database with one lead in it."""
    lh = app.state.lh
    key, _ = lh.create_key("schemathesis", ["admin"])
    lh.track(KNOWN_LEAD, "trial_signup")
    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": {"with-security-parameters": False},
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def test_no_request_makes_the_server_fail(api: schemathesis.BaseSchema, app: FastAPI) -> None:
    """Every operation, with valid and invalid requests (and, where a path names a lead,
    with a lead that exists too): never a 5xx. The plain ``@given`` over schemathesis's
    strategies keeps this one test, bounded and derandomised."""
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        variants: list[dict[str, Any]] = [{}]
        if "{lead}" in operation.path:
            app.state.lh.track(KNOWN_LEAD, "trial_signup")  # back, if `DELETE` erased it
            variants.append({"path_parameters": {"lead": KNOWN_LEAD}})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for fixed in variants:
                strategy = operation.as_strategy(generation_mode=mode, **fixed)
                try:
                    _fuzz(strategy)
                except Unsatisfiable:  # no parameters and no body: nothing to get wrong
                    assert mode is GenerationMode.NEGATIVE, operation.label
                except Exception as error:  # each failing operation is reported, not just the first
                    failures.append(f"{operation.label} ({mode.value}): {error}")
    assert operations == len(list(_operations(api.raw_schema)))
    if failures:  # the message is the report: schemathesis's curl commands, no traceback
        pytest.fail("\n\n".join(failures), pytrace=False)


def _fuzz(strategy: Any) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    check()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/leads?at=253402300800", None),
        ("GET", "/api/v1/hot?at=-1.7976931348623157e%2B308", None),
        ("GET", "/api/v1/leads/ana@example.com?at=0001-01-01T00:00:00%2B01:00", None),
        ("POST", "/v1/track", {"userId": "u1", "event": "Viewed", "timestamp": "253402300800"}),
        (
            "POST",
            "/v1/batch",
            {"batch": [{"type": "page", "anonymousId": "a1"}], "sentAt": "1e300"},
        ),
        (
            "POST",
            "/api/v1/leads/ana@example.com/touches",
            {"kind": "call", "timestamp": "0001-01-01T00:00:00+01:00"},
        ),
        (
            "POST",
            "/api/v1/leads",
            {"email": "bo@example.com", "created_at": "0001-01-01T00:00+01:00"},
        ),
    ],
)
def test_an_instant_datetime_cannot_hold_is_refused(
    live_server: LiveServer, method: str, path: str, body: object
) -> None:
    """Found by fuzzing: each must be a 400 or 422 that says which time is wrong."""
    live_server.lh.track(KNOWN_LEAD, "trial_signup")
    answer = _admin(live_server, method, path, body)
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", {"userId": "u\x00", "event": "Product Viewed"}),
        ("/v1/identify", {"userId": "u2", "traits": {"title": "VP\x00"}}),
        ("/api/v1/events", {"lead": "bo@example.com", "type": "form\x00submit"}),
        ("/api/v1/events", {"lead": "bo@example.com", "type": "a", "properties": {"x": "\x00"}}),
    ],
)
def test_text_with_a_nul_character_is_no_server_error(
    live_server: LiveServer, path: str, body: object
) -> None:
    """Found by fuzzing Segment bodies (which the schema cannot describe): JSON allows
    ``\\u0000`` in any string; SQLite stores it, PostgreSQL's text and jsonb cannot. Refused
    up front on every backend, naming the body."""
    answer = _admin(live_server, "POST", path, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "body"


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "1900-01-01T00:00:00Z"])
def test_an_event_outside_1970_to_2100_is_refused(live_server: LiveServer, timestamp: str) -> None:
    event = {"lead": "old@example.com", "type": "form_submit", "timestamp": timestamp}
    answer = _admin(live_server, "POST", "/api/v1/events", event)
    listed = _admin(live_server, "GET", "/api/v1/leads", None)
    assert listed.status_code == 200, listed.text
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["field"] == "timestamp"


def _admin(server: LiveServer, method: str, path: str, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    return httpx.request(method, server.url + path, json=body, headers=headers)
