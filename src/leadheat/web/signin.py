"""``/login`` and ``/logout``: the only dashboard routes open without a session."""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadheat.api import limits
from leadheat.api.limits import RateLimiter
from leadheat.service import Leadheat
from leadheat.store.users import SessionInfo
from leadheat.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    form_of,
    same_origin,
    set_session_cookie,
    sign_in,
    sign_out,
    signed_in,
)
from leadheat.web.render import page

router = APIRouter(include_in_schema=False)


class SignInThrottle:
    """How many failed sign-ins an email may have from one client address, a client address
    may have for any email, and an email may have from addresses it never signed in from: a
    few at once, then one more now and then (``app.state.sign_in_throttle``).

    scrypt makes each guess cost 0.2 s of the server's time, which alone still allows
    hundreds of thousands of guesses a day. Only failures count, so people signing in every
    morning never meet the limit. While an allowance is spent, every attempt it covers is
    refused before the password is checked, the right one too, so a guesser learns nothing
    from the answer.

    The tight limit is per email *and* address: someone guessing a person's password from
    their own machine holds back only themselves, never the person signing in from theirs
    (a limit per email alone let anyone lock anyone out with five wrong passwords). Guesses
    spread over many addresses meet the email's own, much larger allowance, which does not
    apply from an address the person has signed in from before. Each allowance keeps its
    ``limits.MAX_BUCKETS`` most recently used buckets (a flood of junk failures forgets the
    idle ones, never an attacker's being held back). They live in the process, like the
    API's rate limits: with several server processes each keeps its own.
    """

    PER_PAIR = (5.0, 60.0)
    """Five failures for one email from one address, then one more a minute."""
    PER_ADDRESS = (20.0, 6.0)
    """Twenty from one client address (a whole office may share one), then one every 6 s."""
    PER_EMAIL = (50.0, 30.0)
    """Fifty for one email from addresses it has not signed in from, then one every 30 s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        capacity = limits.MAX_BUCKETS
        self._by_pair = RateLimiter(1 / self.PER_PAIR[1], self.PER_PAIR[0], clock, capacity)
        self._by_address = RateLimiter(
            1 / self.PER_ADDRESS[1], self.PER_ADDRESS[0], clock, capacity
        )
        self._by_email = RateLimiter(1 / self.PER_EMAIL[1], self.PER_EMAIL[0], clock, capacity)
        self._known: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def wait(self, email: str, address: str) -> float:
        """Seconds before this email may try from this address (0: now)."""
        pair = _pair_key(email, address)
        waits = [self._by_pair.peek(pair), self._by_address.peek(address)]
        with self._lock:
            known = pair in self._known
        if not known:
            waits.append(self._by_email.peek(_email_key(email)))
        return max(waits)

    def failed(self, email: str, address: str) -> None:
        """Count a failed attempt against every allowance it falls under."""
        self._by_pair.wait(_pair_key(email, address))
        self._by_address.wait(address)
        self._by_email.wait(_email_key(email))

    def succeeded(self, email: str, address: str) -> None:
        """Remember that this person signed in from this address: guesses at their password
        from elsewhere never hold them back here."""
        pair = _pair_key(email, address)
        with self._lock:
            self._known[pair] = None
            self._known.move_to_end(pair)
            while len(self._known) > self._capacity:
                self._known.popitem(last=False)


def _pair_key(email: str, address: str) -> str:
    return f"{_email_key(email)}\n{address}"


MAX_EMAIL = 320
"""The longest email address there is (RFC 3696): what a throttle's key keeps of the field,
so that 10,000 remembered failures cost kilobytes each at most, whatever was typed."""


def _email_key(email: str) -> str:
    """
    >>> _email_key(" Rita@Example.com "), len(_email_key("x" * 5_000_000))
    ('rita@example.com', 320)
    """
    return email.strip().casefold()[:MAX_EMAIL]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site.

    >>> safe_next("/leads/3"), safe_next("//evil.example"), safe_next("https://x"), safe_next(None)
    ('/leads/3', '/', '/', '/')
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _login_page(
    request: Request, next_url: str, error: str = "", email: str = "", status: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        None,
        status_code=status,
        login_csrf=token,
        next=next_url,
        error=error,
        email=email,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = form.get("csrf_token", "")
    if not cookie or not same_origin(request) or not hmac.compare_digest(sent, cookie):
        raise HTTPException(403, "the sign-in form is stale or from another site: reload it")
    lh: Leadheat = request.app.state.lh
    ttl: timedelta = request.app.state.session_ttl
    email, next_url = form.get("email", ""), safe_next(form.get("next"))
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else ""
    wait = throttle.wait(email, address)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        refused = _login_page(
            request,
            next_url,
            f"too many failed sign-ins: try again in {seconds} s",
            email,
            status=429,
        )
        refused.headers["Retry-After"] = str(seconds)
        return refused
    try:
        token = sign_in(lh, email, form.get("password", ""), ttl)
    except PermissionError as error:
        throttle.failed(email, address)
        return _login_page(request, next_url, str(error), email, status=401)
    throttle.succeeded(email, address)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(request, response, token, ttl)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionInfo = Depends(signed_in)) -> Response:  # noqa: B008
    check_csrf(request, session, await form_of(request))
    sign_out(request.app.state.lh, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
