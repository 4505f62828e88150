"""API keys: created with scopes, shown once, stored as a hash, revocable.

A key looks like ``lh_3f9a0c1d_<secret>``: the short prefix finds the row, the secret is
compared by its SHA-256 (a key is 190 random bits, so a fast hash is enough; a password KDF
would only slow every request).

A *public* (publishable) key is an ingest key meant to be embedded in a web page: it only
collects, only from its listed web origins when a browser sends it, and what it may do to a
lead is limited (SECURITY.md).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select, update

from leadheat.store.models import ApiKey


class Scope(enum.StrEnum):
    """``ingest``: collection only, safe to embed in a web page; ``read``: lists and leads;
    ``admin``: everything, including writes and the playbook."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


KEY_SHAPE = re.compile(r"lh_[0-9a-f]{8}_[A-Za-z0-9_-]{32}")
"""Every key :func:`create_key` makes: ``lh_``, 8 hex digits, ``secrets.token_urlsafe(24)``."""
MAX_KEY_CHARS = 44
"""The length of every key: anything longer is refused before it is hashed or looked up."""


def well_formed(key: str) -> bool:
    """Whether ``key`` has the shape of a leadheat key; a made-up one of any other shape
    (or size) is refused before any database lookup.

    >>> well_formed("lh_3f9a0c1d_" + "a" * 32), well_formed("lh_3f9a0c1d_short")
    (True, False)
    >>> well_formed("lh_3f9a0c1d_" + "a" * 400_000)
    False
    """
    return len(key) == MAX_KEY_CHARS and KEY_SHAPE.fullmatch(key) is not None


def normalise_origin(text: str) -> str:
    """A web origin as browsers send it in ``Origin``: ``scheme://host[:port]``, lower case,
    without the scheme's default port or a trailing ``/``; anything else (a path, a query,
    a user) is refused.

    >>> normalise_origin("HTTPS://www.Acme.com:443")
    'https://www.acme.com'
    >>> normalise_origin("http://127.0.0.1:8080/")
    'http://127.0.0.1:8080'
    >>> normalise_origin("https://www.acme.com/pricing")
    Traceback (most recent call last):
    ...
    ValueError: 'https://www.acme.com/pricing' is not a web origin (scheme://host[:port], e.g. https://www.acme.com)
    """
    problem = ValueError(
        f"{text!r} is not a web origin (scheme://host[:port], e.g. https://www.acme.com)"
    )
    if len(text) > 300 or not text.isascii() or any(c.isspace() for c in text):
        raise problem
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise problem from None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or text.endswith(("?", "#"))
    ):
        raise problem
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None
    public: bool = False
    """A publishable key for web pages: it only collects (SECURITY.md)."""
    origins: tuple[str, ...] = ()
    """The web origins a public key is accepted from when a browser sends it."""

    def admits(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` header may use the key. Requests without
        one (server SDKs) are judged by the key alone; a secret key is not tied to origins.

        >>> from datetime import UTC, datetime
        >>> key = KeyInfo(1, "site", "3f9a0c1d", frozenset({Scope.INGEST}), datetime.now(UTC),
        ...               None, public=True, origins=("https://www.acme.com",))
        >>> key.admits("https://www.acme.com"), key.admits(None), key.admits("https://evil.example")
        (True, True, False)
        """
        return not self.public or origin is None or origin in self.origins

    def allows(self, scope: Scope) -> bool:
        """Whether this key may do what ``scope`` covers; ``admin`` covers everything."""
        return self.revoked_at is None and (scope in self.scopes or Scope.ADMIN in self.scopes)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    connection: Connection,
    name: str,
    scopes: frozenset[Scope],
    now: datetime,
    *,
    public: bool = False,
    origins: Iterable[str] = (),
) -> tuple[str, KeyInfo]:
    """A new key and its record; the key itself is never stored and cannot be shown again.

    A public key has the ``ingest`` scope alone; ``origins`` (only for public keys) are
    normalised with :func:`normalise_origin`.
    """
    if not scopes:
        raise ValueError("a key needs at least one scope: ingest, read or admin")
    listed = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    if public and scopes != {Scope.INGEST}:
        raise ValueError(
            "a public key only collects: give it --scope ingest alone "
            f"(not {', '.join(sorted(scopes))})"
        )
    if listed and not public:
        raise ValueError("--origin is for public keys (add --public)")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    key_id = connection.execute(
        insert(ApiKey)
        .values(
            name=name,
            prefix=prefix,
            secret_sha256=_digest(secret),
            scopes=",".join(sorted(scopes)),
            created_at=now,
            public=public,
            origins=list(listed) if public else None,
        )
        .returning(ApiKey.id)
    ).scalar_one()
    info = KeyInfo(key_id, name, prefix, scopes, now, None, public, listed)
    return f"lh_{prefix}_{secret}", info


def verify_key(connection: Connection, key: str) -> KeyInfo | None:
    """The record of a valid, unrevoked key, else ``None`` (malformed, unknown, wrong)."""
    if not well_formed(key):
        return None
    parts = key.split("_", 2)
    row = connection.execute(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_sha256, _digest(parts[2])):
        return None
    return _info(row)


def _info(row: object) -> KeyInfo:
    return KeyInfo(
        row.id,  # type: ignore[attr-defined]
        row.name,  # type: ignore[attr-defined]
        row.prefix,  # type: ignore[attr-defined]
        frozenset(Scope(s) for s in row.scopes.split(",")),  # type: ignore[attr-defined]
        row.created_at,  # type: ignore[attr-defined]
        row.revoked_at,  # type: ignore[attr-defined]
        bool(row.public),  # type: ignore[attr-defined]
        tuple(row.origins or ()),  # type: ignore[attr-defined]
    )


def list_keys(connection: Connection) -> list[KeyInfo]:
    return [_info(row) for row in connection.execute(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(connection: Connection, prefix_or_name: str, now: datetime) -> int:
    """Revoke keys by prefix (or by name); returns how many were revoked."""
    result = connection.execute(
        update(ApiKey)
        .where(
            (ApiKey.prefix == prefix_or_name) | (ApiKey.name == prefix_or_name),
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount)


class VerifiedKeys:
    """Recently verified keys (and recently refused well-formed ones), so that busy
    collection endpoints do not query for every request.

    Remembered by the SHA-256 of the key, never the key itself, for ``ttl`` seconds (a
    revocation takes effect within that), and at most ``size`` of them, the least recently
    used going first: made-up keys cannot grow the process.

    >>> now = [0.0]
    >>> cache = VerifiedKeys(size=2, ttl=5, clock=lambda: now[0])
    >>> cache.put("lh_a", None); cache.put("lh_b", None); cache.get("lh_a")
    (True, None)
    >>> cache.put("lh_c", None); cache.get("lh_b")  # the least recently used went
    (False, None)
    >>> now[0] = 6.0; cache.get("lh_a")  # too old
    (False, None)
    """

    def __init__(
        self, size: int = 1024, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[KeyInfo | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, KeyInfo | None]:
        """``(True, record)`` when ``key`` was verified within the TTL, else ``(False, None)``."""
        digest = hashlib.sha256(key.encode()).digest()
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return False, None
            if entry[1] <= self.clock():
                del self._entries[digest]
                return False, None
            self._entries.move_to_end(digest)
            return True, entry[0]

    def put(self, key: str, info: KeyInfo | None) -> None:
        digest = hashlib.sha256(key.encode()).digest()
        with self._lock:
            self._entries[digest] = (info, self.clock() + self.ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
