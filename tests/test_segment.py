"""Segment messages as the SDKs really send them, read into leadheat's words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from leadheat.identity import LeadKey
from leadheat.ingest.segment import (
    CALLS,
    EVENT_TYPES,
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    Identity,
    SegmentError,
    check_size,
    event_type_for,
    message_sizes_ok,
    parse_batch,
    parse_message,
)

RECEIVED = datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC)

# What segment/analytics-python 2.x posts to /v1/batch: each message carries its own
# `timestamp` (the caller's clock), `messageId` (a uuid4) and `context.library`; `sentAt`
# and `writeKey` sit on the batch; `clean()` has removed the None fields.
ANALYTICS_PYTHON_BATCH: dict[str, Any] = {
    "batch": [
        {
            "integrations": {},
            "traits": {
                "email": "Ana.Lopez@Initech.example",
                "firstName": "Ana",
                "lastName": "Lopez",
                "title": "VP Sales",
                "company": {"name": "Initech", "employee_count": 420, "plan": "enterprise"},
                "address": {"city": "Lyon", "country": "France", "postalCode": "69001"},
                "createdAt": "2024-04-30T08:00:00+00:00",
                "logins": 5,
            },
            "timestamp": "2024-05-01T09:59:58.120+00:00",
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
            "type": "identify",
            "userId": "u-1001",
            "messageId": "9f6c3f0e-0a4b-4c8e-9a57-0c3d7e5b1f20",
        },
        {
            "integrations": {},
            "properties": {"order_id": "50314b8e", "total": 27.5, "currency": "EUR"},
            "timestamp": "2024-05-01T09:59:59.450+00:00",
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
            "userId": "u-1001",
            "type": "track",
            "event": "Order Completed",
            "messageId": "1d2f7a4c-5b6e-4f80-8a91-b2c3d4e5f607",
        },
    ],
    "sentAt": "2024-05-01T10:00:00.312000+00:00",
    "writeKey": "wk_live_abc",
}

# rudder-sdk-js / the RudderStack mobile SDKs stamp `originalTimestamp` on the device and
# `sentAt` when the batch leaves it; this device's clock runs 4 min 30 s fast.
RUDDER_TRACK: dict[str, Any] = {
    "type": "track",
    "event": "Product Viewed",
    "anonymousId": "2c0f5a34-9c1d-4e5b-8f1a-6d7e8f9a0b1c",
    "channel": "web",
    "rudderId": "8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    "properties": {"product_id": "507f1f77", "name": "Monopoly", "price": 18.99},
    "context": {
        "library": {"name": "RudderLabs JavaScript SDK", "version": "3.7.0"},
        "page": {"url": "https://shop.example/p/monopoly", "path": "/p/monopoly"},
    },
    "originalTimestamp": "2024-05-01T10:02:00.000Z",
    "sentAt": "2024-05-01T10:05:00.000Z",
    "messageId": "c0ffee00-1111-2222-3333-444455556666",
}

# analytics.js (analytics-next) page call: the page fields are both in `properties` and in
# `context.page`; a known visitor's traits ride along in `context.traits`.
ANALYTICS_JS_PAGE: dict[str, Any] = {
    "type": "page",
    "name": "Pricing",
    "category": "Marketing",
    "properties": {
        "name": "Pricing",
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "search": "",
        "title": "Pricing - Acme",
        "url": "https://acme.example/pricing",
    },
    "context": {
        "page": {
            "path": "/pricing",
            "referrer": "https://www.google.com/",
            "search": "",
            "title": "Pricing - Acme",
            "url": "https://acme.example/pricing",
        },
        "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
        "locale": "en-GB",
        "traits": {"email": "Ben@Acme.example", "name": "Ben Ode"},
    },
    "anonymousId": "e1b2c3d4-aaaa-bbbb-cccc-ddddeeeeffff",
    "userId": None,
    "messageId": "ajs-next-6f1d0c4e2f8a9b7c",
    "timestamp": "2024-05-01T09:59:12.004Z",
    "sentAt": "2024-05-01T09:59:12.010Z",
    "writeKey": "wk_live_abc",
    "integrations": {},
}


def test_an_analytics_python_batch_reads_as_sent() -> None:
    identify, track = parse_batch(ANALYTICS_PYTHON_BATCH, RECEIVED)

    assert identify.call == "identify" and identify.event_type is None
    assert identify.message_id == "9f6c3f0e-0a4b-4c8e-9a57-0c3d7e5b1f20"
    assert identify.identity == Identity("u-1001", None, "ana.lopez@initech.example")
    assert identify.at == datetime(2024, 5, 1, 9, 59, 58, 120_000, tzinfo=UTC)
    assert identify.properties is None
    assert identify.traits == {
        "email": "ana.lopez@initech.example",
        "name": "Ana Lopez",
        "title": "VP Sales",
        "company": "Initech",
        "company_size": 420,
        "company_plan": "enterprise",
        "city": "Lyon",
        "country": "France",
        "createdAt": "2024-04-30T08:00:00+00:00",
        "logins": 5,
    }

    assert track.event_type == "purchase"
    assert track.message_id == "1d2f7a4c-5b6e-4f80-8a91-b2c3d4e5f607"
    # `timestamp` is taken as given: the batch's sentAt does not shift it
    assert track.at == datetime(2024, 5, 1, 9, 59, 59, 450_000, tzinfo=UTC)
    assert track.properties == {
        "order_id": "50314b8e",
        "total": 27.5,
        "currency": "EUR",
        "event": "Order Completed",
    }
    assert track.identity.keys() == [LeadKey("external", "u-1001")]
    assert track.traits == {}


def test_original_timestamp_is_corrected_for_the_devices_clock_skew() -> None:
    message = parse_message(RUDDER_TRACK, "", RECEIVED)
    # receivedAt − (sentAt − originalTimestamp) = 10:00:30 − (10:05:00 − 10:02:00) = 09:57:30
    assert message.at == datetime(2024, 5, 1, 9, 57, 30, tzinfo=UTC)
    assert message.event_type == "product_view"
    assert message.identity.keys() == [LeadKey("anonymous", RUDDER_TRACK["anonymousId"])]
    assert message.message_id == RUDDER_TRACK["messageId"]


@pytest.mark.parametrize(
    ("stamps", "batch_sent_at", "expected"),
    [
        pytest.param({}, None, RECEIVED, id="no timestamps: when it arrived"),
        pytest.param(
            {"timestamp": "2024-05-01T12:00:00+02:00"},
            None,
            datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
            id="timestamp with an offset, in UTC",
        ),
        pytest.param(
            {"timestamp": "2024-04-01T00:00:00Z", "originalTimestamp": "2024-05-01T10:00:00Z"},
            "2024-05-01T10:00:05Z",
            datetime(2024, 4, 1, tzinfo=UTC),
            id="timestamp wins over originalTimestamp",
        ),
        pytest.param(
            {"originalTimestamp": "2024-05-01T09:00:00Z"},
            None,
            datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
            id="originalTimestamp without sentAt: as given",
        ),
        pytest.param(
            {"originalTimestamp": "2024-05-01T09:00:00Z"},
            "2024-05-01T09:10:00Z",
            RECEIVED - timedelta(minutes=10),
            id="the batch's sentAt corrects the message",
        ),
        pytest.param(
            {"originalTimestamp": "2024-05-01T09:00:00Z", "sentAt": "2024-05-01T09:01:00Z"},
            "2024-05-01T09:10:00Z",
            RECEIVED - timedelta(minutes=1),
            id="the message's own sentAt wins over the batch's",
        ),
        pytest.param(
            {"originalTimestamp": "2024-05-01T10:00:30.5+00:00"},
            "2024-05-01T09:59:30Z",  # a slow clock: the event is moved later
            RECEIVED + timedelta(minutes=1, milliseconds=500),
            id="a slow device clock",
        ),
    ],
)
def test_event_time(stamps: dict[str, str], batch_sent_at: str | None, expected: datetime) -> None:
    body: dict[str, Any] = {"batch": [{"type": "screen", "userId": "u", **stamps}]}
    if batch_sent_at is not None:
        body["sentAt"] = batch_sent_at
    (message,) = parse_batch(body, RECEIVED)
    assert message.at == expected and message.at.tzinfo == UTC


def test_an_analytics_js_page_view() -> None:
    message = parse_message(ANALYTICS_JS_PAGE, "", RECEIVED, "page")
    assert message.event_type == "page_view"
    assert message.properties == {
        "name": "Pricing",
        "category": "Marketing",
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "search": "",
        "title": "Pricing - Acme",
        "url": "https://acme.example/pricing",
    }
    assert message.identity == Identity(None, ANALYTICS_JS_PAGE["anonymousId"], "ben@acme.example")
    assert message.identity.keys() == [
        LeadKey("email", "ben@acme.example"),
        LeadKey("anonymous", ANALYTICS_JS_PAGE["anonymousId"]),
    ]
    assert message.traits == {"email": "ben@acme.example", "name": "Ben Ode"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            {"type": "page", "context": {"page": {"url": "https://a.example/plans", "x": 1}}},
            {"url": "https://a.example/plans"},
            id="page fields from context.page",
        ),
        pytest.param(
            {"type": "page", "properties": {"url": "/demo"}, "context": {"page": {"url": "/"}}},
            {"url": "/demo"},
            id="properties win over context.page",
        ),
        pytest.param(
            {"type": "screen", "name": "Checkout", "properties": {"step": 2}},
            {"name": "Checkout", "step": 2},
            id="a mobile screen",
        ),
        pytest.param({"type": "page"}, None, id="nothing to say: no properties"),
    ],
)
def test_page_and_screen_properties(message: dict[str, Any], expected: Any) -> None:
    read = parse_message({"anonymousId": "a1", **message}, "", RECEIVED)
    assert read.properties == expected
    assert read.event_type == f"{message['type']}_view"


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("Product Viewed", "product_view"),
        ("Product Added", "add_to_cart"),
        ("Checkout Started", "checkout_started"),
        ("Order Completed", "purchase"),
        ("Completed Order", "purchase"),
        ("Trial Started", "trial_signup"),
        ("Trial Ended", "trial_expired"),
        ("Trial Expired", "trial_expired"),
        ("Subscription Cancelled", "subscription_cancelled"),
        ("Form Submitted", "form_submit"),
        ("Demo Requested", "demo_request"),
        ("Email Opened", "email_open"),
        ("Email Link Clicked", "email_click"),
        ("Signed Up", "sign_up"),
        ("Application Installed", "app_install"),
        ("product_viewed", "product_view"),
        ("productViewed", "product_view"),
        ("ORDER COMPLETED", "purchase"),
        ("Webinar Attended", "webinar_attended"),
        ("Invite Sent", "invite_sent"),
        ("iOS App Opened", "ios_app_opened"),
        ("Pricing Page – Viewed!", "pricing_page_viewed"),
    ],
)
def test_track_event_names(name: str, event_type: str) -> None:
    message = parse_message(
        {"type": "track", "userId": "u", "event": name, "properties": {"plan": "pro"}},
        "",
        RECEIVED,
    )
    assert message.event_type == event_type == event_type_for(name)
    assert message.properties == {"plan": "pro", "event": name}


def test_an_event_already_in_leadheats_words_keeps_its_properties_as_they_are() -> None:
    message = parse_message({"userId": "u", "event": "demo_request"}, "", RECEIVED, "track")
    assert message.event_type == "demo_request" and message.properties is None


def test_every_mapped_name_is_a_leadheat_event_type() -> None:
    assert all(event_type_for(name) == kind for name, kind in EVENT_TYPES.items())


def test_group_traits_become_the_leads_company() -> None:
    message = parse_message(
        {
            "type": "group",
            "userId": "97980cfea0067",
            "groupId": "0e8c78ea9d97a7b8185e8632",
            "traits": {
                "name": "Initech",
                "industry": "Technology",
                "employees": 329,
                "plan": "enterprise",
                "total billed": 830,
                "email": "billing@initech.example",
                "address": {"city": "Austin", "country": "USA"},
                "tags": ["b2b"],
            },
            "context": {"traits": {"title": "CTO"}},
            "timestamp": "2015-02-23T22:28:55.111Z",
        },
        "",
        RECEIVED,
    )
    assert message.event_type is None and message.properties is None
    assert message.traits == {
        "title": "CTO",
        "company": "Initech",
        "industry": "Technology",
        "company_size": 329,
        "company_plan": "enterprise",
        "company_total_billed": 830,
        "company_email": "billing@initech.example",
        "company_city": "Austin",
        "company_country": "USA",
        "company_id": "0e8c78ea9d97a7b8185e8632",
    }
    # the group's address is the company's, not the lead's
    assert message.identity.email is None


def test_alias_joins_the_previous_id() -> None:
    message = parse_message(
        {"previousId": "39239-239239", "userId": "019mr8mf4r", "timestamp": "2012-12-02T00:31:29Z"},
        "",
        RECEIVED,
        "alias",
    )
    assert message.call == "alias" and message.previous_id == "39239-239239"
    assert message.identity.keys() == [LeadKey("external", "019mr8mf4r")]
    assert message.event_type is None


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ({"userId": 42}, Identity("42", None, None)),
        ({"userId": 42.0, "anonymousId": 7}, Identity("42", "7", None)),
        ({"userId": 4.5}, Identity("4.5", None, None)),
        ({"userId": "  u-1 ", "anonymousId": None}, Identity("u-1", None, None)),
    ],
)
def test_ids_as_the_sdks_accept_them(ids: dict[str, Any], expected: Identity) -> None:
    assert parse_message({"type": "identify", **ids}, "", RECEIVED).identity == expected


@pytest.mark.parametrize(
    ("message", "email", "from_traits"),
    [
        pytest.param(
            {"traits": {"email": "A@X.example"}, "context": {"traits": {"email": "b@x.example"}}},
            "a@x.example",
            True,
            id="the call's traits before context.traits",
        ),
        pytest.param(
            {"context": {"traits": {"email": "b@x.example"}}, "properties": {"email": "c@x.co"}},
            "b@x.example",
            True,
            id="context.traits before properties",
        ),
        pytest.param({"properties": {"email": "C@X.co"}}, "c@x.co", False, id="properties last"),
        pytest.param(
            {"properties": {"email": "not mail"}}, None, False, id="a bad property is no email"
        ),
        pytest.param({"traits": {"email": " "}}, None, False, id="a blank trait is no email"),
    ],
)
def test_where_the_email_comes_from(
    message: dict[str, Any], email: str | None, from_traits: bool
) -> None:
    read = parse_message({"userId": "u", "event": "Signed Up", **message}, "", RECEIVED, "track")
    assert read.identity.email == email
    # an email only in the event's properties names the lead but is not set as its attribute
    assert read.traits.get("email") == (email if from_traits else None)


def test_traits_keep_scalars_and_drop_what_a_lead_cannot_hold() -> None:
    message = parse_message(
        {
            "type": "identify",
            "anonymousId": "a1",
            "traits": {
                "first_name": "Ana",
                "plan": "pro",
                "company": "Initech ",
                "employees": "50-200",
                "bio": "x" * 201,
                "country": "F" * 101,
                "blank": "  ",
                "gone": None,
                "score": float("inf"),
                "beta": True,
                "prefs": {"theme": "dark"},
            },
            "context": {"traits": {"name": "Old Name", "phone": "+33 1 23 45 67 89"}},
        },
        "",
        RECEIVED,
    )
    assert message.traits == {
        "name": "Ana",
        "phone": "+33 1 23 45 67 89",
        "plan": "pro",
        "company": "Initech",
        "company_size": "50-200",
        "beta": True,
    }


def test_a_batchs_context_fills_in_what_a_message_lacks() -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "Signed In", "context": {"ip": "10.0.0.1"}},
            {"type": "identify", "anonymousId": "a", "context": None},
        ],
        "context": {"traits": {"email": "team@acme.example"}, "ip": "8.8.8.8"},
    }
    first, second = parse_batch(body, RECEIVED)
    assert first.identity.email == second.identity.email == "team@acme.example"


def test_unknown_fields_are_ignored_and_a_forced_call_wins_over_type() -> None:
    message = parse_message(
        {"type": "identify", "userId": "u", "event": "Signed In", "version": 2, "channel": "s"},
        "",
        RECEIVED,
        "track",
    )
    assert message.call == "track" and message.event_type == "signed_in"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ([], "batch[0]"),
        ("track", "batch[0]"),
        ({"userId": "u", "event": "x"}, "batch[0].type"),
        ({"type": "trac", "userId": "u"}, "batch[0].type"),
        ({"type": 3, "userId": "u"}, "batch[0].type"),
        ({"type": "track", "event": "x"}, "batch[0].userId"),
        ({"type": "track", "event": "x", "userId": None, "anonymousId": None}, "batch[0].userId"),
        ({"type": "track", "event": "x", "userId": ""}, "batch[0].userId"),
        ({"type": "track", "event": "x", "userId": "   "}, "batch[0].userId"),
        ({"type": "track", "event": "x", "userId": True}, "batch[0].userId"),
        ({"type": "track", "event": "x", "userId": ["u"]}, "batch[0].userId"),
        ({"type": "track", "event": "x", "userId": "u" * 201}, "batch[0].userId"),
        ({"type": "track", "event": "x", "anonymousId": {}}, "batch[0].anonymousId"),
        ({"type": "track", "userId": "u"}, "batch[0].event"),
        ({"type": "track", "userId": "u", "event": ""}, "batch[0].event"),
        ({"type": "track", "userId": "u", "event": 5}, "batch[0].event"),
        ({"type": "track", "userId": "u", "event": "e" * 101}, "batch[0].event"),
        ({"type": "track", "userId": "u", "event": "!!!"}, "batch[0].event"),
        ({"type": "page", "userId": "u", "timestamp": "2024-05-01 10:00"}, "batch[0].timestamp"),
        ({"type": "page", "userId": "u", "timestamp": "2015-2-02T00:30Z"}, "batch[0].timestamp"),
        ({"type": "page", "userId": "u", "timestamp": 1714557600}, "batch[0].timestamp"),
        (
            {"type": "page", "userId": "u", "timestamp": "1969-12-31T23:59:59Z"},
            "batch[0].timestamp",
        ),
        (
            {"type": "page", "userId": "u", "originalTimestamp": "2101-01-01T00:00:00Z"},
            "batch[0].originalTimestamp",
        ),
        (
            {"type": "page", "userId": "u", "timestamp": "2024-01-01T00:00Z", "sentAt": "soon"},
            "batch[0].sentAt",
        ),
        (
            {
                "type": "page",
                "userId": "u",
                "originalTimestamp": "1970-01-01T00:00:01Z",
                "sentAt": "2099-01-01T00:00:00Z",
            },
            "batch[0].originalTimestamp",
        ),
        ({"type": "page", "userId": "u", "properties": []}, "batch[0].properties"),
        ({"type": "identify", "userId": "u", "traits": "vip"}, "batch[0].traits"),
        ({"type": "page", "userId": "u", "context": "web"}, "batch[0].context"),
        ({"type": "page", "userId": "u", "context": {"traits": 1}}, "batch[0].context.traits"),
        ({"type": "identify", "userId": "u", "traits": {"email": "x@"}}, "batch[0].traits.email"),
        ({"type": "identify", "userId": "u", "traits": {"email": 7}}, "batch[0].traits.email"),
        (
            {"type": "track", "userId": "u", "event": "x", "context": {"traits": {"email": "@"}}},
            "batch[0].context.traits.email",
        ),
        ({"type": "alias", "userId": "u"}, "batch[0].previousId"),
        ({"type": "alias", "userId": "u", "previousId": ""}, "batch[0].previousId"),
        ({"type": "group", "userId": "u"}, "batch[0].groupId"),
        ({"type": "page", "userId": "u", "name": 5}, "batch[0].name"),
        ({"type": "page", "userId": "u", "messageId": ""}, "batch[0].messageId"),
        ({"type": "page", "userId": "u", "messageId": "m" * 201}, "batch[0].messageId"),
    ],
)
def test_every_bad_message_is_named_by_its_place(message: object, field: str) -> None:
    good = {"type": "page", "userId": "ok"}
    with pytest.raises(SegmentError) as caught:
        parse_batch({"batch": [good, message]}, RECEIVED)
    assert caught.value.field == field.replace("batch[0]", "batch[1]")
    assert str(caught.value) == f"{caught.value.field}: {caught.value.message}"

    if isinstance(message, dict) and "type" in message and isinstance(message["type"], str):
        single_field = field.removeprefix("batch[0]").removeprefix(".") or "body"
        with pytest.raises(SegmentError) as single:
            parse_message(message, "", RECEIVED)
        if message["type"] in CALLS:
            assert single.value.field == single_field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "batch"),
        ({"batch": {"type": "track"}}, "batch"),
        ({"batch": [], "sentAt": "yesterday"}, "sentAt"),
        ({"batch": [], "context": []}, "context"),
    ],
)
def test_a_bad_batch_body(body: object, field: str) -> None:
    with pytest.raises(SegmentError) as caught:
        parse_batch(body, RECEIVED)
    assert caught.value.field == field


def test_a_single_call_that_is_not_an_object() -> None:
    with pytest.raises(SegmentError, match=r"^body: must be a JSON object, not a list$"):
        parse_message([], "", RECEIVED, "track")


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_message({"userId": "u"}, "", datetime(2024, 5, 1), "identify")
    paris = timezone(timedelta(hours=2))
    message = parse_message({"userId": "u"}, "", datetime(2024, 5, 1, 12, tzinfo=paris), "page")
    assert message.at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_a_derived_message_id_is_stable_and_tells_messages_apart() -> None:
    sent = {"type": "track", "userId": "u", "event": "Product Viewed", "properties": {"sku": "1"}}
    first = parse_message({**sent, "sentAt": "2024-05-01T10:00:00Z"}, "", RECEIVED)
    retried = parse_message(
        {**sent, "sentAt": "2024-05-01T10:07:00Z", "receivedAt": "2024-05-01T10:07:01Z"},
        "",
        RECEIVED + timedelta(minutes=7),
    )
    reordered = parse_message(dict(reversed(sent.items())), "", RECEIVED)
    assert first.message_id == retried.message_id == reordered.message_id
    assert first.message_id.startswith("seg-")

    other_sku = parse_message({**sent, "properties": {"sku": "2"}}, "", RECEIVED)
    other_user = parse_message({**sent, "userId": "v"}, "", RECEIVED)
    as_page = parse_message({**sent, "type": "page"}, "", RECEIVED)
    ids = {first.message_id, other_sku.message_id, other_user.message_id, as_page.message_id}
    assert len(ids) == 4

    given = parse_message({**sent, "messageId": 12345}, "", RECEIVED)
    assert given.message_id == "12345"


def test_size_limits() -> None:
    check_size(b"x" * MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES, "body")
    with pytest.raises(SegmentError) as caught:
        check_size(b"x" * (MAX_BATCH_BYTES + 1), MAX_BATCH_BYTES, "body")
    assert caught.value.field == "body"
    assert caught.value.message == (
        f"the body is {MAX_BATCH_BYTES + 1} bytes; the limit is 512000 bytes (500 KB)"
    )

    def message_of(size: int) -> dict[str, Any]:
        shell = {"type": "track", "userId": "u", "event": "e", "properties": {"blob": ""}}
        padding = size - len(json.dumps(shell, separators=(",", ":")).encode())
        return {**shell, "properties": {"blob": "x" * padding}}

    message_sizes_ok({"batch": [message_of(100), message_of(MAX_MESSAGE_BYTES)]})
    with pytest.raises(SegmentError) as caught:
        message_sizes_ok({"batch": [message_of(100), message_of(MAX_MESSAGE_BYTES + 1)]})
    assert caught.value.field == "batch[1]"
    assert "32769 bytes" in caught.value.message
    message_sizes_ok({"batch": "not a list"})  # parse_batch names that one


def test_multibyte_text_is_measured_in_utf8_bytes() -> None:
    shell = {"type": "track", "userId": "u", "event": "e", "properties": {"note": ""}}
    room = MAX_MESSAGE_BYTES - len(json.dumps(shell, separators=(",", ":")).encode())
    message_sizes_ok({"batch": [{**shell, "properties": {"note": "é" * (room // 2)}}]})
    with pytest.raises(SegmentError):
        message_sizes_ok({"batch": [{**shell, "properties": {"note": "é" * (room // 2 + 1)}}]})
