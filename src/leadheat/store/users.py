"""Dashboard users and their sessions (rows only; hashing and cookies live in ``web/``).

A session row is keyed by the SHA-256 of the cookie's token: the database never holds a
token that would open a session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from leadheat.identity import LeadKeyError, normalise_email
from leadheat.store.models import User, WebSession

ROLES = ("rep", "manager")


@dataclass(frozen=True)
class Account:
    """Who is signed in: enough to decide what they may see and do."""

    id: int
    email: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


@dataclass(frozen=True)
class SessionInfo:
    account: Account
    csrf_token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    """The key a session is stored under.

    >>> len(token_hash("abc"))
    64
    """
    return hashlib.sha256(token.encode()).hexdigest()


def save_user(
    connection: Connection, email: str, role: str, password_hash: str, now: datetime
) -> tuple[Account, bool]:
    """Add a user, or give an existing one this role and password (ending their sessions);
    returns the account and whether it is new."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
    try:  # one address: alerts for the leads they own go to it
        email = normalise_email(email)
    except LeadKeyError:
        raise ValueError(f"{email.strip()!r} is not an email address") from None
    found = connection.execute(select(User.id).where(User.email == email)).scalar()
    if found is None:
        user_id = connection.execute(
            insert(User)
            .values(email=email, role=role, password_hash=password_hash, created_at=now)
            .returning(User.id)
        ).scalar_one()
        return Account(user_id, email, role), True
    connection.execute(
        update(User).where(User.id == found).values(role=role, password_hash=password_hash)
    )
    connection.execute(delete(WebSession).where(WebSession.user_id == found))
    return Account(found, email, role), False


def credentials(connection: Connection, email: str) -> tuple[Account, str] | None:
    """The account and stored password hash for ``email`` (any case), if there is one."""
    row = connection.execute(
        select(User.id, User.email, User.role, User.password_hash).where(
            User.email == email.strip().lower()
        )
    ).first()
    return None if row is None else (Account(row.id, row.email, row.role), row.password_hash)


def open_session(
    connection: Connection,
    account: Account,
    token: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Store a new session; expired ones are swept on the way (sign-ins are rare)."""
    connection.execute(delete(WebSession).where(WebSession.expires_at <= now))
    connection.execute(
        insert(WebSession).values(
            token_sha256=token_hash(token),
            user_id=account.id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )
    )


def find_session(connection: Connection, token: str, now: datetime) -> SessionInfo | None:
    """The live session behind ``token``; ``None`` when unknown or expired."""
    row = connection.execute(
        select(User.id, User.email, User.role, WebSession.csrf_token, WebSession.expires_at)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_sha256 == token_hash(token), WebSession.expires_at > now)
    ).first()
    if row is None:
        return None
    return SessionInfo(Account(row.id, row.email, row.role), row.csrf_token, row.expires_at)


def close_session(connection: Connection, token: str) -> None:
    connection.execute(delete(WebSession).where(WebSession.token_sha256 == token_hash(token)))


def list_users(connection: Connection) -> list[Account]:
    return [
        Account(row.id, row.email, row.role)
        for row in connection.execute(select(User.id, User.email, User.role).order_by(User.email))
    ]
