"""CORS for the collection routes, so that analytics SDKs in a web page on another origin
can post: preflights answered, ``Access-Control-Allow-Origin`` on every answer.

The collection routes only take data (an answer is ``{"success": true}`` or an error), so
the CORS headers reflect the page's ``Origin``. What keeps a foreign page from using a
public key is not CORS (a browser's simple ``text/plain`` POST is sent without asking) but
the route itself: it refuses, and stores nothing from, an ``Origin`` the key does not list.
Such a refusal carries no ``Access-Control-Allow-Origin``.
"""

from __future__ import annotations

import re

from leadheat.api.limits import App, Message, Receive, Scope, Send

COLLECTION_PREFIXES = ("/v1/", "/beacon/v1/")
"""Segment-compatible collection; the REST API lives under ``/api/v1`` and gets no CORS."""
SDK_HEADERS = ("Content-Type", "Authorization", "AnonymousId", "SentAt", "Content-Encoding")
"""What the browser SDKs send: Segment's analytics-next (``Authorization: Basic``) and
RudderStack's analytics-js v3 (``AnonymousId``, ``SentAt``)."""
MAX_AGE = "7200"
"""Seconds a browser may reuse a preflight's answer (Chromium's own ceiling)."""
REFUSED_ORIGIN = "leadheat_refused_origin"
"""Set in the request's state by a route that refused the request's ``Origin``."""
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
MAX_REQUESTED_HEADERS = 20


def collection_path(path: str) -> bool:
    """Whether ``path`` is one of the collection routes.

    >>> [collection_path(p) for p in ("/v1/p", "/beacon/v1/batch", "/api/v1/leads")]
    [True, True, False]
    """
    return path.startswith(COLLECTION_PREFIXES)


def allowed_headers(requested: str) -> str:
    """The headers a preflight may allow: the SDKs' own and whatever else was asked for, as
    long as each is a plain header name (nothing else is echoed back).

    >>> allowed_headers("content-type, x-trace-id, bad header\\r\\nset-cookie: a")
    'Content-Type, Authorization, AnonymousId, SentAt, Content-Encoding, x-trace-id'
    """
    names = list(SDK_HEADERS)
    known = {n.lower() for n in names}
    for part in requested.split(",")[:MAX_REQUESTED_HEADERS]:
        name = part.strip()
        if _TOKEN.fullmatch(name) and name.lower() not in known:
            names.append(name)
            known.add(name.lower())
    return ", ".join(names)


class CollectionCors:
    """ASGI middleware: CORS on the collection routes only (outermost, so that every answer,
    a 413 or 429 included, carries the headers)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not collection_path(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            requested = headers.get(b"access-control-request-headers", b"").decode("latin-1")
            await _preflight(send, origin, allowed_headers(requested))
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                refused = scope.get("state", {}).get(REFUSED_ORIGIN, False)
                added = [(b"vary", b"Origin")]
                if not refused:
                    added.append((b"access-control-allow-origin", origin))
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_cors)


async def _preflight(send: Send, origin: bytes, headers: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-methods", b"POST, OPTIONS"),
                (b"access-control-allow-headers", headers.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
                (b"vary", b"Origin, Access-Control-Request-Headers"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
