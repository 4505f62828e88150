"""How a lead is named from outside: an email, an external id, or an anonymous id.

A value of the domain, below storage: ``store/`` keeps leads by these keys, ``ingest/`` and the
faces parse them, and none of them needs the others to know what a key is.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

IdentityKind = Literal["email", "external", "anonymous"]


def _or_non_ascii(ascii_class: str) -> str:
    """A character class matching what ``ascii_class`` matches in ASCII and every non-ASCII
    character (UTF-8 is allowed, as RFC 6531 does), written as the ASCII characters it leaves
    out: ``re`` compiles ``[a-z\u0080-\U0010ffff]`` in tens of milliseconds (it walks the
    range), the same class as a complement in microseconds, and every command that names a
    lead compiles it."""
    left_out = "".join(chr(c) for c in range(128) if not re.fullmatch(ascii_class, chr(c)))
    return f"[^{re.escape(left_out)}]"


_ATOM = _or_non_ascii(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]") + "+"
_LABEL_END = _or_non_ascii(r"[a-z0-9]")
_LABEL = rf"{_LABEL_END}(?:{_or_non_ascii(r'[a-z0-9-]')}{{0,61}}{_LABEL_END})?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
"""One address (RFC 5322's dot-atom ``addr-spec``, UTF-8 allowed as RFC 6531 does): no
display name, no quoted local part, no comments, no lists. A comma, a semicolon, angle
brackets or a line break would let one "address" reach several mailboxes."""
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
    """One email address, compared case-insensitively and without surrounding space.

    Anything but a single ``local@domain`` is refused, so that no stored email can make a
    mail go to more than one mailbox (``a@x.com,b@y.com``, ``Ana <a@x.com>``).

    >>> normalise_email("  Ana.Lopez+crm@Example.COM ")
    'ana.lopez+crm@example.com'
    >>> normalise_email("ana@x.com,eve@y.com")
    Traceback (most recent call last):
    ...
    leadheat.identity.LeadKeyError: 'ana@x.com,eve@y.com' is not one email address \
(give one address like ana@example.com: no commas, lists, names or quotes)
    """
    email = text.strip().lower()
    if len(email) > MAX_EMAIL_CHARS:
        raise LeadKeyError(_too_long(email, MAX_EMAIL_CHARS, "an email"))
    if not _EMAIL.fullmatch(email) or not email.isprintable():
        raise LeadKeyError(
            f"{text!r} is not one email address (give one address like ana@example.com: "
            "no commas, lists, names or quotes)"
        )
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
