"""The words of an alert: who, why hot, what to do, and by when; as a signed JSON webhook, a
Slack incoming-webhook message and an email.

The payload is built once, when the trigger fires, and stored with the notification, so a
retry days later sends the same bytes and the same ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

SIGNATURE_HEADER = "X-Leadheat-Signature"
TIMESTAMP_HEADER = "X-Leadheat-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"

_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: every
character ``str.splitlines()`` splits on is among them."""
_LINE_BREAK = re.compile(r"\r\n|[\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_BODY_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_TITLES = {
    "hot": "Hot lead",
    "new_qualified": "New qualified lead",
    "trial_signup": "Trial sign-up",
    "warm": "Lead turned warm",
    "form_submit": "Form from your lead",
    "reply": "Reply from your lead",
    "sla_breach": "SLA breached",
}


def one_line(value: object) -> str:
    """Text fit for a mail header or a title: line breaks and control characters become
    spaces, runs of white space one space.

    Lead names, template output and the like are data anyone can send; ``Eve\\r\\nBcc: …``
    must neither become a header of its own nor make the mail unbuildable (``email`` refuses
    any character ``splitlines()`` splits on).

    >>> one_line("Eve\\r\\nBcc: mallory@x.com\\u2028\\x1c\\x07  Jr ")
    'Eve Bcc: mallory@x.com Jr'
    """
    return " ".join(_HEADER_UNSAFE.sub(" ", str(value)).split())


def plain_text(value: str) -> str:
    """A mail body with every kind of line break as ``\\n`` and other control characters
    (tab aside) as spaces, so that what a reader sees is what was written.

    >>> plain_text("Hi\\r\\nthere\\u2028you\\x00\\tall")
    'Hi\\nthere\\nyou \\tall'
    """
    return _BODY_UNSAFE.sub(" ", _LINE_BREAK.sub("\n", value))


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>." + body`` under the shared secret.

    Receivers recompute it and compare in constant time, and refuse old timestamps so that a
    captured request cannot be replayed later.

    >>> sign(b"s3cret", 1700000000, b'{"trigger":"hot"}')[:15]
    'sha256=b7c7afe5'
    """
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def title(payload: Mapping[str, Any]) -> str:
    """One line: what happened, to whom, by when.

    >>> title({"trigger": "hot", "lead": {"email": "ana@x.com", "name": "Ana"},
    ...        "deadline": "2026-11-02T10:05:00Z"})
    'Hot lead: Ana <ana@x.com> — contact by 2026-11-02T10:05:00Z'
    """
    lead = payload["lead"]
    who = lead.get("name") or lead.get("email") or f"lead {lead.get('id')}"
    if lead.get("name") and lead.get("email"):
        who = f"{lead['name']} <{lead['email']}>"
    head = _TITLES.get(payload["trigger"], payload["trigger"])
    return one_line(f"{head}: {who} — contact by {payload['deadline']}")


def details(payload: Mapping[str, Any]) -> str:
    """Who, why, what to do, by when and whose: the lines under the title."""
    lead = payload["lead"]
    owner = payload.get("owner") or {}
    lines = []
    company = ", ".join(str(v) for v in (lead.get("title"), lead.get("company")) if v)
    if company:
        lines.append(f"Who: {company}")
    lines.append(f"Why: {payload.get('why', '')}")
    lines.append(f"What to do: {payload.get('action', '')}")
    lines.append(f"Deadline: {payload['deadline']} (SLA {payload.get('sla', '')})")
    lines.append(f"Owner: {owner.get('email') or 'nobody available: please assign'}")
    if payload.get("breach"):
        breach = payload["breach"]
        lines.append(
            f"Breached: {breach['trigger']} due {breach['deadline']}, no touch yet"
            + (f"; reassigned to {breach['reassigned_to']}" if breach.get("reassigned_to") else "")
        )
    return "\n".join(one_line(line) for line in lines)


def text(payload: Mapping[str, Any]) -> str:
    """The plain-text body of an email: the title, a blank line, the details."""
    return f"{title(payload)}\n\n{details(payload)}"


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (also understood by Mattermost and Rocket.Chat)."""
    return {
        "text": title(payload),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title(payload)}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details(payload)}},
        ],
    }


def email_message(payload: Mapping[str, Any], sender: str, to: list[str], key: str) -> EmailMessage:
    """The alert as an email; its Message-ID is derived from the idempotency key, so a
    re-sent copy is recognisably the same message."""
    message = EmailMessage()
    message["Subject"] = title(payload)
    message["From"] = sender
    message["To"] = ", ".join(to)
    domain = sender.rpartition("@")[2] or "leadheat.local"
    message["Message-ID"] = f"<{key}@{domain}>"
    message[IDEMPOTENCY_HEADER] = key
    message.set_content(plain_text(text(payload)))
    return message


def prepared_message(mail: Mapping[str, Any], sender: str, to: list[str], key: str) -> EmailMessage:
    """A mail written before it was queued (a nurture step, a digest): subject, body and
    extra headers (``List-Unsubscribe``) as they were rendered."""
    message = EmailMessage()
    message["Subject"] = one_line(mail["subject"])
    message["From"] = sender
    message["To"] = ", ".join(to)
    domain = sender.rpartition("@")[2] or "leadheat.local"
    message["Message-ID"] = f"<{key}@{domain}>"
    message[IDEMPOTENCY_HEADER] = key
    for name, value in dict(mail.get("headers") or {}).items():
        message[name] = one_line(value)
    message.set_content(plain_text(str(mail["body"])))
    return message
