"""API keys: created with scopes, shown once, stored as a hash, revocable.

A key looks like ``lh_3f9a0c1d_<secret>``: the short prefix finds the row, the secret is
compared by its SHA-256 (a key is 190 random bits, so a fast hash is enough; a password KDF
would only slow every request).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from leadheat.store.models import ApiKey


class Scope(enum.StrEnum):
    """``ingest``: collection only, safe to embed in a web page; ``read``: lists and leads;
    ``admin``: everything, including writes and the playbook."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        """Whether this key may do what ``scope`` covers; ``admin`` covers everything."""
        return self.revoked_at is None and (scope in self.scopes or Scope.ADMIN in self.scopes)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    connection: Connection, name: str, scopes: frozenset[Scope], now: datetime
) -> tuple[str, KeyInfo]:
    """A new key and its record; the key itself is never stored and cannot be shown again."""
    if not scopes:
        raise ValueError("a key needs at least one scope: ingest, read or admin")
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
        )
        .returning(ApiKey.id)
    ).scalar_one()
    return f"lh_{prefix}_{secret}", KeyInfo(key_id, name, prefix, scopes, now, None)


def verify_key(connection: Connection, key: str) -> KeyInfo | None:
    """The record of a valid, unrevoked key, else ``None`` (malformed, unknown, wrong)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "lh" or not parts[1] or not parts[2]:
        return None
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
