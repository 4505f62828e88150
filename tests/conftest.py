"""Fixtures: a fresh real database per test, on SQLite and (when configured) PostgreSQL.

Set ``LEADHEAT_TEST_POSTGRES_URL`` (``.ci/run`` does) and every test that takes ``db_url``
or ``lh`` runs twice, once per backend; each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from leadheat.cli import main
from leadheat.service import Leadheat
from receivers import MailBox, WebhookReceiver

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_URL = os.environ.get("LEADHEAT_TEST_POSTGRES_URL")

settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("LEADHEAT_HYPOTHESIS_PROFILE", "default"))
"""CI (``.ci/run``) draws the same examples on every run, so that a landing is decided by the
code, not by the seed; a developer's ``make test`` explores new random examples each time and
the failures it finds become fixed tests."""
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]

DEMO_MAKES_HOT = """
[fit]
qualified_at = 10
[[fit.rules]]
field = "title"
matches = "(?i)cto|vp"
points = 10
[signals.demo_request]
points = 25
[signals.page_view]
points = 1
[temperature]
hot_requires = []
"""
"""A playbook in which a qualified CTO or VP who asks for a demo is hot at once (no evidence
needed): where the speed-to-lead tests start, each adding its own ``[speed]`` tables."""


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leadheat.db'}"
        return
    assert POSTGRES_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        admin.dispose()  # fresh connections: the test may have restarted the server
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lh(db_url: str, clock: Clock) -> Iterator[Leadheat]:
    """An initialised leadheat with the default playbook and a settable clock."""
    instance = Leadheat(db_url, clock=clock)
    instance.init()
    yield instance
    instance.engine.dispose()


class LiveServer:
    """leadheat's HTTP API served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, lh: Leadheat, *, worker: bool = False, **settings: object) -> None:
        import socket
        import threading

        import uvicorn

        from leadheat.api import create_app
        from leadheat.settings import Settings

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lh = lh
        app = create_app(Settings(database_url=lh.url, **settings), lh=lh, worker=worker)
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.admin_key, _ = lh.create_key("tests (admin)", ["admin"])
        self.ingest_key, _ = lh.create_key("tests (ingest)", ["ingest"])
        self.read_key, _ = lh.create_key("tests (read)", ["read"])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    """A real server on loopback over a fresh database, with the real clock, and three keys
    (``admin_key``, ``ingest_key``, ``read_key``)."""
    lh = Leadheat(db_url)
    lh.init()
    server = LiveServer(lh)
    try:
        yield server
    finally:
        server.stop()
        lh.close()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a clear message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA} (CI always has them)")
    return SHARED_DATA


@pytest.fixture
def webhook_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A real HTTP server on loopback that records webhooks (set ``fail_first`` and
    ``stall_first`` before the first request to make it misbehave). Loopback is refused to
    alerts unless the operator allows it: the test's environment does
    (``LEADHEAT_WEBHOOK_HOSTS=127.0.0.1``, inherited by worker processes)."""
    monkeypatch.setenv("LEADHEAT_WEBHOOK_HOSTS", "127.0.0.1")
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, MailBox]]:
    """A real SMTP server (aiosmtpd) on loopback: ``(LEADHEAT_SMTP_URL, mailbox)``."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", box
    controller.stop()


class Cli:
    """Runs ``leadheat --db URL …`` in-process and returns (exit code, stdout, stderr)."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            main(["--db", self.url, *args])
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str) -> object:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


def free_port() -> int:
    """A loopback port free at the moment of asking."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def serve(
    url: str, port: int, log: Path, *options: str, within: float = 30, **env: str
) -> subprocess.Popen[bytes]:
    """``leadheat serve`` in a process of its own (its log in ``log``), once it answers
    (``within`` seconds); ``options`` are more of the command's, ``env`` adds ``LEADHEAT_*``
    settings."""
    with log.open("ab") as sink:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "leadheat",
                "--db",
                url,
                "serve",
                "--port",
                str(port),
                "--no-worker",
                *options,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LEADHEAT_RATE_LIMIT": "0", **env},
        )
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise AssertionError(f"the server did not start:\n{log.read_text()}")
