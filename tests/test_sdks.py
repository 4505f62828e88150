"""Acceptance: the real analytics SDKs from PyPI post to a real leadheat server.

``segment-analytics-python`` and ``rudder-sdk-python`` are configured as their docs say (a
write key and the server's URL as ``host``, which is what RudderStack's ``dataPlaneUrl``
becomes) and send one visitor's story: anonymous page views and a product view, an
``identify`` that names them, more events as a known user, a ``group`` and an ``alias``.
The lead that results is checked through the Python API, down to its exact heat.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
import rudderstack.analytics.client
import rudderstack.analytics.request
import segment.analytics.client
import segment.analytics.request

from conftest import LiveServer
from leadheat.service import UnknownLeadError
from leadheat.times import isoformat

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""When the visitor first shows up: a fixed past instant, so the heat below is exact."""
AT = BASE + timedelta(days=7)
"""The instant the lead is scored at: a week (the default half-life) after BASE."""
MINUTES_PER_WEEK = 7 * 24 * 60
MIN10, MIN20 = timedelta(minutes=10), timedelta(minutes=20)

EXPECTED_HEAT = (
    1 * 2**-1  # page_view (1 point), 7 days old at AT: one half-life of the default 7d
    + 5 * 2 ** -(1 - 10 / MINUTES_PER_WEEK)  # page_view of /pricing (5), 10 minutes younger
    + 3 * 2 ** -(1 - 20 / MINUTES_PER_WEEK)  # product_view (3)
    + 20 * 2 ** -(6 / 7)  # demo_request (20), 6 days old
    + 15 * 2 ** -(5 / 7)  # trial_signup (15), 5 days old
)
"""The default playbook's points for what the visitor does (``Visitor``), each halved once
per 7 days of age at AT."""
EVENTS = 5
"""Two page views, a product view, a demo request, a trial: identify, group and alias only
say who the visitor is."""


@dataclass(frozen=True)
class Sdk:
    """One analytics SDK: how to build its client, and the module whose HTTP session it
    keeps between calls (closed after each test so no socket outlives its server)."""

    name: str
    client: Callable[..., Any]
    api_error: type[Exception]
    request_module: ModuleType


SDKS = [
    Sdk(
        "segment",
        segment.analytics.client.Client,
        segment.analytics.request.APIError,
        segment.analytics.request,
    ),
    Sdk(
        "rudderstack",
        rudderstack.analytics.client.Client,
        rudderstack.analytics.request.APIError,
        rudderstack.analytics.request,
    ),
]


@pytest.fixture(params=SDKS, ids=[sdk.name for sdk in SDKS])
def sdk(request: pytest.FixtureRequest) -> Iterator[Sdk]:
    chosen: Sdk = request.param
    yield chosen
    chosen.request_module._session.close()


class Visitor:
    """One person's story told through an SDK client; keeps every message the SDK built
    (``(True, message)`` is what each call returns), exactly as it went out."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.anonymous_id = f"anon-{name}-7f3c"
        self.user_id = f"user-{name}-1001"
        self.email = f"ana.{name}@initech.example"
        self.sent: list[dict[str, Any]] = []

    def _keep(self, result: tuple[bool, dict[str, Any]]) -> None:
        queued, message = result
        assert queued
        self.sent.append(message)

    def browse_then_sign_up(self) -> None:
        c = self.client
        anonymous = {"anonymous_id": self.anonymous_id}
        known = {"user_id": self.user_id}
        blog = {"url": "https://shop.example/blog/lead-scoring"}
        self._keep(c.page(**anonymous, name="Blog", properties=blog, timestamp=BASE))
        pricing = {"url": "https://shop.example/pricing"}
        self._keep(c.page(**anonymous, name="Pricing", properties=pricing, timestamp=BASE + MIN10))
        product = {"product_id": "p-42", "price": 49.0}
        self._keep(
            c.track(**anonymous, event="Product Viewed", properties=product, timestamp=BASE + MIN20)
        )
        self._identify()
        self._keep(c.track(**known, event="Demo Requested", timestamp=BASE + timedelta(days=1)))
        self._keep(c.track(**known, event="Trial Started", timestamp=BASE + timedelta(days=2)))
        self._keep(
            c.group(
                **known,
                group_id="grp-initech",
                traits={"name": "Initech", "industry": "Software"},
                timestamp=BASE + timedelta(days=2, hours=1),
            )
        )
        self._keep(
            c.alias(
                previous_id=self.anonymous_id,
                **known,
                timestamp=BASE + timedelta(days=2, hours=2),
            )
        )

    def _identify(self) -> None:
        self._keep(
            self.client.identify(
                user_id=self.user_id,
                anonymous_id=self.anonymous_id,
                traits={
                    "email": self.email,
                    "name": "Ana Lopez",
                    "title": "VP Sales",
                    "company": {"name": "Initech", "employee_count": 420},
                },
                timestamp=BASE + timedelta(hours=1),
            )
        )


def _batch_client(sdk: Sdk, server: LiveServer, errors: list[Exception]) -> Any:
    """The SDK's background client, as an app runs it; any failure lands in ``errors``."""
    return sdk.client(
        server.ingest_key,
        host=server.url,
        on_error=lambda error, _batch: errors.append(error),
        max_retries=0,  # a failure shows at once instead of after minutes of back-off
        upload_interval=0.05,
    )


def _shut(client: Any) -> None:
    client.flush()
    client.join()


def _signed_up(sdk: Sdk, live_server: LiveServer) -> Visitor:
    """A visitor who browsed anonymously, then signed up, sent through the SDK's batches."""
    errors: list[Exception] = []
    client = _batch_client(sdk, live_server, errors)
    visitor = Visitor(client, sdk.name)
    try:
        visitor.browse_then_sign_up()
    finally:
        _shut(client)
    assert errors == []
    return visitor


def test_a_visitor_becomes_one_lead_scored_exactly(sdk: Sdk, live_server: LiveServer) -> None:
    visitor = _signed_up(sdk, live_server)
    assert [m["type"] for m in visitor.sent] == [
        "page",
        "page",
        "track",
        "identify",
        "track",
        "track",
        "group",
        "alias",
    ]

    lh = live_server.lh
    leads = lh.leads(at=AT)
    assert len(leads) == 1
    lead_id = leads[0].lead_id
    for key in (visitor.user_id, visitor.email, f"anon:{visitor.anonymous_id}", f"id:{lead_id}"):
        assert lh.show(key, AT).lead["id"] == lead_id, key
    view = lh.show(visitor.email, AT)
    attributes = view.lead["attributes"]
    assert attributes["name"] == "Ana Lopez"
    assert attributes["title"] == "VP Sales"
    assert attributes["company"] == "Initech"
    assert attributes["company_size"] == 420
    assert attributes["company_id"] == "grp-initech"
    assert attributes["industry"] == "Software"
    assert view.score.events_seen == EVENTS
    assert view.score.heat == pytest.approx(EXPECTED_HEAT, rel=1e-12)
    assert view.score.fit.points == 15  # title matches the VP rule (10), size 10..5000 (5)
    events_by_type = {s.type: s.events for s in view.score.signals}
    assert events_by_type == {
        "page_view": 2,
        "product_view": 1,
        "demo_request": 1,
        "trial_signup": 1,
    }

    # Delivery is at least once: the same messages again (same messageIds) count once.
    again = httpx.post(
        f"{live_server.url}/v1/batch",
        json={"batch": visitor.sent, "sentAt": isoformat(datetime.now(UTC))},
        auth=(live_server.ingest_key, ""),
    )
    assert (again.status_code, again.json()) == (200, {"success": True})
    errors: list[Exception] = []
    repeat = _batch_client(sdk, live_server, errors)
    try:
        for message in visitor.sent:
            if message["type"] == "track":
                repeat.track(
                    user_id=message.get("userId"),
                    anonymous_id=message.get("anonymousId"),
                    event=message["event"],
                    properties=message.get("properties"),
                    timestamp=datetime.fromisoformat(message["timestamp"]),
                    message_id=message["messageId"],
                )
    finally:
        _shut(repeat)
    assert errors == []
    after = lh.show(visitor.user_id, AT)
    assert after.score.events_seen == EVENTS
    assert after.score.heat == view.score.heat
    assert len(lh.leads(at=AT)) == 1


def test_identify_fills_in_the_leads_email_and_user_id(sdk: Sdk, live_server: LiveServer) -> None:
    visitor = _signed_up(sdk, live_server)
    [row] = live_server.lh.leads(at=AT)
    assert (row.email, row.external_id) == (visitor.email, visitor.user_id)


def test_a_wrong_write_key_is_refused(sdk: Sdk, live_server: LiveServer) -> None:
    client = sdk.client("lh_wrong_key", host=live_server.url, sync_mode=True)
    # segment: APIError(401). rudderstack 2.1.9 reads `code` from a JSON error body and
    # fails with KeyError when there is none: either way the SDK sees the refusal.
    with pytest.raises((sdk.api_error, KeyError)) as refused:
        client.track(user_id="u-wrong", event="Product Viewed", timestamp=BASE)
    if isinstance(refused.value, sdk.api_error):
        assert refused.value.status == 401  # type: ignore[attr-defined]

    body = {"batch": [{"type": "track", "userId": "u-wrong", "event": "Product Viewed"}]}
    for auth in (("lh_wrong_key", ""), None):
        answer = httpx.post(f"{live_server.url}/v1/batch", json=body, auth=auth)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) >= {"error", "field"}
        assert answer.json()["error"]
    read_only = (live_server.read_key, "")
    assert httpx.post(f"{live_server.url}/v1/batch", json=body, auth=read_only).status_code == 403
    with pytest.raises(UnknownLeadError):
        live_server.lh.show("u-wrong")


def test_one_bad_message_refuses_the_whole_batch(sdk: Sdk, live_server: LiveServer) -> None:
    client = sdk.client(live_server.ingest_key, host=live_server.url, send=False)
    messages = [
        client.track(user_id=f"u-batch-{i}", event="Product Viewed", timestamp=BASE)[1]
        for i in range(3)
    ]
    messages[1] = {**messages[1], "timestamp": "not a date"}
    answer = httpx.post(
        f"{live_server.url}/v1/batch",
        content=json.dumps({"batch": messages}),
        headers={"Content-Type": "application/json"},
        auth=(live_server.ingest_key, ""),
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "batch[1].timestamp"
    assert "not a date" in answer.json()["error"]
    assert live_server.lh.leads() == []
    for i in range(3):
        with pytest.raises(UnknownLeadError):
            live_server.lh.show(f"u-batch-{i}")
