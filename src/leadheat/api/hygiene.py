"""Input no database can hold, refused at the door.

JSON allows ``\\u0000`` in any string and URLs allow ``%00``; SQLite stores the character,
PostgreSQL's text and jsonb cannot, and would fail the request with a 500 deep inside a
transaction. Refusing it up front gives every backend the same clear 400.
"""

from __future__ import annotations

from fastapi import Request

from leadheat.service import InputError

NUL_JSON = b"\\u0000"


def refuse_nul(body: bytes, field: str = "body") -> None:
    """Refuse a (JSON) body that carries a NUL character."""
    if NUL_JSON in body or b"\x00" in body:
        raise InputError(field, "text may not contain the NUL character (\\u0000)")


async def no_nul(request: Request) -> None:
    """Dependency for routes that store what they are given: URL and body without NUL."""
    if "%00" in str(request.url) or "\x00" in str(request.url):
        raise InputError("url", "the URL may not contain the NUL character (%00)")
    refuse_nul(await request.body())
