"""Segment-compatible tracking messages in: track, identify, page, screen, group and alias.

Any Segment or RudderStack SDK can point at leadheat instead of (or as well as) Segment,
so a shop or SaaS app reports product views and trial sign-ups without a new integration.
This module only reads messages: it checks them as Segment's HTTP Tracking API does, with
every problem named by its place in the body (``batch[3].timestamp``), and turns each into
a :class:`Message` in leadheat's words: who (:class:`Identity`), when (``at``, clock skew
corrected), what (``event_type`` from :data:`EVENT_TYPES`) and which lead attributes to
set (``traits``). Nothing here stores anything or reads the clock; the caller passes the
instant the request arrived, and stores nothing of a batch with a bad message.

>>> from datetime import UTC, datetime
>>> message = parse_message(
...     {"type": "track", "userId": 42, "event": "Product Added",
...      "properties": {"sku": "G-32"}, "timestamp": "2024-05-01T09:30:00+02:00"},
...     "", datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
>>> message.event_type, message.at.isoformat(), message.identity.keys()
('add_to_cart', '2024-05-01T07:30:00+00:00', [LeadKey(kind='external', value='42')])
>>> message.properties
{'sku': 'G-32', 'event': 'Product Added'}
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadheat.identity import LeadKey, LeadKeyError, normalise_email
from leadheat.times import TimeFormatError, check_range, parse_instant

MAX_MESSAGE_BYTES = 32 * 1024
"""Segment's limit for one call, and for each message inside a batch."""
MAX_BATCH_BYTES = 500 * 1024
"""Segment's limit for the body of ``/v1/batch``."""
CALLS = ("track", "identify", "page", "screen", "group", "alias")

MAX_ID_CHARS = 200
"""userId, anonymousId, previousId, groupId and messageId: the width of stored ids."""
MAX_EVENT_CHARS = 100
"""Event names, and the event types made of them: the width of the stored type."""
MAX_TRAIT_CHARS = 200
"""Longer trait strings are dropped, not cut: the lead columns hold 200 characters."""
_FIELD_CHARS = {"country": 100}
_MAX_KEY_CHARS = 100
MAX_DEPTH = 32
"""How deep objects and lists may nest in a message. Analytics payloads nest a few levels
(``properties.products[0].sku``); a far deeper one would be stored but could not be read
back: the API's JSON encoder gives up at 255 levels, with a 500 on the lead's timeline."""

EVENT_TYPES: dict[str, str] = {
    # E-commerce spec v2 (and the v1 names Segment still aliases to them)
    "Product Viewed": "product_view",
    "Viewed Product": "product_view",
    "Product Added": "add_to_cart",
    "Added Product": "add_to_cart",
    "Wishlist Product Added to Cart": "add_to_cart",
    "Checkout Started": "checkout_started",
    "Started Order": "checkout_started",
    "Order Completed": "purchase",
    "Completed Order": "purchase",
    # B2B SaaS spec
    "Signed Up": "sign_up",
    "Trial Started": "trial_signup",
    "Trial Ended": "trial_expired",
    "Trial Expired": "trial_expired",
    "Subscription Cancelled": "subscription_cancelled",
    "Subscription Canceled": "subscription_cancelled",
    # Email spec
    "Email Opened": "email_open",
    "Email Link Clicked": "email_click",
    # Mobile spec
    "Application Installed": "app_install",
    # Lead capture and sales, as commonly named
    "Form Submitted": "form_submit",
    "Demo Requested": "demo_request",
    "Meeting Booked": "meeting_booked",
}
"""Segment spec event names and the leadheat event type each one is.

A name is looked up by its snake_case form, so ``"Product Viewed"``, ``"product_viewed"``
and ``"productViewed"`` are the same event; any other name becomes its snake_case form
(``"Webinar Attended"`` is ``webinar_attended``), which a playbook can then give points.
Page and screen calls are ``page_view`` and ``screen_view``.
"""


class SegmentError(ValueError):
    """A message leadheat cannot read, and where in the body it is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, init=False)
class Identity:
    """Who a message is about, in the forms Segment names people."""

    user_id: str | None
    anonymous_id: str | None
    email: str | None

    def __init__(self, user_id: str | None, anonymous_id: str | None, email: str | None) -> None:
        # frozen, yet filled in one step: the generated __init__ of a frozen dataclass sets
        # each field through object.__setattr__, a sixth of reading a message
        vars(self).update(user_id=user_id, anonymous_id=anonymous_id, email=email)

    def keys(self) -> list[LeadKey]:
        """The lead keys to find the lead by, most authoritative first: the app's own user
        id, then the email, then the browser or device's anonymous id.

        >>> Identity("u1", "a-9", "ana@example.com").keys()[0]
        LeadKey(kind='external', value='u1')
        >>> [str(key) for key in Identity(None, "a-9", None).keys()]
        ['anon:a-9']
        """
        keys = []
        if self.user_id is not None:
            keys.append(LeadKey("external", self.user_id))
        if self.email is not None:
            keys.append(LeadKey("email", self.email))
        if self.anonymous_id is not None:
            keys.append(LeadKey("anonymous", self.anonymous_id))
        return keys


BOT_AGENT = re.compile(
    r"(?i)bot\b|bot/|crawl|spider|slurp|headless|phantomjs|lighthouse|pingdom|uptime|"
    r"python-requests|python-httpx|curl/|wget/|scrapy|go-http-client|facebookexternalhit|"
    r"bingpreview|preview"
)
"""User agents of crawlers, monitors and scripts (``context.userAgent``, as analytics.js
sends it): their events are kept, flagged, and worth nothing."""
BOT_PREFIX = "bot:"


@dataclass(frozen=True, init=False)
class Message:
    """One Segment call, read: who, when, what happened and which attributes to set."""

    call: str
    message_id: str
    identity: Identity
    at: datetime
    event_type: str | None
    properties: dict[str, Any] | None
    traits: dict[str, Any]
    previous_id: str | None = None
    dropped: tuple[str, ...] = ()
    """Traits left out as invalid (their places, e.g. ``batch[2].traits.email``): only
    public collection drops a bad trait and keeps the message; see :func:`parse_message`."""

    def __init__(
        self,
        call: str,
        message_id: str,
        identity: Identity,
        at: datetime,
        event_type: str | None,
        properties: dict[str, Any] | None,
        traits: dict[str, Any],
        previous_id: str | None = None,
        dropped: tuple[str, ...] = (),
    ) -> None:
        # as Identity's: frozen, filled in one step (a batch reads a hundred messages)
        vars(self).update(
            call=call,
            message_id=message_id,
            identity=identity,
            at=at,
            event_type=event_type,
            properties=properties,
            traits=traits,
            previous_id=previous_id,
            dropped=dropped,
        )


def parse_message(
    data: object,
    field: str,
    received_at: datetime,
    call: str | None = None,
    *,
    public: bool = False,
    shallow: bool = False,
) -> Message:
    """Read one message. ``call`` is the call of a single-call endpoint (``/v1/track``);
    without it the message's ``type`` decides. ``field`` prefixes every error's place.

    ``public``: the message came with a publishable key, from a web page. A malformed
    ``email`` trait is then left out (named in :attr:`Message.dropped`) instead of refusing
    the message: the browser SDKs resend a refused batch forever and cannot fix it.

    ``shallow``: the caller has measured that ``data`` nests at most :data:`MAX_DEPTH` deep
    (``leadheat.api.hygiene`` reads that from the body's bytes), so the walk over it that
    names a place too deep is skipped.

    >>> from datetime import UTC, datetime
    >>> parse_message({"userId": "u1"}, "", datetime(2024, 1, 1, tzinfo=UTC), "track")
    Traceback (most recent call last):
    ...
    leadheat.ingest.segment.SegmentError: event: a track call needs an event name \
(e.g. "Product Viewed")
    """
    if not shallow:
        check_depth(data, field)
    return _parse(data, field, _utc(received_at), call, None, None, public)


def parse_batch(
    data: object, received_at: datetime, *, public: bool = False, shallow: bool = False
) -> list[Message]:
    """Read the body of ``/v1/batch``. The SDKs put ``sentAt`` (and sometimes ``context``)
    on the batch rather than on each message; those apply to every message that lacks its
    own. One bad message fails the whole batch, so a retry after the fix stores it once.
    ``public`` and ``shallow`` as for :func:`parse_message`.
    """
    if not isinstance(data, dict):
        raise SegmentError("body", f"must be a JSON object, not {_kind(data)}")
    if not shallow:
        check_depth(data)
    batch = data.get("batch")
    if not isinstance(batch, list):
        raise SegmentError("batch", "must be a list of messages")
    sent_at = _instant(data, "sentAt", "")
    context = data.get("context")
    if context is not None and not isinstance(context, dict):
        raise SegmentError("context", f"must be an object, not {_kind(context)}")
    received = _utc(received_at)
    return [
        _parse(item, f"batch[{index}]", received, None, sent_at, context or None, public)
        for index, item in enumerate(batch)
    ]


def check_depth(data: object, field: str = "", limit: int = MAX_DEPTH) -> None:
    """Refuse objects and lists nested deeper than ``limit``, naming the first too deep.

    >>> check_depth({"batch": [{"properties": {"a": [[1]]}}]}, limit=5)
    Traceback (most recent call last):
    ...
    leadheat.ingest.segment.SegmentError: batch[0].properties.a[0]: nested deeper than 5 levels
    """
    if _depth_ok(data, limit):
        return
    stack: list[tuple[object, str, int]] = [(data, field, 1)]
    while stack:
        value, place, depth = stack.pop()
        if isinstance(value, dict):
            children = [
                (f"{place}.{key}" if place else str(key), item) for key, item in value.items()
            ]
        elif isinstance(value, list):
            children = [(f"{place}[{index}]", item) for index, item in enumerate(value)]
        else:
            continue
        if depth > limit:
            raise SegmentError(place or "body", f"nested deeper than {limit} levels")
        stack.extend(
            (item, where, depth + 1) for where, item in children if isinstance(item, dict | list)
        )


def _depth_ok(data: object, limit: int) -> bool:
    """Whether no object or list in ``data`` is nested deeper than ``limit``: the common
    case, checked without naming places (:func:`check_depth` names one only when it fails)."""
    return not _deeper(data, limit)


def _deeper(value: object, budget: int) -> bool:
    if isinstance(value, dict):
        items: Iterable[object] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    if budget <= 0:
        return True
    return any(isinstance(item, dict | list) and _deeper(item, budget - 1) for item in items)


def check_size(raw: bytes, limit: int, field: str) -> None:
    """Refuse a body over Segment's limits, as Segment does, before reading it.

    >>> check_size(b"x" * 40_000, MAX_MESSAGE_BYTES, "body")
    Traceback (most recent call last):
    ...
    leadheat.ingest.segment.SegmentError: body: the body is 40000 bytes; the limit is \
32768 bytes (32 KB)
    """
    if len(raw) > limit:
        raise SegmentError(
            field, f"the body is {len(raw)} bytes; the limit is {limit} bytes ({limit // 1024} KB)"
        )


def message_sizes_ok(data: dict[str, Any], body_bytes: int | None = None) -> None:
    """Refuse a batch with a message over 32 KB, measured as compact UTF-8 JSON (smaller
    than the SDKs' own measure, so whatever they let through passes).

    A body of ``body_bytes`` no larger than the limit cannot hold a larger message, so the
    messages are then not measured one by one.
    """
    batch = data.get("batch")
    if not isinstance(batch, list) or (body_bytes is not None and body_bytes <= MAX_MESSAGE_BYTES):
        return
    for index, item in enumerate(batch):
        size = len(_compact(item).encode())
        if size > MAX_MESSAGE_BYTES:
            raise SegmentError(
                f"batch[{index}]",
                f"the message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes "
                f"({MAX_MESSAGE_BYTES // 1024} KB)",
            )


@functools.lru_cache(maxsize=4096)
def event_type_for(name: str) -> str:
    """The leadheat event type of a track call's event name.

    >>> event_type_for("Order Completed"), event_type_for("productViewed")
    ('purchase', 'product_view')
    >>> event_type_for("Webinar Attended"), event_type_for("iOS App Opened")
    ('webinar_attended', 'ios_app_opened')
    """
    snake = snake_case(name)
    return _BY_SNAKE.get(snake, snake)


def snake_case(name: str) -> str:
    """Words joined by underscores in lower case; camelCase is split only when the name has
    no separators of its own, so ``"iOS App"`` stays ``ios_app``.

    >>> snake_case("Email Link Clicked"), snake_case("APIKeyCreated"), snake_case("a--b")
    ('email_link_clicked', 'api_key_created', 'a_b')
    """
    text = name.strip()
    if not re.search(r"[\s_\-.]", text):
        text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
        text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[\W_]+", "_", text.lower()).strip("_")


_BY_SNAKE = {snake_case(name): event_type for name, event_type in EVENT_TYPES.items()}


def _parse(
    data: object,
    prefix: str,
    received_at: datetime,
    call: str | None,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any] | None,
    public: bool = False,
) -> Message:
    """One message read; every place an error names is made only when there is an error
    (``_place(prefix, name)``): a batch has a hundred messages of a dozen fields each."""
    if not isinstance(data, dict):
        raise SegmentError(prefix or "body", f"must be a JSON object, not {_kind(data)}")
    if call is None:
        call = _call_of(data.get("type"), prefix)
    elif call not in CALLS:
        raise ValueError(f"{call!r} is not one of {CALLS}")
    own_context = data.get("context")
    if batch_context is not None and (own_context is None or isinstance(own_context, dict)):
        data = {**data, "context": {**batch_context, **(own_context or {})}}

    context = _object(data, "context", prefix, "context")
    context_traits = _object(context, "traits", prefix, "context.traits")
    own_traits = _object(data, "traits", prefix, "traits")
    properties = _object(data, "properties", prefix, "properties")

    user_id = _id(data, "userId", prefix, blank_is_absent=True)
    anonymous_id = _id(data, "anonymousId", prefix, blank_is_absent=True)
    if user_id is None and anonymous_id is None:
        raise SegmentError(_place(prefix, "userId"), "give a userId or an anonymousId (or both)")
    # previousId, groupId, originalTimestamp and sentAt: most messages have none, so they
    # are read only when present (an absent one and a null one are both no value)
    previous_id = _id(data, "previousId", prefix) if "previousId" in data else None
    if call == "alias" and previous_id is None:
        raise SegmentError(
            _place(prefix, "previousId"), "an alias call needs the previousId it joins"
        )
    group_id = _id(data, "groupId", prefix) if "groupId" in data else None
    if call == "group" and group_id is None:
        raise SegmentError(
            _place(prefix, "groupId"), "a group call needs the groupId of the company"
        )

    dropped: list[str] | None = [] if public else None
    trait_email = (
        _email(context_traits, prefix, "context.traits.email", dropped) if context_traits else None
    )
    if call != "group" and own_traits:  # a group's traits.email is the company's, not the lead's
        trait_email = _email(own_traits, prefix, "traits.email", dropped) or trait_email
    email = trait_email or (_property_email(properties) if "email" in properties else None)
    identity = Identity(user_id, anonymous_id, email)

    timestamp = _instant(data, "timestamp", prefix)
    original = _instant(data, "originalTimestamp", prefix) if "originalTimestamp" in data else None
    sent_at = (_instant(data, "sentAt", prefix) if "sentAt" in data else None) or batch_sent_at
    if timestamp is not None:
        when = timestamp
    elif original is not None:
        when = original if sent_at is None else received_at - (sent_at - original)
        try:
            check_range(when)
        except TimeFormatError as error:
            raise SegmentError(
                _place(prefix, "originalTimestamp"), f"corrected for clock skew (sentAt): {error}"
            ) from None
    else:
        when = received_at

    event_type: str | None = None
    described: dict[str, Any] = {}
    if call == "track":
        event_type, described = _track(data, properties, prefix)
    elif call in ("page", "screen"):
        event_type = f"{call}_view"
        page = context.get("page")
        described = _viewed(data, properties, page if isinstance(page, dict) else {}, prefix)

    if call == "group":
        traits = {**_lead_traits(context_traits), **_company_traits(own_traits, group_id)}
    elif context_traits or own_traits:
        traits = {**_lead_traits(context_traits), **_lead_traits(own_traits)}
    else:
        traits = {}
    if trait_email is not None:
        traits["email"] = trait_email

    agent = context.get("userAgent")
    if event_type is not None and isinstance(agent, str) and BOT_AGENT.search(agent):
        event_type = f"{BOT_PREFIX}{event_type}"[:100]
        described = {**described, "bot": True, "user_agent": agent[:300]}

    message_id = _id(data, "messageId", prefix) or _derived_id(data, call)
    return Message(
        call=call,
        message_id=message_id,
        identity=identity,
        at=when,
        event_type=event_type,
        properties=described or None,
        traits=traits,
        previous_id=previous_id,
        dropped=tuple(dropped or ()),
    )


def _place(prefix: str, name: str) -> str:
    """Where ``name`` is in the message at ``prefix`` (``batch[3]``, or ``""`` for a body).

    >>> _place("batch[3]", "timestamp"), _place("", "timestamp")
    ('batch[3].timestamp', 'timestamp')
    """
    return f"{prefix}.{name}" if prefix else name


def _call_of(value: object, prefix: str) -> str:
    if type(value) is str and value in CALLS:
        return value
    options = ", ".join(CALLS)
    field = _place(prefix, "type")
    if value is None:
        raise SegmentError(field, f"each message of a batch needs a type (one of {options})")
    call = value.strip().lower() if isinstance(value, str) else ""
    if call not in CALLS:
        raise SegmentError(field, f"{value!r} is not a Segment call (use one of {options})")
    return call


def _track(
    data: Mapping[str, Any], properties: dict[str, Any], prefix: str
) -> tuple[str, dict[str, Any]]:
    name = data.get("event")
    if not isinstance(name, str) or not name.strip():
        raise SegmentError(
            _place(prefix, "event"), 'a track call needs an event name (e.g. "Product Viewed")'
        )
    if len(name) > MAX_EVENT_CHARS:
        raise SegmentError(
            _place(prefix, "event"),
            f"the event name is {len(name)} characters; the limit is {MAX_EVENT_CHARS}",
        )
    event_type = event_type_for(name)
    if not event_type:
        raise SegmentError(
            _place(prefix, "event"), f"{name!r} has no letters or digits to name an event by"
        )
    if len(event_type) > MAX_EVENT_CHARS:
        raise SegmentError(
            _place(prefix, "event"),
            f"{name!r} makes an event type over {MAX_EVENT_CHARS} characters",
        )
    if event_type != name:
        return event_type, {**properties, "event": name}
    return event_type, dict(properties)


def _viewed(
    data: Mapping[str, Any],
    properties: dict[str, Any],
    page: dict[str, Any],
    prefix: str,
) -> dict[str, Any]:
    """A page or screen view's properties, with what analytics.js keeps in ``context.page``
    filled in: the playbook's page rules look at ``url``."""
    viewed = dict(properties)
    for key in ("url", "path", "title", "referrer"):
        if viewed.get(key) in (None, "") and isinstance(page.get(key), str) and page[key]:
            viewed[key] = page[key]
    for key in ("name", "category"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SegmentError(_place(prefix, key), f"must be a string, not {_kind(value)}")
        if value.strip():
            viewed[key] = value
    return viewed


def _lead_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """A user's traits as lead attributes: Segment's reserved traits become leadheat's
    fields, other scalars keep their names, objects and lists nobody maps are dropped.

    >>> _lead_traits({"firstName": "Ana", "lastName": "Lopez", "plan": "pro",
    ...               "company": {"name": "Initech", "employee_count": 120},
    ...               "address": {"city": "Lyon", "country": "FR"}, "tags": ["a"]})
    {'plan': 'pro', 'name': 'Ana Lopez', 'company': 'Initech', 'company_size': 120, \
'city': 'Lyon', 'country': 'FR'}
    """
    if not traits:
        return {}
    consumed = {
        "email",
        "name",
        "firstName",
        "first_name",
        "lastName",
        "last_name",
        "company",
        "address",
        "employees",
        "employee_count",
    }
    out: dict[str, Any] = {}
    for key, value in traits.items():
        if key not in consumed:
            _put(out, key, value)
    name = _scalar(traits.get("name"))
    if not isinstance(name, str):
        parts = (
            _scalar(traits.get(first) or traits.get(second))
            for first, second in (("firstName", "first_name"), ("lastName", "last_name"))
        )
        name = " ".join(part for part in parts if isinstance(part, str)) or None
    _put(out, "name", name)
    company = traits.get("company")
    if isinstance(company, dict):
        _put(out, "company", company.get("name"))
        _put(out, "company_size", company.get("employee_count", company.get("employees")))
        _keep(out, "industry", company.get("industry"))
        _put(out, "company_id", company.get("id"))
        for key, value in company.items():
            if key not in ("name", "employee_count", "employees", "industry", "id"):
                _put(out, f"company_{snake_case(key)}", value)
    else:
        _put(out, "company", company)
    _keep(out, "company_size", traits.get("employees", traits.get("employee_count")))
    address = traits.get("address")
    if isinstance(address, dict):
        _keep(out, "city", address.get("city"))
        _keep(out, "country", address.get("country"))
    return out


def _company_traits(traits: Mapping[str, Any], group_id: str | None) -> dict[str, Any]:
    """A group call's traits as the lead's company fields.

    >>> _company_traits({"name": "Initech", "employees": 329, "plan": "enterprise",
    ...                  "total billed": 830}, "0e8c78")
    {'company': 'Initech', 'company_size': 329, 'company_plan': 'enterprise', \
'company_total_billed': 830, 'company_id': '0e8c78'}
    """
    named = {"name": "company", "employees": "company_size", "industry": "industry"}
    out: dict[str, Any] = {}
    for key, value in traits.items():
        if key == "address" and isinstance(value, dict):
            _put(out, "company_city", value.get("city"))
            _put(out, "company_country", value.get("country"))
        elif key in named:
            _put(out, named[key], value)
        elif key != "id":
            _put(out, f"company_{snake_case(key)}", value)
    _put(out, "company_id", group_id if group_id is not None else traits.get("id"))
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    scalar = _scalar(value, _FIELD_CHARS.get(key, MAX_TRAIT_CHARS))
    if scalar is not None and key and len(key) <= _MAX_KEY_CHARS:
        out[key] = scalar


def _keep(out: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless a trait already named it directly."""
    if key not in out:
        _put(out, key, value)


def _scalar(value: Any, limit: int = MAX_TRAIT_CHARS) -> str | int | float | bool | None:
    """A value fit for a lead attribute, or ``None``: blank strings, long strings, objects,
    lists and nulls set nothing (a null does not clear what another source said)."""
    if isinstance(value, str):
        text = value.strip()
        return text if text and len(text) <= limit else None
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _email(
    traits: Mapping[str, Any], prefix: str, name: str, dropped: list[str] | None
) -> str | None:
    """The ``email`` trait (at ``name`` in the message), one valid address; a bad one is
    refused, or left out and its place added to ``dropped`` when that is a list (public
    collection)."""
    value = traits.get("email")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    field = _place(prefix, name)
    try:
        if not isinstance(value, str):
            raise SegmentError(field, f"must be a string, not {_kind(value)}")
        try:
            return normalise_email(value)
        except LeadKeyError as error:
            raise SegmentError(field, str(error)) from None
    except SegmentError:
        if dropped is None:
            raise
        dropped.append(field)
        return None


def _property_email(properties: Mapping[str, Any]) -> str | None:
    """An event property ``email`` names the lead only when it is one: properties are the
    event's, and a malformed one there is no reason to refuse the event."""
    value = properties.get("email")
    if not isinstance(value, str):
        return None
    try:
        return normalise_email(value)
    except LeadKeyError:
        return None


def _id(
    data: Mapping[str, Any], key: str, prefix: str, *, blank_is_absent: bool = False
) -> str | None:
    """An identifier: a string, or a number as the SDKs accept one (``42`` is ``"42"``).

    ``blank_is_absent``: an empty string is no id at all (RudderStack's browser SDK sends
    ``"userId": ""`` for every anonymous visitor).

    >>> _id({"userId": ""}, "userId", "", blank_is_absent=True) is None
    True
    >>> _id({"userId": 42.0}, "userId", ""), _id({"userId": " u1 "}, "userId", "")
    ('42', 'u1')
    """
    value = data.get(key)
    if value is None:
        return None
    if type(value) is str:
        text = value.strip()
        if text and len(text) <= MAX_ID_CHARS:
            return text  # the common case, before the checks that name what is wrong
    field = _place(prefix, key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SegmentError(field, f"must be a string or a number, not {_kind(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SegmentError(field, f"{value!r} is not an id")
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value).strip()
    if not text:
        if blank_is_absent:
            return None
        raise SegmentError(field, "is empty (leave it out, or give an id)")
    if len(text) > MAX_ID_CHARS:
        raise SegmentError(field, f"is {len(text)} characters; the limit is {MAX_ID_CHARS}")
    return text


def _instant(data: Mapping[str, Any], key: str, prefix: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SegmentError(
            _place(prefix, key),
            f"must be an ISO 8601 string, e.g. 2024-02-29T10:00:00Z, not {_kind(value)}",
        )
    try:
        return parse_instant(value)
    except TimeFormatError as error:
        raise SegmentError(_place(prefix, key), str(error)) from None


def _object(data: Mapping[str, Any], key: str, prefix: str, name: str) -> dict[str, Any]:
    """The object under ``key`` (at ``name`` in the message), ``{}`` when absent or null."""
    value = data.get(key)
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    raise SegmentError(_place(prefix, name), f"must be an object, not {_kind(value)}")


def _derived_id(data: Mapping[str, Any], call: str) -> str:
    """A stable id for a message that came without ``messageId``: a retried message gets
    the same one, whenever it was sent, so it is stored once."""
    canonical = {
        k: v for k, v in data.items() if k not in ("sentAt", "receivedAt", "messageId", "writeKey")
    }
    canonical["type"] = call
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return "seg-" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return instant.astimezone(UTC)


def _kind(value: object) -> str:
    """How JSON would name a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
