"""What the server's logs may hold: request lines without secrets.

uvicorn's access log prints each request's path with its query string, and browser SDKs
may send their key there (``/beacon/v1/batch?writeKey=lh_…``), so the key would land in
every log file and log shipper. :class:`Redactor` rewrites what a log record prints before
any handler sees it: API keys (``lh_…``) anywhere, the value of a query parameter that names
a key, token, secret or password, and the token of an unsubscribe link (``/u/TOKEN``: whoever
reads it can unsubscribe that person).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_SECRETS = (
    (re.compile(r"lh_[A-Za-z0-9_\-]+"), "lh_" + REDACTED),
    (
        re.compile(r"(?i)([?&;](?:[a-z_\-]*(?:key|token|secret|password|passwd))=)[^&;#\s\"']*"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(/u/)[^/?#\s\"']+"), r"\1" + REDACTED),
)
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")
"""The loggers a server's requests are written to (uvicorn's own; the app logs no requests)."""


def redact(text: str) -> str:
    """``text`` without the secrets a request line may carry.

    >>> redact('127.0.0.1:5 - "POST /v1/batch?writeKey=lh_3f9a0c1d_s3cr3t&x=1 HTTP/1.1" 200')
    '127.0.0.1:5 - "POST /v1/batch?writeKey=[redacted]&x=1 HTTP/1.1" 200'
    >>> redact("/v1/page?api_key=abc&page=2"), redact("GET /u/NDI6ZXZl.AAAA HTTP/1.1")
    ('/v1/page?api_key=[redacted]&page=2', 'GET /u/[redacted] HTTP/1.1')
    """
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class Redactor(logging.Filter):
    """A filter that redacts a record's message and its text arguments (and never drops a
    record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install() -> None:
    """Put a :class:`Redactor` on uvicorn's loggers (once each). ``create_app`` calls this,
    so every way of serving the app (``leadheat serve``, ``uvicorn``, gunicorn's uvicorn
    workers) logs without keys; logging configured later keeps the filters (``dictConfig``
    replaces a logger's handlers, not its filters)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Redactor) for f in logger.filters):
            logger.addFilter(Redactor())
