"""Real receivers on loopback for alerts: an HTTP server that records webhooks (and can fail
or stall on purpose) and an SMTP server (aiosmtpd) that records mail."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Records every POST; answers 500 to the first ``fail_first``, 404 on ``refuse_paths``,
    and holds the first ``stall_first`` for ``stall_seconds`` before answering (time to kill
    a worker)."""

    fail_first: int = 0
    stall_first: int = 0
    stall_seconds: float = 0.0
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse_paths: set[str] = field(default_factory=set)
    """Paths answered 404 (a receiver that is gone for good)."""
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    number = len(receiver.requests)
                    status = 500 if number < receiver.fail_first else 200
                    if self.path in receiver.refuse_paths:
                        status = 404
                    receiver.requests.append(
                        Received(self.path, dict(self.headers), body, time.time(), status)
                    )
                receiver.arrived.set()
                if number < receiver.stall_first:
                    time.sleep(receiver.stall_seconds)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "boom"}')

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def accepted(self, path: str | None = None) -> list[Received]:
        """Requests answered 200 (optionally on one path)."""
        with self.lock:
            return [
                r for r in self.requests if r.status == 200 and (path is None or r.path == path)
            ]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.accepted(path))} of {count} webhooks arrived in {timeout}s"
                )
            time.sleep(0.02)


class MailBox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        """The envelope's ``RCPT TO`` addresses of each message, in the same order."""
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.messages.append(message_from_bytes(envelope.original_content))
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} mails arrived")
            time.sleep(0.02)
