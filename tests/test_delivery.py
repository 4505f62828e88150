"""Durable delivery against real receivers on loopback: a recording HTTP server that fails
or stalls on purpose, and an SMTP server (aiosmtpd). Workers are real processes where the
test kills them."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conftest import DEMO_MAKES_HOT, Clock, LiveServer
from leadheat.cli import app
from leadheat.delivery.worker import Worker
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.settings import Settings
from leadheat.store.outbox import enqueue
from receivers import MailBox, WebhookReceiver

MONDAY_10 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def playbook(url: str, *, email: bool = True, always_open: bool = False) -> str:
    text = (
        DEMO_MAKES_HOT
        + f"""
[speed.teams.default]
manager = "boss@example.com"
{'hours = "00:00-24:00"' if always_open else ""}
{'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]' if always_open else ""}
[speed.triggers.new_qualified]
enabled = false
[cadence]
digest = false  # these tests count alerts; digests are tested in test_followup.py
[[speed.alerts]]
channel = "webhook"
url = "{url}/hooks"
triggers = ["hot"]
[[speed.alerts]]
channel = "slack"
url = "{url}/slack"
triggers = ["hot"]
"""
    )
    if email:
        text += '[[speed.alerts]]\nchannel = "email"\nto = ["owner"]\ntriggers = ["hot"]\n'
    return text


def make_hot(lh: Leadheat, email: str) -> None:
    lh.upsert_leads([LeadInput([parse_lead_key(email)], {"title": "CTO"})])
    lh.track(email, "demo_request")


@pytest.fixture
def speedy(db_url: str, clock: Clock, webhook_receiver: WebhookReceiver) -> Iterator[Leadheat]:
    clock.now = MONDAY_10
    lh = Leadheat(db_url, clock=clock)
    lh.init(playbook(webhook_receiver.url))
    lh.add_rep("anna@x.com", name="Anna")
    yield lh
    lh.close()


def test_retries_with_backoff_until_the_receiver_accepts(
    speedy: Leadheat,
    clock: Clock,
    webhook_receiver: WebhookReceiver,
    smtp_server: tuple[str, MailBox],
) -> None:
    smtp_url, box = smtp_server
    webhook_receiver.fail_first = 3  # webhook, slack, webhook again: all 500
    make_hot(speedy, "ana@example.com")
    settings = Settings(database_url=speedy.url, smtp_url=smtp_url, retry_base=10)
    worker = Worker(speedy, settings)
    try:
        first = worker.run_once()
        assert (first.delivered, first.retrying) == (1, 2)  # the email went through
        assert worker.run_once().delivered == 0  # nothing is due before the backoff ends
        clock.now += timedelta(seconds=11.5)
        assert worker.run_once().retrying == 1  # the webhook's second 500
        clock.now += timedelta(seconds=23)
        assert worker.run_once().delivered == 1
    finally:
        worker.close()
    keys = Counter(r.headers["Idempotency-Key"] for r in webhook_receiver.requests)
    assert len(keys) == 2 and sorted(keys.values()) == [2, 3]  # same key on every retry
    (mail,) = box.messages
    assert mail["To"] == "anna@x.com" and "Hot lead" in mail["Subject"]
    assert "ana@example.com" in mail.get_payload() and "demo request" in mail.get_payload()
    attempts = {d.channel: d.attempts for d in speedy.deliveries()}
    assert {d.status for d in speedy.deliveries()} == {"delivered"}
    assert attempts["email"] == 1 and sorted([attempts["slack"], attempts["webhook"]]) == [2, 3]


def test_the_webhook_is_signed_and_carries_the_contract(
    speedy: Leadheat, webhook_receiver: WebhookReceiver
) -> None:
    make_hot(speedy, "ana@example.com")
    worker = Worker(speedy, Settings(database_url=speedy.url, webhook_secret="s3cret"))
    worker.run_once()
    worker.close()
    (hook,) = webhook_receiver.accepted("/hooks")
    signed = f"{hook.headers['X-Leadheat-Timestamp']}.".encode() + hook.body
    expected = "sha256=" + hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(hook.headers["X-Leadheat-Signature"], expected)
    payload = hook.json()
    assert payload["trigger"] == "hot"
    assert payload["lead"]["email"] == "ana@example.com"
    assert payload["owner"]["email"] == "anna@x.com"
    assert payload["deadline"] == "2026-11-02T10:05:00Z"
    assert payload["id"] == hook.headers["Idempotency-Key"]
    (slack,) = webhook_receiver.accepted("/slack")
    assert slack.json()["text"].startswith("Hot lead: ana@example.com")


def test_a_receiver_that_refuses_for_good_is_given_up_and_can_be_retried(
    speedy: Leadheat, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    """404 is final at once; an unreachable receiver is retried up to the attempt limit."""
    book = playbook(webhook_receiver.url, email=False)
    speedy.apply_playbook(
        book.replace("/slack", "/gone").replace(
            f"{webhook_receiver.url}/hooks", "http://127.0.0.1:9/hooks"
        )
    )
    webhook_receiver.refuse_paths = {"/gone"}
    make_hot(speedy, "ana@example.com")
    worker = Worker(speedy, Settings(database_url=speedy.url, max_attempts=2, retry_base=1))
    try:
        worker.run_once()
        clock.now += timedelta(seconds=5)
        worker.run_once()
    finally:
        worker.close()
    failed = {d.channel: d for d in speedy.deliveries(status="failed")}
    assert failed["slack"].attempts == 1 and "HTTP 404" in (failed["slack"].last_error or "")
    assert failed["webhook"].attempts == 2 and "ConnectError" in (
        failed["webhook"].last_error or ""
    )
    result = CliRunner().invoke(
        app, ["--db", speedy.url, "deliveries", "retry", str(failed["slack"].id)]
    )
    assert result.exit_code == 0, result.output
    assert [d.channel for d in speedy.deliveries(status="pending")] == ["slack"]
    shown = CliRunner().invoke(
        app, ["--db", speedy.url, "deliveries", "--status", "failed", "--json"]
    )
    assert "ConnectError" in shown.output


def _worker(db_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leadheat",
            "--db",
            f"sqlite:///{db_path}",
            "worker",
            "--poll",
            "0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_exactly_one_alert_per_channel_through_failures_and_a_killed_worker(
    tmp_path: Path, webhook_receiver: WebhookReceiver, smtp_server: tuple[str, MailBox]
) -> None:
    """The receiver fails the first call, stalls on the second; the worker is SIGKILLed
    while it waits, and a new one finishes the job: one alert per channel, by key."""
    smtp_url, box = smtp_server
    db_path = tmp_path / "leadheat.db"
    lh = Leadheat(f"sqlite:///{db_path}")
    lh.init(playbook(webhook_receiver.url, always_open=True))
    lh.add_rep("anna@x.com")
    webhook_receiver.fail_first = 1
    webhook_receiver.stall_first = 2
    webhook_receiver.stall_seconds = 30
    make_hot(lh, "ana@example.com")
    env = {
        **os.environ,
        "LEADHEAT_SMTP_URL": smtp_url,
        "LEADHEAT_RETRY_BASE": "0.2",
        "LEADHEAT_LEASE": "2",
    }
    first = _worker(db_path, env)
    try:
        deadline = time.monotonic() + 20
        while len(webhook_receiver.requests) < 2:  # the failure, then the stalled call
            assert time.monotonic() < deadline, "the worker never called twice"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        webhook_receiver.stall_first = 0
        second = _worker(db_path, env)
        try:
            deadline = time.monotonic() + 30
            while {d.status for d in lh.deliveries()} != {"delivered"}:
                assert time.monotonic() < deadline, [
                    (d.channel, d.status, d.last_error) for d in lh.deliveries()
                ]
                time.sleep(0.05)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    by_path = Counter(r.path for r in webhook_receiver.requests)
    assert by_path["/hooks"] + by_path["/slack"] >= 3  # there were failures and a kill
    for path in ("/hooks", "/slack"):
        keys = {r.headers["Idempotency-Key"] for r in webhook_receiver.requests if r.path == path}
        assert len(keys) == 1, (path, keys)
    box.wait_for(1)
    time.sleep(0.3)
    assert len({m["Message-ID"] for m in box.messages}) == 1
    lh.close()


def test_many_workers_send_each_alert_once(db_url: str, webhook_receiver: WebhookReceiver) -> None:
    """Four workers at once over one database: no alert is claimed twice."""
    lh = Leadheat(db_url)
    lh.init(playbook(webhook_receiver.url, email=False, always_open=True))
    lh.add_rep("anna@x.com")
    leads = [f"lead{n}@example.com" for n in range(40)]
    for email in leads:
        make_hot(lh, email)
    stop = threading.Event()
    workers = [Worker(Leadheat(db_url), Settings(database_url=db_url)) for _ in range(4)]
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        webhook_receiver.wait_for(2 * len(leads))
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.lh.outbox_ready.set()
        for thread in threads:
            thread.join(10)
        for w in workers:
            w.close()
            w.lh.close()
    keys = Counter(r.headers["Idempotency-Key"] for r in webhook_receiver.requests)
    assert len(keys) == 2 * len(leads) and set(keys.values()) == {1}
    assert {d.status for d in lh.deliveries(limit=1000)} == {"delivered"}
    lh.close()


def test_serve_runs_the_worker_and_alerts_within_a_second(
    db_url: str, webhook_receiver: WebhookReceiver
) -> None:
    lh = Leadheat(db_url)
    lh.init(playbook(webhook_receiver.url, email=False, always_open=True))
    server = LiveServer(lh, worker=True)
    try:
        auth = {"Authorization": f"Bearer {server.admin_key}"}
        rep = httpx.post(
            f"{server.url}/api/v1/reps", json={"email": "anna@x.com", "name": "Anna"}, headers=auth
        )
        assert rep.status_code == 200, rep.text
        lead = httpx.post(
            f"{server.url}/api/v1/leads",
            json={"email": "ana@example.com", "title": "CTO"},
            headers=auth,
        )
        assert lead.status_code in (200, 201), lead.text
        sent = time.monotonic()
        event = httpx.post(
            f"{server.url}/api/v1/events",
            json={"lead": "ana@example.com", "type": "demo_request"},
            headers=auth,
        )
        assert event.status_code in (200, 201, 202), event.text
        webhook_receiver.wait_for(1, "/hooks", timeout=5)
        assert (
            webhook_receiver.accepted("/hooks")[0].at - time.time() + time.monotonic() - sent < 1.0
        )
        listed = httpx.get(f"{server.url}/api/v1/deliveries?status=delivered", headers=auth).json()
        assert {d["channel"] for d in listed} >= {"webhook"}
        clocks = httpx.get(f"{server.url}/api/v1/sla?open=true", headers=auth).json()
        assert clocks[0]["trigger"] == "hot" and clocks[0]["owner"] == "anna@x.com"
        touch = httpx.post(
            f"{server.url}/api/v1/leads/ana@example.com/touches",
            json={"kind": "call", "rep": "anna@x.com"},
            headers=auth,
        )
        assert touch.status_code == 200
        (clock,) = httpx.get(f"{server.url}/api/v1/sla", headers=auth).json()
        assert clock["state"] == "met" and clock["response_seconds"] >= 0
        reps = httpx.get(f"{server.url}/api/v1/reps", headers=auth).json()
        assert reps[0]["email"] == "anna@x.com" and reps[0]["open_hot"] == 1
        paused = httpx.post(f"{server.url}/api/v1/reps/anna@x.com/pause", headers=auth)
        assert paused.json()["active"] is False
        missing = httpx.post(f"{server.url}/api/v1/reps/nobody@x.com/pause", headers=auth)
        assert missing.status_code == 404 and "nobody@x.com" in missing.json()["error"]
        bad = httpx.post(
            f"{server.url}/api/v1/reps", json={"email": "anna@x.com", "weight": 0}, headers=auth
        )
        assert bad.status_code == 422 and bad.json()["field"] == "weight"
    finally:
        server.stop()
        lh.close()


def test_cli_reps_deliveries_sla_and_worker(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    book = tmp_path / "playbook.toml"
    book.write_text(playbook(webhook_receiver.url, email=False, always_open=True))

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("init")
    run("playbook", "apply", str(book))
    run("reps", "add", "anna@x.com", "--name", "Anna", "--capacity", "5")
    run("reps", "add", "ben@x.com", "--weight", "2")
    run("reps", "pause", "ben@x.com")
    assert '"active": false' in run("reps", "list", "--json")
    run("reps", "resume", "ben@x.com")
    run("import", "leads", "--triggers", str(_csv(tmp_path)))
    run("track", "ana@example.com", "demo_request")
    assert '"status": "pending"' in run("deliveries", "--json")
    assert "delivered 2" in run("worker", "--once")
    assert '"status": "delivered"' in run("deliveries", "--status", "delivered", "--json")
    assert '"trigger": "hot"' in run("sla", "--open", "--json")
    run("touch", "ana@example.com", "call")
    assert '"state": "met"' in run("sla", "--lead", "ana@example.com", "--json")
    assert '"met": 1' in run("sla", "--by-rep", "--json")
    assert run("deliveries", "secret").startswith("whsec_")
    bad = runner.invoke(app, ["--db", db, "reps", "pause", "nobody@x.com"])
    assert bad.exit_code != 0


def _csv(folder: Path) -> Path:
    path = folder / "leads.csv"
    path.write_text("email,title\nana@example.com,CTO\n")
    return path


LINE_BREAKS = ["\r\n", "\r", "\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
"""Every character (and pair) ``str.splitlines()`` splits on."""
MAIL_HEADERS = {"Subject", "From", "To", "Message-ID", "Idempotency-Key", "MIME-Version"} | {
    "Content-Type",
    "Content-Transfer-Encoding",
}
"""The headers of an alert mail, and no others."""


def test_names_with_line_breaks_never_stall_the_outbox(
    db_url: str, webhook_receiver: WebhookReceiver, smtp_server: tuple[str, MailBox]
) -> None:
    """Thirty leads named ``Eve<line break>Bcc: …`` and three ordinary ones turn hot, with
    the worker running in the server as ``serve`` runs it: every lead gets one webhook, one
    Slack post and one mail, the ordinary ones within seconds, no header is injected, and
    nothing stays pending."""
    smtp_url, box = smtp_server
    lh = Leadheat(db_url)
    lh.init(playbook(webhook_receiver.url, always_open=True))
    lh.add_rep("anna@x.com")
    tricky = {f"eve{n}@example.com": n for n in range(30)}
    ordinary = ["ana@example.com", "bo@example.com", "cy@example.com"]
    server = LiveServer(lh, worker=True, smtp_url=smtp_url)
    try:
        for email, n in tricky.items():
            name = f"Eve {n}{LINE_BREAKS[n % len(LINE_BREAKS)]}Bcc: mallory{n}@evil.example"
            lh.upsert_leads([LeadInput([parse_lead_key(email)], {"title": "CTO", "name": name})])
            lh.track(email, "demo_request")
        for email in ordinary:
            make_hot(lh, email)
        box.wait_for(len(tricky) + len(ordinary), timeout=10)
        webhook_receiver.wait_for(len(tricky) + len(ordinary), "/hooks", timeout=10)
        deadline = time.monotonic() + 10
        while any(d.status == "pending" for d in lh.deliveries(limit=1000)):
            assert time.monotonic() < deadline, "notifications stayed pending"
            time.sleep(0.05)
        time.sleep(0.5)  # time for a duplicate to arrive, if one were coming
    finally:
        server.stop()
    everyone = [*tricky, *ordinary]
    for path in ("/hooks", "/slack"):
        posted = Counter(r.headers["Idempotency-Key"] for r in webhook_receiver.requests)
        leads = Counter(
            r.json()["lead"]["email"] for r in webhook_receiver.requests if r.path == "/hooks"
        )
        assert set(posted.values()) == {1} and leads == Counter(everyone), path
    assert len(webhook_receiver.requests) == 2 * len(everyone)
    about = Counter(
        next(email for email in everyone if email in str(mail.get_payload()))
        for mail in box.messages
    )
    assert about == Counter(everyone)  # the ordinary ones included: one mail each
    for mail, recipients in zip(box.messages, box.recipients, strict=True):
        assert recipients == ["anna@x.com"] and mail.get_all("To") == ["anna@x.com"]
        assert mail["Bcc"] is None and mail["Cc"] is None
        assert set(mail.keys()) == MAIL_HEADERS and len(mail.keys()) == len(MAIL_HEADERS)
        subject = str(make_header(decode_header(mail["Subject"])))
        assert subject.startswith("Hot lead: ") and "\n" not in subject
        for email, n in tricky.items():
            if email in str(mail.get_payload()):
                assert f"Eve {n} Bcc: mallory{n}@evil.example <{email}>" in subject
    assert {d.status for d in lh.deliveries(limit=1000)} == {"delivered"}
    lh.close()


def test_a_notification_that_cannot_be_built_fails_alone_and_for_good(
    speedy: Leadheat, webhook_receiver: WebhookReceiver, smtp_server: tuple[str, MailBox]
) -> None:
    """A stored payload no mail can be made of (here: no lead, no deadline) fails at its first
    attempt with the reason; the webhook queued after it is sent in the same pass."""
    smtp_url, box = smtp_server
    with speedy.transaction() as connection:
        for channel, target in (("email", "anna@x.com"), ("webhook", webhook_receiver.url)):
            enqueue(
                connection,
                lead_id=None,
                clock_id=None,
                trigger="hot",
                channel=channel,
                target=f"{target}/hooks" if channel == "webhook" else target,
                secret_env=None,
                payload={"trigger": "hot"},
                now=MONDAY_10,
            )
    settings = Settings(database_url=speedy.url, smtp_url=smtp_url, max_attempts=3)
    worker = Worker(speedy, settings)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.delivered, report.failed, report.retrying) == (1, 1, 0)
    (broken,) = speedy.deliveries(status="failed")
    assert broken.channel == "email" and broken.attempts == 1 <= settings.max_attempts
    assert broken.last_error == "cannot build the mail: KeyError: 'lead'"
    assert len(webhook_receiver.accepted("/hooks")) == 1 and box.messages == []


def test_the_attempt_limit_holds_when_attempts_never_reported_back(
    speedy: Leadheat, webhook_receiver: WebhookReceiver
) -> None:
    """Two workers claimed the alert and died before recording the outcome: with
    ``max_attempts`` 2 the next claim gives up on it instead of making a third attempt."""
    make_hot(speedy, "ana@example.com")
    for _ in range(2):
        assert speedy.claim_deliveries(timedelta(0), 10)  # leases that end at once
    worker = Worker(speedy, Settings(database_url=speedy.url, max_attempts=2))
    try:
        worker.run_once()
    finally:
        worker.close()
    assert webhook_receiver.requests == []
    given_up = speedy.deliveries(status="failed")
    assert {d.channel for d in given_up} == {"webhook", "slack", "email"}
    assert {d.attempts for d in given_up} == {2}
    assert {d.last_error for d in given_up} == {"gave up after 2 attempts; the last never finished"}
