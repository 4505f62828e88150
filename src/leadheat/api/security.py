"""Who may call: API keys with scopes, as a bearer token or (for analytics SDKs) a write key.

Missing or unknown key → 401; a key without the route's scope → 403.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


def check(
    lh: Leadheat, key: str | None, scope: Scope, limiter: RateLimiter | None = None
) -> KeyInfo:
    """The key's record if it may act in ``scope``; else the right HTTP error (429 when
    ``limiter`` says the key has sent too much)."""
    if not key:
        raise HTTPException(401, "an API key is required (Authorization: Bearer lh_…)")
    info = lh.verify_key(key)
    if info is None:
        raise HTTPException(401, "the API key is unknown or revoked")
    if not info.allows(scope):
        raise HTTPException(
            403, f"this key has scopes {', '.join(sorted(info.scopes))}; this needs {scope}"
        )
    if limiter is not None:
        limiter.check(info.prefix)
    return info


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
        return check(service_of(request), key, scope, ingest_limiter(request, scope))

    return dependency


def ingest_limiter(request: Request, scope: Scope) -> RateLimiter | None:
    """The app's per-key limiter, for the routes that take data from the outside."""
    if scope is not Scope.INGEST:
        return None
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    return limiter


def write_key(request: Request, body_key: object) -> str | None:
    """A Segment write key: HTTP Basic with the key as user name, or ``writeKey`` in the body."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "the Basic authorization header is not base64") from None
        return decoded.partition(":")[0] or None
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return body_key if isinstance(body_key, str) and body_key else None
