"""Secrets in alert URLs, hidden from those who only read the playbook.

A Slack incoming-webhook URL is a bearer secret (whoever has it posts to the channel), and so
are the user:password, query tokens and long paths of other receivers' URLs. Reps and read
keys see the playbook to learn what "hot" means, not where alerts go: they get the scheme,
host, port and first path segment, the rest masked. Managers and admins, who may apply a
playbook, see it whole.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
_URL = re.compile(r"(?i)\bhttps?://[^\s\"'<>]+")


def mask_url(url: str) -> str:
    """``url`` with everything that may be a secret masked.

    >>> mask_url("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/services/***'
    >>> mask_url("https://bot:s3cret@crm.example.com:8443/in?token=abc&team=x#frag")
    'https://***@crm.example.com:8443/in?token=***&team=***'
    >>> mask_url("http://127.0.0.1:8080/hooks")
    'http://127.0.0.1:8080/hooks'
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        queries = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return MASK
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    first, slash, rest = parts.path.lstrip("/").partition("/")
    path = f"/{first}" if parts.path.startswith("/") else first
    if slash and rest:
        path += f"/{MASK}"
    elif slash:
        path += "/"
    shown = f"{parts.scheme}://{netloc}{path}"
    if queries:
        shown += "?" + "&".join(f"{name}={MASK}" for name, _ in queries)
    elif parts.query:
        shown += f"?{MASK}"
    return shown


def mask_urls_in(text: str) -> str:
    """Every http(s) URL in ``text`` (a playbook's TOML) masked.

    >>> mask_urls_in('url = "https://hooks.slack.com/services/T0/B0/XX" # team chat')
    'url = "https://hooks.slack.com/services/***" # team chat'
    """
    return _URL.sub(lambda found: mask_url(found.group()), text)


def mask_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A playbook's summary (``Playbook.summary()``) with its alerts' URLs masked."""
    speed = summary.get("speed") or {}
    alerts = [
        {**alert, "url": mask_url(alert["url"])} if alert.get("url") else alert
        for alert in speed.get("alerts") or []
    ]
    return {**summary, "speed": {**speed, "alerts": alerts}} if speed else summary
