"""API keys: made (the key shown once, only its hash stored), listed, revoked, and checked on
every request through a small cache, each change audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadheat.core import Core
from leadheat.errors import LeadheatError
from leadheat.store import audit
from leadheat.store import keys as stored_keys
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction
from leadheat.store.keys import KeyInfo, Scope, VerifiedKeys, well_formed

KEY_CACHE_SECONDS = 5.0
"""How long a verified key is trusted without asking the database: a revocation (from
another process too) takes effect within this."""
KEY_CACHE_SIZE = 1024
"""How many verified keys are remembered (by hash), the least recently used forgotten first."""


def key_cache() -> VerifiedKeys:
    """An empty cache of verified keys, one per process (see :func:`verify_key`)."""
    return VerifiedKeys(KEY_CACHE_SIZE, KEY_CACHE_SECONDS)


def create_key(
    core: Core,
    name: str,
    scopes: Sequence[Scope | str],
    *,
    public: bool = False,
    origins: Sequence[str] = (),
    actor: str = DEFAULT_ACTOR,
) -> tuple[str, KeyInfo]:
    """A new API key; the returned key string is shown once and never stored.

    ``public`` makes a publishable key for web pages (``ingest`` alone), accepted from
    browsers only on ``origins`` (``https://www.acme.com``); see SECURITY.md.
    """
    core.playbook()
    try:
        wanted = frozenset(Scope(s) for s in scopes)
    except ValueError:
        raise LeadheatError(f"scopes {list(scopes)!r} must be among ingest, read, admin") from None
    now = core.clock()
    with core.transaction() as connection:
        try:
            key, info = stored_keys.create_key(
                connection, name, wanted, now, public=public, origins=origins
            )
        except ValueError as error:
            raise LeadheatError(str(error)) from None
        details: dict[str, Any] = {"name": name, "scopes": sorted(info.scopes)}
        if info.public:
            details.update(public=True, origins=list(info.origins))
        audit.record(connection, now, actor, AuditAction.KEY_CREATE, f"key:{info.prefix}", details)
    return key, info


def list_keys(core: Core) -> list[KeyInfo]:
    """Every key, revoked ones too (never the key text: only its prefix)."""
    with core.engine.connect() as connection:
        return stored_keys.list_keys(connection)


def revoke_key(
    core: Core, cache: VerifiedKeys, prefix_or_name: str, *, actor: str = DEFAULT_ACTOR
) -> int:
    """Revoke the active keys with this prefix or name; returns how many. This process's
    ``cache`` forgets every key at once; other processes' within :data:`KEY_CACHE_SECONDS`."""
    now = core.clock()
    with core.transaction() as connection:
        revoked = [
            k
            for k in stored_keys.list_keys(connection)
            if k.revoked_at is None and prefix_or_name in (k.prefix, k.name)
        ]
        count = stored_keys.revoke_key(connection, prefix_or_name, now)
        audit.record_many(
            connection,
            now,
            actor,
            [(AuditAction.KEY_REVOKE, f"key:{k.prefix}", {"name": k.name}) for k in revoked],
        )
    cache.clear()
    return count


def verify_key(core: Core, cache: VerifiedKeys, key: str) -> KeyInfo | None:
    """The key's record if it is valid; remembered for a few seconds so that busy
    collection endpoints do not query for every request (revocations apply within
    :data:`KEY_CACHE_SECONDS`). A key that does not have a key's shape is refused
    before any lookup, and none is remembered by its text (only by its hash)."""
    if not well_formed(key):
        return None
    known, cached = cache.get(key)
    if known:
        return cached
    with core.engine.connect() as connection:
        info = stored_keys.verify_key(connection, key)
    cache.put(key, info)
    return info
