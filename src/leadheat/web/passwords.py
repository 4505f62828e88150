"""Password hashing for dashboard sign-in: scrypt from the standard library.

scrypt is memory-hard (each guess needs ``128·n·r`` bytes, 16 MiB here), so a stolen
``users`` table costs an attacker memory as well as time per guess, and it needs no new
compiled dependency (argon2-cffi would). The parameters are OWASP's scrypt row
``N=2^14, r=8, p=5``; they are stored in each hash, so raising them later only affects
new passwords.

>>> stored = hash_password("correct horse")
>>> stored.startswith("scrypt$16384$8$5$")
True
>>> verify_password("correct horse", stored), verify_password("wrong horse", stored)
(True, False)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 5
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 8


class PasswordError(ValueError):
    """A password that cannot be used (too short)."""


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=KEY_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$key`` (base64), with a fresh random salt."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must have at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, N, R, P)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time compare)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(derived, base64.b64decode(key))


@functools.cache
def dummy_hash() -> str:
    """A hash to check when the email is unknown, so that a sign-in takes as long either
    way and its timing does not tell which emails have accounts."""
    return hash_password(secrets.token_urlsafe(16))
