"""What a public (publishable) key may do to a lead, through the Python API as the collection
routes call it (``collect(..., public=True)``): add events and evidence, join an anonymous
visitor to a lead, fill empty fields; never set the owner or status, overwrite what the team
set, or merge two known people (a suggested merge instead, for a person to decide). Alerts
go only to the team, and an email is one address. Real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from conftest import DEMO_MAKES_HOT, Cli, Clock, LiveServer
from leadheat.delivery.worker import Worker
from leadheat.engage import nurture
from leadheat.identity import LeadKeyError, normalise_email, parse_lead_key
from leadheat.ingest.segment import SegmentError, parse_message
from leadheat.scoring.temperature import Temperature
from leadheat.service import Leadheat, LeadheatError, LeadInput
from leadheat.settings import Settings
from leadheat.store.models import Lead
from leadheat.views import suggestion_json
from leadheat.web.auth import add_user
from leadheat.web.leadpage import lead_page
from receivers import MailBox

MONDAY_10 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
PUBLIC = "api:pk0public"
"""How the audit log names the public key in these tests."""
PLAYBOOK = (
    DEMO_MAKES_HOT
    + """
[[fit.rules]]
field = "title"
matches = "(?i)student"
disqualify = true
[speed.teams.default]
manager = "boss@example.com"
[[speed.alerts]]
channel = "email"
to = ["owner"]
triggers = ["hot"]
"""
)
ANA = "ana@crm.example"
PASSWORD = "correct horse battery"
COMMA_EMAILS = [
    "ana,eve@evil.example",
    "eve@evil.example,ana",
    "Ana<ana@example.com>",
    '"eve"@evil.example',
]
"""Each was taken as an email before: a mail to it reaches more than one mailbox, or
another one than it seems to."""
_ids = count()


@pytest.fixture
def team(db_url: str, clock: Clock) -> Iterator[Leadheat]:
    clock.now = MONDAY_10
    lh = Leadheat(db_url, clock=clock)
    lh.init(PLAYBOOK)
    lh.add_rep("anna@x.com")
    yield lh
    lh.close()


def _crm(lh: Leadheat, email: str, **fields: object) -> int:
    """A lead as the CRM import gives it (trusted)."""
    report = lh.upsert_leads(
        [LeadInput([parse_lead_key(email)], {"name": "Ana Diaz", "title": "CTO", **fields})]
    )
    return report.lead_ids[0]


def _call(kind: str, ago: timedelta = timedelta(0), **data: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": f"m-{next(_ids)}",
        "timestamp": (MONDAY_10 - ago).isoformat(),
        **data,
    }


def _send(lh: Leadheat, *messages: dict[str, Any], public: bool = True) -> None:
    """What a collection route does with a body: read each message, then collect them."""
    received = lh.clock()
    read = [parse_message(m, "", received, public=public) for m in messages]
    lh.collect(read, public=public, actor=PUBLIC if public else "api:sk0secret")


def _events(lh: Leadheat, lead: str | int) -> list[str]:
    return [item["type"] for item in lh.timeline(lead) if item["kind"] == "event"]


def test_a_public_key_cannot_take_a_lead_nor_its_alerts(team: Leadheat) -> None:
    lead_id = _crm(team, ANA)
    _send(
        team,
        _call(
            "identify",
            anonymousId="v1",
            traits={"email": ANA, "owner": "eve@evil.example", "status": "won"},
        ),
        _call("track", anonymousId="v1", event="Demo Requested"),
    )
    shown = team.show(ANA)
    assert shown.score.temperature is Temperature.HOT
    assert shown.lead["owner"] == "anna@x.com"  # speed to lead assigned the team's rep
    assert "status" not in shown.lead["attributes"]
    alerts = [d for d in team.deliveries(lead=ANA) if d.channel == "email"]
    assert [alert.target for alert in alerts] == ["anna@x.com"]
    assert all("evil" not in alert.target for alert in team.deliveries())
    (refused,) = team.audit_log(action="collect.refused")
    assert (refused.actor, refused.subject, refused.detail) == (
        PUBLIC,
        f"lead:{lead_id}",
        {"fields": ["owner", "status"]},
    )
    # a secret key may set an owner, and that is audited as the key's
    _send(team, _call("identify", userId="u1", traits={"email": ANA, "owner": "anna@x.com"}))
    _send(team, _call("identify", userId="u1", traits={"owner": "ben@x.com"}), public=False)
    assert team.show(ANA).lead["owner"] == "ben@x.com"
    (owner,) = [e for e in team.audit_log(action="lead.owner") if e.actor == "api:sk0secret"]
    assert owner.detail == {"from": "anna@x.com", "to": "ben@x.com"}


def test_alerts_go_only_to_reps_and_dashboard_users(team: Leadheat) -> None:
    add_user(team, "max@x.com", "manager", PASSWORD)
    owners = {
        "a@crm.example": "partner@elsewhere.example",  # imported, but nobody of the team
        "b@crm.example": "Max@X.com",  # a dashboard user (any case)
        "c@crm.example": "anna@x.com",  # a rep
    }
    for email, owner in owners.items():
        _crm(team, email, owner=owner)
        team.track(email, "demo_request")
    targets = {
        email: [d.target for d in team.deliveries(lead=email) if d.trigger == "hot"]
        for email in owners
    }
    assert targets == {
        "a@crm.example": ["boss@example.com"],  # the manager is told instead
        "b@crm.example": ["Max@X.com"],
        "c@crm.example": ["anna@x.com"],
    }


def test_public_collection_fills_fields_but_never_overwrites_the_teams(team: Leadheat) -> None:
    _crm(team, ANA, company="Acme", owner="anna@x.com")
    team.evidence(ANA, "budget", "EUR 30k")
    team.track(ANA, "demo_request")
    before = team.show(ANA)
    assert (before.score.temperature, before.score.grade) == (Temperature.HOT, "B1")

    def identify(**traits: object) -> None:
        _send(team, _call("identify", anonymousId="v1", traits={"email": ANA, **traits}))

    identify(title="student", name="Eve", company="Evil Corp", plan="pro", need="a CRM")
    after = team.show(ANA)
    assert (after.lead["name"], after.lead["title"], after.lead["company"]) == (
        "Ana Diaz",
        "CTO",
        "Acme",
    )
    assert (after.score.temperature, after.score.grade) == (Temperature.HOT, "B1")
    assert after.lead["attributes"]["plan"] == "pro"  # an empty field is filled
    assert after.lead["public_fields"] == ["need", "plan"]
    assert after.score.evidence["need"].value == "a CRM"  # evidence is added
    (refused,) = team.audit_log(action="collect.refused")
    assert refused.detail == {"fields": ["company", "name", "title"]}

    identify(plan="free", name="Ana Diaz")  # its own field: changed; the same name: no refusal
    assert team.show(ANA).lead["attributes"]["plan"] == "free"
    assert len(team.audit_log(action="collect.refused")) == 1

    team.patch_lead(ANA, {"attributes": {"plan": "enterprise"}})  # now the team's
    identify(plan="trial")
    shown = team.show(ANA)
    assert shown.lead["attributes"]["plan"] == "enterprise"
    assert shown.lead["public_fields"] == ["need"]

    _send(team, _call("identify", userId="u9", traits={"email": ANA, "title": "VP"}), public=False)
    assert team.show(ANA).lead["title"] == "VP"  # a secret key is trusted


def test_the_merge_attack_becomes_a_suggestion_that_a_person_confirms(team: Leadheat) -> None:
    victim = _crm(team, ANA, owner="anna@x.com", company="Acme")
    attack = [
        _call("identify", timedelta(minutes=3), userId="x", traits={"title": "student"}),
        _call("track", timedelta(minutes=2), userId="x", event="Demo Requested"),
        _call("identify", timedelta(minutes=1), userId="x", traits={"email": ANA}),
    ]
    for call in attack:
        _send(team, call)
    attacker = team.lead_id("x")
    assert team.lead_id(ANA) == victim != attacker
    assert team.show(ANA).lead["owner"] == "anna@x.com"
    assert _events(team, ANA) == []  # the attacker's events stay on the attacker's lead
    assert _events(team, "x") == ["demo_request"]
    (suggestion,) = team.suggested_merges()
    assert (suggestion.lead_id, suggestion.into_lead_id, suggestion.source) == (
        victim,
        attacker,
        PUBLIC,
    )
    assert "'x'" in suggestion.reason and ANA in suggestion.reason
    _send(team, _call("identify", anonymousId="v2", userId="x", traits={"email": ANA}))
    _send(team, _call("identify", userId="x", traits={"email": ANA}))  # the same again
    assert len(team.suggested_merges()) == 1  # one open suggestion per pair
    assert [(e.subject, e.detail) for e in team.audit_log(action="merge.suggest")] == [
        (f"lead:{victim}", {"suggestion": suggestion.id, "into": attacker})
    ]
    (hint,) = lead_page(team, victim).merges
    assert (hint.suggestion_id, hint.other_id, hint.stays) == (suggestion.id, attacker, False)

    kept = team.confirm_merge(suggestion.id, actor="cli")
    assert kept == attacker == team.lead_id(ANA) == team.lead_id("x")
    merged = team.show(ANA)
    assert (merged.lead["owner"], merged.lead["title"], merged.lead["company"]) == (
        "anna@x.com",
        "CTO",  # the team's value wins over the one public collection set on the other lead
        "Acme",
    )
    assert merged.lead["public_fields"] is None
    assert _events(team, ANA) == ["demo_request"]
    assert team.suggested_merges() == []
    (done,) = team.suggested_merges(status="confirmed")
    assert (done.status, done.resolved_by) == ("confirmed", "cli")
    (confirmed,) = team.audit_log(action="merge.confirm")
    assert (confirmed.actor, confirmed.detail) == ("cli", {"lead": victim, "into": attacker})
    (merge,) = team.audit_log(action="lead.merge")
    assert (merge.actor, merge.subject, merge.detail) == (
        "cli",
        f"lead:{attacker}",
        {"absorbed": victim},
    )
    with pytest.raises(LeadheatError, match="already confirmed"):
        team.confirm_merge(suggestion.id)


def test_suggested_merges_over_http_and_the_cli(
    team: Leadheat, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bea = _crm(team, "bea@crm.example")
    cy = _crm(team, "cy@crm.example")
    # a visitor known by one email identifies with another: two known people
    _send(team, _call("identify", userId="bea-app", traits={"email": "bea@crm.example"}))
    _send(team, _call("identify", userId="bea-app", traits={"email": "cy@crm.example"}))
    (first,) = team.suggested_merges()
    assert (first.lead_id, first.into_lead_id) == (cy, bea)
    add_user(team, "rita@x.com", "rep", PASSWORD)
    server = LiveServer(team)
    try:
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        reader = {"Authorization": f"Bearer {server.read_key}"}
        with httpx.Client(base_url=server.url, timeout=30) as browser:  # the lead page shows it
            token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
            assert token is not None
            signed = browser.post(
                "/login",
                data={"email": "rita@x.com", "password": PASSWORD, "csrf_token": token[1]},
            )
            assert signed.status_code == 303
            page = browser.get(f"/leads/{cy}").text
            assert "Suggested merges" in page
            assert f'this lead would be merged into <a href="/leads/{bea}">Ana Diaz</a>' in page
            assert f'<a href="/leads/{cy}">' in browser.get(f"/leads/{bea}").text
        with httpx.Client(base_url=server.url, timeout=30) as client:
            listed = client.get("/api/v1/merges/suggested", headers=admin)
            assert listed.status_code == 200, listed.text
            assert [(s["id"], s["lead_id"], s["into_lead_id"]) for s in listed.json()] == [
                (first.id, cy, bea)
            ]
            refused = client.post(f"/api/v1/merges/suggested/{first.id}/dismiss", headers=reader)
            assert refused.status_code == 403
            dismissed = client.post(f"/api/v1/merges/suggested/{first.id}/dismiss", headers=admin)
            assert dismissed.json() == {"ok": True, "lead": cy}
            assert client.get("/api/v1/merges/suggested", headers=admin).json() == []
            (closed,) = client.get(
                "/api/v1/merges/suggested", params={"status": "dismissed"}, headers=admin
            ).json()
            assert closed["resolved_by"].startswith("api:")
            again = client.post(f"/api/v1/merges/suggested/{first.id}/confirm", headers=admin)
            assert again.status_code == 400 and "already dismissed" in again.json()["error"]
            missing = client.post("/api/v1/merges/suggested/999/confirm", headers=admin)
            assert missing.status_code == 404
    finally:
        server.stop()
    assert team.lead_id("bea@crm.example") != team.lead_id("cy@crm.example")
    (dismissal,) = team.audit_log(action="merge.dismiss")
    assert dismissal.detail == {"lead": cy, "into": bea}

    # dismissed is settled: the same claim again makes a new suggestion, which the CLI confirms
    _send(team, _call("identify", userId="bea-app", traits={"email": "cy@crm.example"}))
    cli = Cli(db_url, capsys)
    (second,) = cli.json("merges", "--suggested")  # type: ignore[misc]
    assert (second["lead_id"], second["into_lead_id"], second["status"]) == (cy, bea, "open")
    code, out, err = cli("merges", "confirm", str(second["id"]))
    assert code == 0, err
    assert "confirmed" in out
    assert team.lead_id("cy@crm.example") == bea
    assert cli.json("merges", "--suggested") == []
    history = cli.json("merges")
    assert [(s["status"], s["resolved_by"]) for s in history] == [  # type: ignore[union-attr]
        ("confirmed", "cli"),
        ("dismissed", closed["resolved_by"]),
    ]
    code, _, err = cli("merges", "dismiss", str(second["id"]))
    assert code == 1 and "already confirmed" in err


def test_a_visitor_joins_the_crm_lead_with_every_anonymous_view(team: Leadheat) -> None:
    lead_id = _crm(team, ANA, owner="anna@x.com")
    _crm(team, "twin@crm.example", owner="anna@x.com")
    hours = [timedelta(hours=3), timedelta(hours=2), timedelta(minutes=30)]
    _send(team, _call("page", hours[0], anonymousId="v1", properties={"url": "/pricing"}))
    _send(team, _call("page", hours[1], anonymousId="v1", properties={"url": "/product"}))
    assert team.lead_id("anon:v1") != lead_id
    _send(
        team,
        _call(
            "identify",
            hours[2],
            anonymousId="v1",
            traits={"email": ANA, "name": "A. Diaz", "title": "Student", "plan": "pro"},
        ),
        _call("track", hours[2], anonymousId="v1", event="Demo Requested"),
    )
    # the same history, recorded straight on a twin lead: the heat must be exactly the same
    for ago, kind in zip(hours, ("page_view", "page_view", "demo_request"), strict=True):
        team.track("twin@crm.example", kind, MONDAY_10 - ago)
    assert team.lead_id("anon:v1") == lead_id
    joined, twin = team.show(ANA), team.show("twin@crm.example")
    assert _events(team, ANA) == ["demo_request", "page_view", "page_view"]
    assert joined.score.heat == twin.score.heat > 25
    assert (joined.lead["name"], joined.lead["title"], joined.lead["owner"]) == (
        "Ana Diaz",
        "CTO",
        "anna@x.com",
    )
    assert joined.lead["attributes"]["plan"] == "pro"
    assert team.suggested_merges() == []


@pytest.mark.parametrize("email", COMMA_EMAILS)
def test_an_email_is_one_address(email: str) -> None:
    with pytest.raises(LeadKeyError, match="not one email address"):
        normalise_email(email)
    with pytest.raises(SegmentError) as caught:
        parse_message({"userId": "u", "traits": {"email": email}}, "", MONDAY_10, "identify")
    assert caught.value.field == "traits.email"


def test_bad_emails_are_refused_everywhere_leads_get_them(
    team: Leadheat, db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # public collection leaves the bad trait out and keeps the call (the SDKs resend a refused
    # batch forever); the visitor stays anonymous, and the audit log says what was dropped
    _send(
        team,
        *[
            _call(
                "track",
                anonymousId=f"v{number}",
                event="Demo Requested",
                context={"traits": {"email": email}},
            )
            for number, email in enumerate(COMMA_EMAILS)
        ],
    )
    for number in range(len(COMMA_EMAILS)):
        assert _events(team, f"anon:v{number}") == ["demo_request"]
        assert team.show(f"anon:v{number}").lead["email"] is None
    refused = team.audit_log(action="collect.refused")
    assert [entry.detail for entry in refused] == [{"fields": ["email"]}] * len(COMMA_EMAILS)
    server = LiveServer(team)
    try:
        ingest = {"Authorization": f"Bearer {server.ingest_key}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for email in COMMA_EMAILS:
                answer = client.post("/api/v1/leads", json={"email": email}, headers=ingest)
                assert (answer.status_code, answer.json()["field"]) == (400, "email"), email
                answer = client.post(
                    "/api/v1/events", json={"lead": email, "type": "x"}, headers=ingest
                )
                assert (answer.status_code, answer.json()["field"]) == (400, "lead"), email
                answer = client.post(
                    "/v1/identify",
                    json={"userId": "u", "traits": {"email": email}},
                    auth=(server.ingest_key, ""),
                )
                assert (answer.status_code, answer.json()["field"]) == (400, "traits.email")
    finally:
        server.stop()
    table = tmp_path / "leads.csv"
    table.write_text("email,name\nok@crm.example,Ok\n" + f'"{COMMA_EMAILS[0]}",Eve\n')
    code, _, err = Cli(db_url, capsys)("import", "leads", str(table))
    assert code == 1
    assert "line 3" in err and "email" in err and "not one email address" in err
    with team.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT email FROM leads").scalars().all()
    assert not [e for e in stored if e and ("," in e or "<" in e or '"' in e)]


def test_the_json_of_suggested_merges_is_documented(team: Leadheat) -> None:
    _crm(team, "bea@crm.example")
    _crm(team, "cy@crm.example")
    _send(team, _call("identify", userId="b", traits={"email": "bea@crm.example"}))
    _send(team, _call("identify", userId="b", traits={"email": "cy@crm.example"}))
    (item,) = [suggestion_json(found) for found in team.suggested_merges()]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text("utf-8")
    section = docs.split("### `leadheat merges`", 1)[1].split("\n### ", 1)[0]
    for key in item:
        assert f"`{key}`" in section, key


NURTURE = """
[speed]
enabled = false
[sequences.hello]
[[sequences.hello.steps]]
subject = "Hello"
body = "Hi {{ lead.name }}."
"""


def test_nurture_mail_never_fans_out_to_extra_recipients(
    lh: Leadheat, smtp_server: tuple[str, MailBox]
) -> None:
    lh.apply_playbook(NURTURE)
    smtp_url, box = smtp_server
    for email in ("legacy@crm.example", "here@crm.example"):
        lh.upsert_leads([LeadInput([parse_lead_key(email)], {"name": "Ana"})])
    with lh.engine.begin() as connection:  # an address stored before they were checked
        connection.execute(
            update(Lead).where(Lead.email == "legacy@crm.example").values(email=COMMA_EMAILS[0])
        )
    for email in ("legacy@crm.example", "here@crm.example"):
        nurture.enroll(lh, email, "hello", actor="tests")
    worker = Worker(lh, Settings(database_url=lh.url, smtp_url=smtp_url))
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.delivered, report.failed) == (1, 1)
    assert [m["To"] for m in box.wait_for(1)] == ["here@crm.example"]
    (failed,) = lh.deliveries(status="failed")
    assert "not one email address" in (failed.last_error or "")
