"""Signing in to the dashboard: accounts, server-side sessions, CSRF.

A session is a random token in an ``HttpOnly``, ``SameSite=Lax`` cookie; the database keeps
its SHA-256, its CSRF token and its expiry (``LEADHEAT_SESSION_TTL``). Every form that
changes something carries the session's CSRF token and is refused (403) without it; the
sign-in form, which comes before any session, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request, Response

from leadheat.service import Leadheat
from leadheat.store import audit
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction
from leadheat.store.users import (
    Account,
    SessionInfo,
    close_session,
    credentials,
    find_session,
    open_session,
    save_user,
)
from leadheat.web.passwords import dummy_hash, hash_password, verify_password

SESSION_COOKIE = "leadheat_session"
LOGIN_CSRF_COOKIE = "leadheat_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def add_user(
    lh: Leadheat, email: str, role: str, password: str, *, actor: str = DEFAULT_ACTOR
) -> tuple[Account, bool]:
    """Add a dashboard user (or reset one's role and password, which signs them out); the
    audit log says who did it (never the password or its hash)."""
    stored = hash_password(password)
    with lh.transaction() as connection:
        account, created = save_user(connection, email, role, stored, lh.clock())
        audit.record(
            connection,
            lh.clock(),
            actor,
            AuditAction.USER_ADD,
            account.email,
            {"role": account.role, "created": created},
        )
    return account, created


def sign_in(lh: Leadheat, email: str, password: str, ttl: timedelta) -> str:
    """A new session (its cookie token) for the user whose password this is;
    ``PermissionError`` otherwise (the same one for an unknown email and a wrong password)."""
    with lh.engine.connect() as connection:
        found = credentials(connection, email)
    if found is None:
        verify_password(password, dummy_hash())
        raise PermissionError("the email or password is wrong")
    account, stored = found
    if not verify_password(password, stored):
        raise PermissionError("the email or password is wrong")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = lh.clock()
    with lh.transaction() as connection:
        open_session(connection, account, token, csrf, now, now + ttl)
    return token


def sign_out(lh: Leadheat, token: str) -> None:
    with lh.transaction() as connection:
        close_session(connection, token)


def session_of(request: Request) -> SessionInfo | None:
    """The live session of this request's cookie, if any."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    lh: Leadheat = request.app.state.lh
    with lh.engine.connect() as connection:
        return find_session(connection, token, lh.clock())


async def signed_in(request: Request) -> SessionInfo:
    """A dependency: the session, or off to the sign-in page (htmx follows ``HX-Redirect``)."""
    session = session_of(request)
    if session is not None:
        return session
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        raise HTTPException(401, "sign in again", headers={"HX-Redirect": login})
    raise HTTPException(303, "sign in first", headers={"Location": login})


async def form_of(request: Request) -> dict[str, str]:
    """An url-encoded form body as a dict (first value of each field)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def form_lists(request: Request) -> dict[str, list[str]]:
    """An url-encoded form body with every value of each field (checkboxes of one name)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def same_origin(request: Request) -> bool:
    """Browsers send ``Origin`` with form posts; one naming another site is refused outright
    (an absent or ``null`` origin leaves the decision to the CSRF token)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


def check_csrf(request: Request, session: SessionInfo, form: dict[str, str]) -> None:
    """403 unless the form (or the ``X-CSRF-Token`` header) carries the session's token."""
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not same_origin(request) or not hmac.compare_digest(
        sent.encode(), session.csrf_token.encode()
    ):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")


def set_session_cookie(request: Request, response: Response, token: str, ttl: timedelta) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
