"""Who may call: API keys with scopes, as a bearer token or (for analytics SDKs) a write key.

Missing or unknown key → 401 (and it counts against the client address's rate limit, so
guessing keys is as slow as sending); a key without the route's scope → 403; a public key
anywhere but on the collection routes → 403.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadheat.api.group_commit import EventCommit, GroupCommit
from leadheat.api.limits import RateLimiter
from leadheat.service import Leadheat
from leadheat.store.keys import KeyInfo, Scope

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer lh_…`")


async def leadheat(request: Request) -> Leadheat:
    """The service behind this app (a coroutine: a dependency this cheap should not cost a
    trip to the thread pool)."""
    return service_of(request)


def service_of(request: Request) -> Leadheat:
    lh: Leadheat = request.app.state.lh
    return lh


def group_commit_of(request: Request) -> GroupCommit:
    """The app's writer of collection requests (:mod:`leadheat.api.group_commit`)."""
    writer: GroupCommit = request.app.state.group_commit
    return writer


def event_commit_of(request: Request) -> EventCommit:
    """The app's writer of ``POST /api/v1/events`` (:mod:`leadheat.api.group_commit`)."""
    writer: EventCommit = request.app.state.event_commit
    return writer


def check(
    lh: Leadheat,
    key: str | None,
    scope: Scope,
    limiter: RateLimiter | None = None,
    *,
    client: str | None = None,
    collection: bool = False,
) -> KeyInfo:
    """The key's record if it may act in ``scope``; else the right HTTP error (429 when
    ``limiter`` says the ``client`` address that sent a missing or unknown key, or an
    ingest key, has sent too much). Public keys are accepted only where ``collection``
    says so."""
    if not key:
        _failed(limiter, client)
        raise HTTPException(401, "an API key is required (Authorization: Bearer lh_…)")
    info = lh.verify_key(key)
    if info is None:
        _failed(limiter, client)
        raise HTTPException(401, "the API key is unknown or revoked")
    if info.public and not collection:
        raise HTTPException(
            403,
            "this is a public key: it only collects analytics calls (/v1/…, "
            "/beacon/v1/batch); this route needs a secret key",
        )
    if not info.allows(scope):
        raise HTTPException(
            403, f"this key has scopes {', '.join(sorted(info.scopes))}; this needs {scope}"
        )
    if limiter is not None and scope is Scope.INGEST:
        limiter.check(info.prefix)
    return info


def _failed(limiter: RateLimiter | None, client: str | None) -> None:
    """A missing or unknown key takes a token from its sender's address."""
    if limiter is not None and client is not None:
        limiter.check(f"client:{client}", "this address (its keys were missing or unknown)")


def client_address(request: Request) -> str | None:
    """The address the request came from (the proxy's, behind one)."""
    return request.client.host if request.client else None


def actor(key: KeyInfo) -> str:
    """Who the audit log says acted for a request: the key's public prefix, never its secret.

    >>> from datetime import UTC, datetime
    >>> actor(KeyInfo(1, "crm sync", "3f9a0c1d", frozenset({Scope.ADMIN}), datetime.now(UTC), None))
    'api:3f9a0c1d'
    """
    return f"api:{key.prefix}"


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, KeyInfo]]:
    """A dependency that admits keys allowed ``scope`` (``admin`` is allowed everything)."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> KeyInfo:
        # verified keys are cached, so this rarely touches the database
        key = credentials.credentials if credentials else None
        return check(
            service_of(request), key, scope, app_limiter(request), client=client_address(request)
        )

    return dependency


def ingest_limiter(request: Request, scope: Scope) -> RateLimiter | None:
    """The app's per-key limiter, for the routes that take data from the outside."""
    if scope is not Scope.INGEST:
        return None
    return app_limiter(request)


def app_limiter(request: Request) -> RateLimiter | None:
    """The app's token buckets (none when ``rate_limit`` is 0)."""
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    return limiter


def write_key(request: Request, body_key: object) -> str | None:
    """A Segment write key: HTTP Basic with the key as user name, a bearer token, ``writeKey``
    in the query string (what ``navigator.sendBeacon`` can send: it sets no headers), or
    ``writeKey`` in the body."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "the Basic authorization header is not base64") from None
        return decoded.partition(":")[0] or None
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    if "writeKey" in request.query_params:
        return request.query_params["writeKey"] or None
    return body_key if isinstance(body_key, str) and body_key else None
