"""How a lead is named from outside: an email, an external id, or an anonymous id."""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

IdentityKind = Literal["email", "external", "anonymous"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_CHARS = 320
"""The longest email (RFC 5321: 64 characters, ``@``, 255) and the width of the stored one."""
MAX_ID_CHARS = 200
"""The longest external or anonymous id: the width of the stored external id."""


class LeadKeyError(ValueError):
    """A lead reference that names nobody (empty, or a malformed email)."""


class LeadKey(NamedTuple):
    """A lead's identity of one kind. A named tuple: millions are hashed during imports."""

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return self.value if self.kind != "anonymous" else f"anon:{self.value}"


def normalise_email(text: str) -> str:
    """Emails compare case-insensitively and without surrounding space.

    >>> normalise_email("  Ana.Lopez@Example.COM ")
    'ana.lopez@example.com'
    """
    email = text.strip().lower()
    if len(email) > MAX_EMAIL_CHARS:
        raise LeadKeyError(_too_long(email, MAX_EMAIL_CHARS, "an email"))
    if not _EMAIL.match(email):
        raise LeadKeyError(f"{text!r} is not an email address")
    return email


def parse_lead_key(text: str) -> LeadKey:
    """Read a lead reference: anything with an ``@`` is an email, ``anon:…`` an anonymous
    visitor, anything else an external id (a CRM or shop customer number).

    >>> parse_lead_key("Ana@Example.com")
    LeadKey(kind='email', value='ana@example.com')
    >>> parse_lead_key("00042").kind, parse_lead_key("anon:x1").kind
    ('external', 'anonymous')
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise LeadKeyError("empty lead reference (give an email or an external id)")
    if raw.startswith("anon:"):
        anonymous = raw.removeprefix("anon:").strip()
        if not anonymous:
            raise LeadKeyError(f"{text!r} has no anonymous id after 'anon:'")
        if len(anonymous) > MAX_ID_CHARS:
            raise LeadKeyError(_too_long(anonymous, MAX_ID_CHARS, "an anonymous id"))
        return LeadKey("anonymous", anonymous)
    if "@" in raw:
        return LeadKey("email", normalise_email(raw))
    if len(raw) > MAX_ID_CHARS:
        raise LeadKeyError(_too_long(raw, MAX_ID_CHARS, "an external id"))
    return LeadKey("external", raw)


def _too_long(text: str, limit: int, what: str) -> str:
    """Say a key is too long without repeating all of it: a database column cannot hold it
    (PostgreSQL refuses it mid-transaction; SQLite would store what others cannot).

    >>> _too_long("x" * 500, 200, "an external id")
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is 500 characters; an external id has at most 200"
    """
    return f"{text[:30] + '…'!r} is {len(text)} characters; {what} has at most {limit}"
