"""Limits for traffic from the open internet: a token bucket per API key on the ingest
routes, a cap on every request body and on the time it may take to arrive, and the security
headers every response carries.

The collection key is embedded in public web pages, so anyone can send with it; the limit
keeps one noisy page (or one attacker) from starving the team's own traffic. Buckets live
in the process: with several ``serve`` processes each enforces its own share.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BUCKETS = 10_000
"""Buckets a limiter keeps (a few MB); past it the least recently used one is forgotten."""
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
API_ONLY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]
"""For JSON routes only: the interactive docs at ``/docs`` load their own scripts."""


class RateLimited(HTTPException):
    """429 with ``Retry-After``: how many whole seconds until the key may send again."""

    def __init__(self, wait: float, sender: str = "this API key") -> None:
        seconds = max(1, math.ceil(wait))
        super().__init__(
            429,
            f"too many requests for {sender}; retry after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second on average, bursts up to ``burst``.

    At most ``capacity`` buckets are kept, the least recently used forgotten first, so a
    flood of made-up keys neither grows memory nor resets the buckets of keys in use (it
    cleared every bucket once, which handed an attacker being held back a fresh allowance).

    >>> now = [0.0]
    >>> limiter = RateLimiter(rate=2, burst=2, clock=lambda: now[0])
    >>> [limiter.wait("k") for _ in range(3)]
    [0.0, 0.0, 0.5]
    >>> now[0] = 0.5
    >>> limiter.wait("k")
    0.0
    >>> small = RateLimiter(rate=1, burst=1, clock=lambda: now[0], capacity=2)
    >>> small.wait("held"), small.wait("a"), small.peek("held"), small.wait("b")
    (0.0, 0.0, 1.0, 0.0)
    >>> small.peek("held"), small.peek("a")  # "a" was the least recently used
    (1.0, 0.0)
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int | None = None,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.clock = clock
        self.capacity = max(1, capacity or MAX_BUCKETS)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Take a token for ``key``: 0 if there was one, else the seconds until there is."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            taken = tokens >= 1
            self._buckets[key] = (tokens - 1 if taken else tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
            return 0.0 if taken else (1 - tokens) / self.rate

    def peek(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 if it has one now), taking none; a key
        asked about counts as used (an attacker being refused stays remembered).

        >>> now = [0.0]
        >>> limiter = RateLimiter(rate=1, burst=1, clock=lambda: now[0])
        >>> limiter.peek("k"), limiter.wait("k"), limiter.peek("k"), limiter.peek("k")
        (0.0, 0.0, 1.0, 1.0)
        """
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            if key in self._buckets:
                self._buckets.move_to_end(key)
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def check(self, key: str, sender: str = "this API key") -> None:
        """Raise :class:`RateLimited` (naming the ``sender``) when ``key`` has no token left."""
        wait = self.wait(key)
        if wait > 0:
            raise RateLimited(wait, sender)


class Guard:
    """ASGI middleware: refuse bodies over ``max_body`` bytes with 413 (before reading the
    rest), cut off a body that has not all arrived ``body_timeout`` seconds after the request
    began with 408 (and close the connection), and add the security headers to every
    response.

    The time limit is on the whole body, not on each piece: a client that sends one byte
    every two seconds never trips a per-read timeout (nor uvicorn's keep-alive timeout,
    which only counts idle time between requests), yet holds a request and its worker for
    as long as it likes; a few hundred such clients would hold the server.
    """

    def __init__(self, app: App, max_body: int, body_timeout: float = 30.0) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        extra = [] if path.startswith(("/docs", "/redoc")) else API_ONLY_HEADERS
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _too_large(send, self.max_body, extra)
            return
        seen = 0
        complete = False
        deadline = time.monotonic() + self.body_timeout

        async def counted() -> Message:
            nonlocal seen, complete
            if complete:  # after the body: waiting for a disconnect is not limited
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body did not arrive within {self.body_timeout:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_body:
                    raise HTTPException(413, f"the body is over the limit of {self.max_body} bytes")
            else:
                complete = True
            return message

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a response that states its own policy (the dashboard's pages) keeps it
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                added = [h for h in (*SECURITY_HEADERS, *extra) if h[0] not in present]
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, counted, secured)


async def _too_large(send: Send, limit: int, extra: list[tuple[bytes, bytes]]) -> None:
    body = (
        b'{"error":"the body is over the limit of ' + str(limit).encode() + b' bytes",'
        b'"field":"body"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
