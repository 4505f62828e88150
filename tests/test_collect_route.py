"""The collection routes answer without FastAPI's per-request machinery
(``leadheat.api.routes.collect.CollectionRoute``): what they answer, and what the write
key's HTTP Basic dependency refused, must be what FastAPI itself gave."""

from __future__ import annotations

import base64
import json

import httpx

from conftest import LiveServer
from leadheat.api.routes.collect import SUCCESS
from leadheat.api.schemas import SuccessOut

TRACK = {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "m-1"}


def test_success_is_the_documented_model_as_fastapi_writes_it() -> None:
    assert json.dumps(SuccessOut().model_dump(), separators=(",", ":")).encode() == SUCCESS


def test_an_answer_is_exactly_success(live_server: LiveServer) -> None:
    key = base64.b64encode(f"{live_server.ingest_key}:".encode()).decode()
    answer = httpx.post(
        f"{live_server.url}/v1/batch",
        json={"batch": [TRACK]},
        headers={"Authorization": f"Basic {key}"},
    )
    assert answer.status_code == 200
    assert answer.content == SUCCESS
    assert answer.headers["content-type"] == "application/json"
    assert [event["type"] for event in live_server.lh.timeline("u1")] == ["product_view"]


def test_a_malformed_basic_header_is_refused_as_the_dependency_refused_it(
    live_server: LiveServer,
) -> None:
    """``/v1/*`` declares the write key's HTTP Basic scheme (for the docs) and FastAPI's
    scheme refuses a header that is not ``user:password`` in base64; RudderStack's beacon
    path declares none, and the route's own reading names the problem."""
    no_colon = base64.b64encode(live_server.ingest_key.encode()).decode()
    for header, path, error in [
        ("Basic !!!", "/v1/batch", "Not authenticated"),
        (f"Basic {no_colon}", "/v1/t", "Not authenticated"),
        ("Basic !!!", "/beacon/v1/batch", "the Basic authorization header is not base64"),
    ]:
        answer = httpx.post(
            f"{live_server.url}{path}",
            json={"batch": [TRACK]} if "batch" in path else TRACK,
            headers={"Authorization": header},
        )
        assert (answer.status_code, answer.json()["error"]) == (401, error), path
    answer = httpx.post(
        f"{live_server.url}/beacon/v1/batch",
        json={"batch": [TRACK]},
        headers={"Authorization": f"Basic {no_colon}"},
    )
    assert answer.status_code == 200  # the beacon path reads the key without a colon
