"""How a lead is named from outside: an email, an external id, or an anonymous id."""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

IdentityKind = Literal["email", "external", "anonymous"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
        return LeadKey("anonymous", anonymous)
    if "@" in raw:
        return LeadKey("email", normalise_email(raw))
    return LeadKey("external", raw)
