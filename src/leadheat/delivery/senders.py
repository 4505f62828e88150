"""One function per channel: send a stored notification, say whether to try again.

Each returns normally on success and raises :class:`SendError` on failure, with
``permanent`` set when retrying cannot help (a webhook that answers 404, an address the
mail server refuses).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from leadheat.identity import LeadKeyError, normalise_email
from leadheat.speed.messages import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    email_message,
    prepared_message,
    sign,
    slack_message,
)
from leadheat.version import __version__

RETRYABLE_STATUS = frozenset({408, 425, 429})


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@contextmanager
def building(what: str) -> Iterator[None]:
    """Turn any failure to build a message from its stored payload into a permanent
    :class:`SendError`: the payload is fixed when the alert is queued, so a message that
    cannot be built now never will be, and must not hold up the others."""
    try:
        yield
    except Exception as error:
        raise SendError(
            f"cannot build the {what}: {type(error).__name__}: {error}", permanent=True
        ) from None


def _post(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    addresses: Sequence[str] = (),
) -> None:
    """POST JSON ``body`` with leadheat's own headers plus ``headers``; connected to the
    first of ``addresses`` (IPs the caller checked) that answers, naming the URL's host in
    ``Host`` and to TLS, or wherever ``url`` resolves when there are none."""
    sent = {
        "Content-Type": "application/json",
        "User-Agent": f"leadheat/{__version__}",
        **headers,
    }
    target = httpx.URL(url)
    extensions: dict[str, Any] = {}
    if addresses:
        sent["Host"] = target.netloc.decode("ascii").rpartition("@")[2]
        extensions["sni_hostname"] = target.host
    tries = [target.copy_with(host=address) for address in addresses] or [target]
    for number, attempt in enumerate(tries, start=1):
        try:
            response = client.post(attempt, content=body, headers=sent, extensions=extensions)
            break
        except httpx.ConnectError as error:
            if number == len(tries):
                raise SendError(f"{type(error).__name__}: {error}") from None
        except httpx.HTTPError as error:
            raise SendError(f"{type(error).__name__}: {error}") from None
    if response.is_success:
        return
    permanent = 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_STATUS
    # the status and its reason only: a receiver's body may echo what it was sent, and
    # last_error is shown to every reader of the deliveries
    reason = response.reason_phrase or "no reason given"
    raise SendError(f"HTTP {response.status_code}: {reason}"[:200], permanent=permanent)


def send_webhook(
    client: httpx.Client,
    url: str,
    payload: Mapping[str, Any],
    key: str,
    secret: bytes,
    addresses: Sequence[str] = (),
) -> None:
    """POST the JSON payload, signed: ``X-Leadheat-Signature: sha256=HMAC(secret,
    "<X-Leadheat-Timestamp>." + body)``; ``Idempotency-Key`` is the same on every retry.
    ``addresses``: where to connect (see :mod:`leadheat.delivery.egress`)."""
    with building("webhook"):
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    stamp = int(time.time())
    _post(
        client,
        url,
        body,
        {
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(secret, stamp, body),
            "X-Leadheat-Trigger": str(payload.get("trigger")),
        },
        addresses,
    )


def send_slack(
    client: httpx.Client,
    url: str,
    payload: Mapping[str, Any],
    key: str,
    addresses: Sequence[str] = (),
) -> None:
    """POST a Slack incoming-webhook message (``text`` plus blocks)."""
    with building("Slack message"):
        body = json.dumps(slack_message(payload), ensure_ascii=False).encode()
    _post(client, url, body, {IDEMPOTENCY_HEADER: key}, addresses)


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes, from ``smtp://user:password@host:port?starttls=true`` (or
    ``smtps://`` for TLS from the first byte)."""

    host: str
    port: int
    tls: bool
    starttls: bool
    user: str | None
    password: str | None
    timeout: float

    @staticmethod
    def from_url(url: str, timeout: float = 10.0) -> SmtpServer:
        """
        >>> server = SmtpServer.from_url("smtp://bot:p%40ss@mail.example.com:587?starttls=1")
        >>> server.host, server.port, server.starttls, server.password
        ('mail.example.com', 587, True, 'p@ss')
        """
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"LEADHEAT_SMTP_URL {url!r} must look like smtp://host:port")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        return SmtpServer(
            host=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 25),
            tls=parts.scheme == "smtps",
            starttls=starttls,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


def send_email(
    server: SmtpServer | None, sender: str, to: str, payload: Mapping[str, Any], key: str
) -> None:
    """Send the alert as a plain-text email to the comma-separated addresses ``to`` (a
    nurture mail, with its ``mail`` prepared, to its one address).

    Every recipient must be one valid address, and a nurture mail has exactly one: an
    address stored before emails were checked as strictly (``ana,eve@evil.example``) fails
    for good instead of reaching extra mailboxes.
    """
    if server is None:
        raise SendError("no SMTP server configured: set LEADHEAT_SMTP_URL")
    recipients = (
        [to.strip()]
        if "mail" in payload
        else [address.strip() for address in to.split(",") if address.strip()]
    )
    for address in recipients:
        try:
            normalise_email(address)
        except LeadKeyError:
            raise SendError(f"{address!r} is not one email address", permanent=True) from None
    with building("mail"):
        message = (
            prepared_message(payload["mail"], sender, recipients, key)
            if "mail" in payload
            else email_message(payload, sender, recipients, key)
        )
    try:
        smtp: smtplib.SMTP
        if server.tls:
            smtp = smtplib.SMTP_SSL(
                server.host,
                server.port,
                timeout=server.timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        with smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.user:
                smtp.login(server.user, server.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise SendError(f"recipients refused: {error.recipients}", permanent=True) from None
    except smtplib.SMTPResponseException as error:
        raise SendError(
            f"SMTP {error.smtp_code}: {error.smtp_error!r}", permanent=error.smtp_code >= 500
        ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise SendError(f"{type(error).__name__}: {error}") from None
