"""Nurture sequences end to end: a real SMTP server (aiosmtpd) receives the mails, the
unsubscribe link is followed over HTTP against the running server, and replies, touches and
outcomes stop a sequence before its next mail. The clock is fixed and moved by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from typing import Any

import httpx
import pytest

from conftest import NOW, Cli, Clock, LiveServer
from leadheat.delivery.worker import Worker
from leadheat.engage import nurture
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.settings import Settings
from leadheat.store.nurture import list_enrollments
from receivers import MailBox

PLAYBOOK = """
[fit]
qualified_at = 0
[signals.product_view]
points = 3
[signals.demo]
points = 40
[temperature]
hot_requires = []
[speed]
enabled = false
[cadence]
digest = false

[sequences.shoes]
[[sequences.shoes.enroll]]
temperature = "warm"
[[sequences.shoes.steps]]
subject = "Still thinking about the {{ viewed[0] }}?"
body = \"\"\"Hi {{ lead.name or 'there' }},
we saw you compared the {{ viewed | join(' and ') }}.
No more mails: {{ unsubscribe_url }}\"\"\"
[[sequences.shoes.steps]]
delay = "3d"
subject = "A size guide for the {{ viewed[0] }}"
body = "Here it is."
[[sequences.shoes.steps]]
delay = "7d"
subject = "Last one from us"
body = "Bye for now."
"""
D = timedelta(days=1)
SHOPPERS = ("ana@example.com", "bo@example.com", "cy@example.com", "dee@example.com")


@pytest.fixture
def shop(
    lh: Leadheat, clock: Clock, smtp_server: tuple[str, MailBox]
) -> Iterator[tuple[Leadheat, LiveServer, Worker, MailBox]]:
    """Four warm shoppers who compared two shoes, a live server, and a worker that sends
    through the real SMTP server and links to the live server."""
    lh.apply_playbook(PLAYBOOK)
    lh.upsert_leads(
        [LeadInput([parse_lead_key(email)], {"name": email[:3].title()}) for email in SHOPPERS]
    )
    for email in SHOPPERS:
        lh.track(email, "product_view", NOW - timedelta(hours=3), {"name": "Trail Runner 2"})
        lh.track(email, "product_view", NOW - timedelta(hours=2), {"name": "Road Racer"})
    server = LiveServer(lh)
    smtp_url, box = smtp_server
    worker = Worker(lh, Settings(database_url=lh.url, smtp_url=smtp_url, public_url=server.url))
    try:
        yield lh, server, worker, box
    finally:
        worker.close()
        server.stop()


def _body(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def _mails_to(box: MailBox, email: str) -> list[str]:
    return [m["Subject"] for m in box.messages if m["To"] == email]


def _status(lh: Leadheat, email: str) -> tuple[str, int, str | None]:
    with lh.engine.connect() as connection:
        (row,) = list_enrollments(connection, lead_id=lh.lead_id(email))
    return row.status, row.step, row.stop_reason


def test_a_sequence_mails_each_step_until_something_stops_it(
    shop: tuple[Leadheat, LiveServer, Worker, MailBox], clock: Clock
) -> None:
    lh, _, worker, box = shop
    report = worker.run_once()
    assert report.nurtured == 4 and report.delivered == 4
    mails = box.wait_for(4)
    first = next(m for m in mails if m["To"] == "ana@example.com")
    assert first["Subject"] == "Still thinking about the Road Racer?"
    body = _body(first)
    assert "Hi Ana," in body and "compared the Road Racer and Trail Runner 2" in body
    link = re.search(r"No more mails: (\S+)", body).group(1)
    assert first["List-Unsubscribe"].strip() == f"<{link}>"  # folded when long
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    sent = [item for item in lh.timeline("ana@example.com") if item.get("type") == "email_sent"]
    assert len(sent) == 1 and sent[0]["properties"]["subject"] == first["Subject"]

    # a mail scanner opens Ana's link: a page that asks, and nothing changes
    page = httpx.get(link)
    assert page.status_code == 200 and "Unsubscribe?" in page.text
    assert "ana@example.com" in page.text and 'method="post"' in page.text
    assert _status(lh, "ana@example.com") == ("active", 1, None)
    # Ana presses the page's button: her sequence stops at once
    form = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', page.text))
    action = re.search(r'action="([^"]+)"', page.text).group(1)
    pressed = httpx.post(httpx.URL(link).join(action), data=form)
    assert pressed.status_code == 200 and "unsubscribed" in pressed.text
    assert _status(lh, "ana@example.com") == ("stopped", 1, "unsubscribe")
    # Bo answers (an inbound event), Cy is called, Dee's next mail is due as planned
    clock.now = NOW + D
    lh.track("bo@example.com", "reply", clock.now, {"subject": "Re: Still thinking"})
    lh.touch("cy@example.com", "call", rep="rita@x.com")
    clock.now = NOW + 3 * D + timedelta(minutes=1)
    worker.run_once()
    assert _mails_to(box, "dee@example.com") == [
        "Still thinking about the Road Racer?",
        "A size guide for the Road Racer",
    ]
    assert _status(lh, "bo@example.com") == ("stopped", 1, "reply")
    assert _status(lh, "cy@example.com") == ("stopped", 1, "touch")
    # Dee unsubscribes with her mail program's one-click POST; nothing more goes to anyone
    dee_link = re.search(
        r"No more mails: (\S+)",
        _body(next(m for m in box.messages if m["To"] == "dee@example.com")),
    ).group(1)
    one_click = httpx.post(dee_link, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    clock.now = NOW + 30 * D
    worker.run_once()
    for email in SHOPPERS:
        assert len(_mails_to(box, email)) == (2 if email == "dee@example.com" else 1), email
    assert _status(lh, "dee@example.com") == ("stopped", 2, "unsubscribe")
    # and nobody who unsubscribed can be put back in by hand
    with pytest.raises(nurture.SequenceError, match="unsubscribed"):
        nurture.enroll(lh, "ana@example.com", "shoes", actor="tests")


def test_a_sequence_that_nothing_stops_finishes_and_forged_links_do_nothing(
    shop: tuple[Leadheat, LiveServer, Worker, MailBox], clock: Clock
) -> None:
    lh, server, worker, box = shop
    worker.run_once()
    for days in (3, 7, 8):
        clock.now = NOW + days * D + timedelta(seconds=1)
        worker.run_once()
    assert _mails_to(box, "ana@example.com") == [
        "Still thinking about the Road Racer?",
        "A size guide for the Road Racer",
        "Last one from us",
    ]
    assert _status(lh, "ana@example.com") == ("finished", 3, None)
    forged = f"{server.url}/u/NDI6ZXZlQGV4YW1wbGUuY29t.AAAAAAAAAAAAAAAAAAAAAAAA"
    assert httpx.get(forged).status_code == 404
    assert httpx.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert [item.status for item in _all(lh)] == ["finished"] * 4


def _all(lh: Leadheat) -> list[object]:
    with lh.engine.connect() as connection:
        return list_enrollments(connection)


def test_an_outcome_stops_a_sequence_and_a_refused_address_counts_as_a_bounce(
    shop: tuple[Leadheat, LiveServer, Worker, MailBox], clock: Clock
) -> None:
    lh, _, worker, box = shop
    worker.run_once()
    lh.outcome("bo@example.com", "won")
    assert _status(lh, "bo@example.com") == ("stopped", 1, "outcome")
    clock.now = NOW + D
    lh.track("cy@example.com", "email_bounced", NOW + D, {"code": "550"})
    clock.now = NOW + 4 * D
    worker.run_once()
    assert _status(lh, "cy@example.com") == ("stopped", 1, "bounce")
    assert len(_mails_to(box, "bo@example.com")) == 1


def test_the_cli_enrols_by_hand_lists_and_unsubscribes(
    shop: tuple[Leadheat, LiveServer, Worker, MailBox], capsys: pytest.CaptureFixture[str]
) -> None:
    lh, server, _, _ = shop
    lh.upsert_leads([LeadInput([parse_lead_key("eve@example.com")], {"name": "Eve"})])
    cli = Cli(lh.url, capsys)
    code, out, _ = cli("sequences", "enroll", "eve@example.com", "shoes")
    assert code == 0 and "enrolled" in out
    code, _, err = cli("sequences", "enroll", "eve@example.com", "shoes")
    assert code == 1 and "was enrolled in 'shoes'" in err
    code, _, err = cli("sequences", "enroll", "eve@example.com", "socks")
    assert code == 1 and "no sequence 'socks'" in err
    (listed,) = cli.json("sequences", "enrollments", "--lead", "eve@example.com")
    assert (listed["sequence"], listed["status"], listed["enrolled_by"]) == (
        "shoes",
        "active",
        "cli",
    )
    # the CLI runs on the wall clock, so how many shoppers are still warm enough for the
    # rule depends on the day: the pass must agree with itself, whatever that number is
    code, out, _ = cli("sequences", "run")
    enrolled = int(re.search(r"enrolled (\d+), mails queued (\d+)", out).group(1))
    assert code == 0 and f"enrolled {enrolled}, mails queued {enrolled + 1}, digests 0" in out
    (listed,) = cli.json("sequences", "list")
    assert listed == {
        "sequence": "shoes",
        "steps": 3,
        "rules": 1,
        "active": enrolled + 1,
        "finished": 0,
        "stopped": 0,
    }
    lh.upsert_leads([LeadInput([parse_lead_key("fay@example.com")], {"name": "Fay"})])
    assert cli("sequences", "enroll", "fay@example.com", "shoes")[0] == 0
    code, out, _ = cli("sequences", "stop", "fay@example.com", "shoes")
    assert code == 0 and "stopped 1 enrolment(s)" in out
    (fay,) = cli.json("sequences", "enrollments", "--lead", "fay@example.com")
    assert (fay["status"], fay["stop_reason"]) == ("stopped", "by cli")
    code, out, _ = cli("unsubscribe", "EVE@example.com")
    assert code == 0
    (listed,) = cli.json("sequences", "enrollments", "--lead", "eve@example.com")
    assert (listed["status"], listed["stop_reason"]) == ("stopped", "unsubscribe")
    response = httpx.post(
        f"{server.url}/api/v1/leads/bo@example.com/enrollments",
        json={"sequence": "nope"},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert response.status_code == 400 and response.json()["field"] == "sequence"


def test_a_template_that_fails_for_one_lead_stops_only_that_lead(
    shop: tuple[Leadheat, LiveServer, Worker, MailBox],
) -> None:
    lh, _, worker, box = shop
    lh.apply_playbook(
        PLAYBOOK.replace(
            'subject = "Still thinking about the {{ viewed[0] }}?"',
            'subject = "{{ 100 // lead.discount }}% off the {{ viewed[0] }}"',
        )
    )
    lh.patch_lead("ana@example.com", {"attributes": {"discount": 0}})
    for email in SHOPPERS[1:]:
        lh.patch_lead(email, {"attributes": {"discount": 4}})
    worker.run_once()
    assert sorted(m["To"] for m in box.wait_for(3)) == sorted(SHOPPERS[1:])
    assert box.messages[0]["Subject"] == "25% off the Road Racer"
    assert _status(lh, "ana@example.com") == ("stopped", 0, "template error")


class Refusing(MailBox):
    """A mail server that has no mailbox for addresses starting with ``gone``."""

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self, server: object, session: object, envelope: Any, address: str, options: object
    ) -> str:
        if address.startswith("gone"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_an_address_the_server_refuses_for_good_stops_the_sequence_as_a_bounce(
    lh: Leadheat, clock: Clock
) -> None:
    import socket

    from aiosmtpd.controller import Controller

    lh.apply_playbook(PLAYBOOK)
    for email in ("gone@example.com", "here@example.com"):
        lh.track(email, "product_view", NOW - timedelta(hours=1), {"name": "Road Racer"})
        lh.track(email, "product_view", NOW, {"name": "Road Racer"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Refusing()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    worker = Worker(lh, Settings(database_url=lh.url, smtp_url=f"smtp://127.0.0.1:{port}"))
    try:
        report = worker.run_once()
        assert (report.delivered, report.failed) == (1, 1)
        assert [m["To"] for m in box.wait_for(1)] == ["here@example.com"]
        assert _status(lh, "gone@example.com") == ("stopped", 1, "bounce")
        assert _status(lh, "here@example.com") == ("active", 1, None)
    finally:
        worker.close()
        controller.stop()
