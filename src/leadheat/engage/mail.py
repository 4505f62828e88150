"""Nurture mail: templates in a sandbox, and the signed one-click unsubscribe link.

Templates are written by sales managers and rendered with a lead's data, so they run in
Jinja's sandbox (no attribute tricks reach Python) and a missing field renders as nothing
instead of stopping a sequence for every lead that lacks it: the playbook's
:func:`~leadheat.playbook.template_environment`, which checked them when the playbook was read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from leadheat.playbook import template_environment

UNSUBSCRIBE_PATH = "/u/"


def render(template: str, context: Mapping[str, Any]) -> str:
    """A step's subject or body for one lead.

    >>> render("Hi {{ lead.name or 'there' }}, saw {{ lead.missing.thing }}!", {"lead": {}})
    'Hi there, saw !'
    """
    return template_environment().from_string(template).render(**context)


def _digest(secret: str, payload: bytes) -> str:
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def unsubscribe_token(secret: str, lead_id: int, email: str) -> str:
    """A token that names the address and cannot be forged or altered without the secret.

    >>> token = unsubscribe_token("s3cret", 7, "Ann@Example.com")
    >>> read_token("s3cret", token)
    (7, 'ann@example.com')
    >>> read_token("other", token) is None, read_token("s3cret", token[:-2] + "xx") is None
    (True, True)
    """
    payload = f"{lead_id}:{email.strip().lower()}".encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_digest(secret, payload)}"


def read_token(secret: str, token: str) -> tuple[int, str] | None:
    """``(lead id, address)`` of a genuine token, else ``None``."""
    body, _, mac = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        lead, _, email = payload.decode().partition(":")
        lead_id = int(lead)
    except (ValueError, UnicodeDecodeError):
        return None
    if not email or not hmac.compare_digest(mac, _digest(secret, payload)):
        return None
    return lead_id, email


def unsubscribe_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + UNSUBSCRIBE_PATH + token
