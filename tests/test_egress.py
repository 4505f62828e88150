"""Outbound calls stay where the operator allows: webhook hosts and signing-secret variables
limited by the environment (``LEADHEAT_WEBHOOK_HOSTS``, ``LEADHEAT_SECRET_ENVS``) when a
playbook is checked or applied and again when each alert leaves; secrets in alert URLs
masked for those who only read; a receiver's answer never stored for them to read."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from conftest import DEMO_MAKES_HOT, Cli, Clock, LiveServer
from leadheat.delivery.worker import Worker
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.store.outbox import enqueue
from leadheat.web.auth import add_user
from receivers import WebhookReceiver

MONDAY_10 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SLACK = "https://hooks.slack.com/services/T0001/B0002/SLACKSECRET"
CRM = "https://bot:USERSECRET@crm.example.com/in/deep?token=QUERYSECRET"
SECRETS = ("SLACKSECRET", "USERSECRET", "QUERYSECRET")
PASSWORD = "correct horse battery"


def alerts(*tables: str) -> str:
    """A playbook in which a CTO asking for a demo is hot, with these ``[[speed.alerts]]``."""
    text = DEMO_MAKES_HOT + '[speed.teams.default]\nmanager = "boss@example.com"\n'
    return text + "".join(f"[[speed.alerts]]\n{table}\n" for table in tables)


def webhook(url: str, secret_env: str | None = None) -> str:
    env = f'\nsecret_env = "{secret_env}"' if secret_env else ""
    return f'channel = "webhook"\nurl = "{url}"\ntriggers = ["hot"]{env}'


def slack(url: str) -> str:
    return f'channel = "slack"\nurl = "{url}"\ntriggers = ["hot"]'


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The operator's environment, with no limits set (the defaults)."""
    for name in ("LEADHEAT_WEBHOOK_HOSTS", "LEADHEAT_SECRET_ENVS", "LEADHEAT_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_playbook_check_and_apply_refuse_internal_hosts_and_foreign_secrets(
    tmp_path: Path, operator: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each forbidden alert is named with its key and line; nothing is applied."""
    book = alerts(
        webhook("http://127.0.0.1:8080/hooks"),
        slack("http://169.254.169.254/latest/meta-data"),
        webhook("https://10.0.0.5/x"),
        webhook("https://crm.example.com/in", secret_env="LEADHEAT_SMTP_URL"),
        webhook("https://[::1]/hooks"),
    )
    file = tmp_path / "playbook.toml"
    file.write_text(book)
    cli = Cli(f"sqlite:///{tmp_path / 'egress.db'}", capsys)
    assert cli("init")[0] == 0
    for command in ("check", "apply"):
        code, _, err = cli("playbook", command, str(file))
        assert code != 0, err
        output = " ".join(err.split())
        for needle, key, expected in (
            ("127.0.0.1", "speed.alerts.0.url", "127.0.0.1 is a loopback address"),
            ("169.254", "speed.alerts.1.url", "169.254.169.254 is a link-local address"),
            ("10.0.0.5", "speed.alerts.2.url", "10.0.0.5 is a private address"),
            ("LEADHEAT_SMTP_URL", "speed.alerts.3.secret_env", "LEADHEAT_SMTP_URL is not a"),
            ("[::1]", "speed.alerts.4.url", "::1 is a loopback address"),
        ):
            assert f"line {line_of(book, needle)}, {key}: " in output, (key, output)
            assert expected in output, (expected, output)
        assert "LEADHEAT_WEBHOOK_HOSTS" in output
    assert '"version": 2' not in cli("playbook", "history", "--json")[1]  # nothing applied
    operator.setenv("LEADHEAT_WEBHOOK_HOSTS", "hooks.example.com, *.corp.example")
    file.write_text(
        alerts(webhook("https://hooks.example.com/a"), slack("https://x.corp.example/b"))
    )
    assert cli("playbook", "check", str(file))[0] == 0
    other = alerts(webhook("https://crm.example.org/in"))
    file.write_text(other)
    code, _, err = cli("playbook", "apply", str(file))
    assert code != 0
    assert (
        f"line {line_of(other, 'crm.example.org')}, speed.alerts.0.url: https://crm.example.org/"
        "...: host crm.example.org is not in LEADHEAT_WEBHOOK_HOSTS (*.corp.example, "
        "hooks.example.com)"
    ) in " ".join(err.split())


def test_the_operator_names_the_secret_variables(
    db_url: str, clock: Clock, webhook_receiver: WebhookReceiver, operator: pytest.MonkeyPatch
) -> None:
    """By default only ``LEADHEAT_WEBHOOK_SECRET…`` variables sign webhooks; the operator may
    list others; leadheat's own settings never sign one, listed or not."""
    operator.setenv("LEADHEAT_WEBHOOK_HOSTS", "127.0.0.1")
    operator.setenv("CRM_SECRET", "crm-s3cret")
    clock.now = MONDAY_10
    lh = Leadheat(db_url, clock=clock)
    lh.init()
    crm = alerts(webhook(f"{webhook_receiver.url}/hooks", secret_env="CRM_SECRET"))
    with pytest.raises(ValueError, match=r"speed\.alerts\.0\.secret_env: CRM_SECRET is not a"):
        lh.apply_playbook(crm)
    operator.setenv("LEADHEAT_SECRET_ENVS", "CRM_SECRET,LEADHEAT_DATABASE_URL")
    ours = alerts(webhook(f"{webhook_receiver.url}/hooks", secret_env="LEADHEAT_DATABASE_URL"))
    with pytest.raises(ValueError, match="LEADHEAT_DATABASE_URL is one of leadheat's own"):
        lh.apply_playbook(ours)
    lh.apply_playbook(crm)
    lh.add_rep("anna@x.com")
    lh.upsert_leads([LeadInput([parse_lead_key("ana@example.com")], {"title": "CTO"})])
    lh.track("ana@example.com", "demo_request")
    worker = Worker(lh)
    try:
        assert worker.run_once().delivered == 1
    finally:
        worker.close()
    (hook,) = webhook_receiver.accepted("/hooks")
    signed = f"{hook.headers['X-Leadheat-Timestamp']}.".encode() + hook.body
    expected = "sha256=" + hmac.new(b"crm-s3cret", signed, hashlib.sha256).hexdigest()
    assert hook.headers["X-Leadheat-Signature"] == expected
    lh.close()


@pytest.fixture
def outbox(db_url: str, clock: Clock) -> Iterator[Leadheat]:
    clock.now = MONDAY_10
    lh = Leadheat(db_url, clock=clock)
    lh.init()
    yield lh
    lh.close()


def queue(lh: Leadheat, url: str, secret_env: str | None = None) -> None:
    """A webhook in the outbox as a playbook applied before these limits would have left it."""
    with lh.transaction() as connection:
        enqueue(
            connection,
            lead_id=None,
            clock_id=None,
            trigger="hot",
            channel="webhook",
            target=url,
            secret_env=secret_env,
            payload={"trigger": "hot"},
            now=MONDAY_10,
        )


def test_a_host_is_checked_where_it_resolves_when_the_alert_leaves(
    outbox: Leadheat, webhook_receiver: WebhookReceiver, operator: pytest.MonkeyPatch
) -> None:
    """``localhost`` is a name, not an address, so a playbook may name it; sent, it resolves
    to loopback and is refused for good, until the operator lists it; the call then goes to
    the checked address with the host named in ``Host``."""
    port = webhook_receiver.url.rpartition(":")[2]
    queue(outbox, f"http://localhost:{port}/hooks")
    worker = Worker(outbox)
    try:
        assert worker.run_once().failed == 1
    finally:
        worker.close()
    (refused,) = outbox.deliveries(status="failed")
    assert refused.attempts == 1 and webhook_receiver.requests == []
    assert re.fullmatch(
        r"refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address; "
        r"list the host in LEADHEAT_WEBHOOK_HOSTS to allow it",
        refused.last_error or "",
    ), refused.last_error
    operator.setenv("LEADHEAT_WEBHOOK_HOSTS", "localhost")
    outbox.retry_delivery(refused.id)
    worker = Worker(outbox)
    try:
        assert worker.run_once().delivered == 1
    finally:
        worker.close()
    (hook,) = webhook_receiver.accepted("/hooks")
    assert hook.headers["Host"] == f"localhost:{port}"


def test_a_foreign_secret_variable_never_signs_a_queued_webhook(
    outbox: Leadheat, webhook_receiver: WebhookReceiver, operator: pytest.MonkeyPatch
) -> None:
    operator.setenv("LEADHEAT_WEBHOOK_HOSTS", "127.0.0.1")
    operator.setenv("LEADHEAT_SMTP_URL", "smtp://bot:mail-password@mail.example.com")
    queue(outbox, f"{webhook_receiver.url}/hooks", secret_env="LEADHEAT_SMTP_URL")
    worker = Worker(outbox)
    try:
        assert worker.run_once().failed == 1
    finally:
        worker.close()
    (refused,) = outbox.deliveries(status="failed")
    assert webhook_receiver.requests == [] and refused.attempts == 1
    assert (refused.last_error or "").startswith("refused: secret_env LEADHEAT_SMTP_URL is not")


def test_a_receivers_answer_is_not_kept(
    outbox: Leadheat, webhook_receiver: WebhookReceiver, operator: pytest.MonkeyPatch
) -> None:
    """A 404's body (which may echo what was sent) is not stored for readers of deliveries."""
    operator.setenv("LEADHEAT_WEBHOOK_HOSTS", "127.0.0.1")
    webhook_receiver.refuse_paths = {"/gone"}
    queue(outbox, f"{webhook_receiver.url}/gone")
    worker = Worker(outbox)
    try:
        worker.run_once()
    finally:
        worker.close()
    (failed,) = outbox.deliveries(status="failed")
    assert failed.last_error == "HTTP 404: Not Found"


def test_secrets_in_alert_urls_are_masked_for_those_who_only_read(
    db_url: str, operator: pytest.MonkeyPatch
) -> None:
    """Read keys and reps see where alerts go without the secrets in the URLs; admin keys and
    managers, who may apply a playbook, see it whole."""
    lh = Leadheat(db_url)
    lh.init(alerts(slack(SLACK), webhook(CRM)))
    lh.add_rep("anna@x.com")
    add_user(lh, "rita@example.com", "rep", PASSWORD)
    add_user(lh, "max@example.com", "manager", PASSWORD)
    lh.upsert_leads([LeadInput([parse_lead_key("ana@example.com")], {"title": "CTO"})])
    lh.track("ana@example.com", "demo_request")
    lead = lh.lead_id("ana@example.com")
    server = LiveServer(lh)
    try:
        for key, shown in ((server.read_key, False), (server.admin_key, True)):
            auth = {"Authorization": f"Bearer {key}"}
            book = httpx.get(f"{server.url}/api/v1/playbook", headers=auth)
            sent = httpx.get(f"{server.url}/api/v1/deliveries", headers=auth)
            assert book.status_code == sent.status_code == 200
            for text in (book.text, sent.text):
                assert all((secret in text) is shown for secret in SECRETS), (shown, text)
            if not shown:
                alerts_shown = book.json()["playbook"]["speed"]["alerts"]
                assert [a["url"] for a in alerts_shown] == [
                    "https://hooks.slack.com/services/***",
                    "https://***@crm.example.com/in/***?token=***",
                ]
                assert "https://hooks.slack.com/services/***" in book.json()["source"]
                assert {d["target"] for d in sent.json()} == {
                    "https://hooks.slack.com/services/***",
                    "https://***@crm.example.com/in/***?token=***",
                }
        for email, shown in (("rita@example.com", False), ("max@example.com", True)):
            with httpx.Client(base_url=server.url) as client:
                token = csrf_in(client.get("/login").text)
                signed = client.post(
                    "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
                )
                assert signed.status_code == 303
                page = client.get("/playbook").text
                assert all((secret in page) is shown for secret in SECRETS), email
                assert "hooks.slack.com/services/" in page
                timeline = client.get(f"/leads/{lead}").text
                assert "hooks.slack.com/services/***" in timeline
                assert not any(secret in timeline for secret in SECRETS)
                if shown:  # a manager checking a draft hears what the operator forbids
                    draft = alerts(webhook("http://10.1.2.3/hooks"))
                    form = {"csrf_token": csrf_in(page), "source": draft, "action": "check"}
                    checked = client.post("/playbook", data=form)
                    assert checked.status_code == 422
                    assert "10.1.2.3 is a private address" in checked.text
    finally:
        server.stop()
        lh.close()


def test_webhook_hosts_refuse_over_the_api_naming_the_line(
    operator: pytest.MonkeyPatch, live_server: LiveServer
) -> None:
    book = alerts(webhook("http://192.168.1.20/hooks"))
    reply = httpx.put(
        f"{live_server.url}/api/v1/playbook",
        json={"source": book},
        headers={"Authorization": f"Bearer {live_server.admin_key}"},
        timeout=30,
    )
    assert reply.status_code == 422
    body = reply.json()
    assert body["field"] == "speed.alerts.0.url" and body["line"] == line_of(book, "192.168")
    assert "192.168.1.20 is a private address" in body["error"]
