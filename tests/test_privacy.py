"""People's data: export everything about a person, erase them for good, and the audit log of
who changed what. Real databases (SQLite and PostgreSQL), the CLI and a live server.

Which rows are "about the person" is worked out here independently of the code under test:
every row whose foreign key points at one of the person's leads, or at such a row, found by
walking ``Base.metadata`` in Python, so a table added later is covered without a line here.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, select

from conftest import DEMO_MAKES_HOT, NOW, Cli, Clock, LiveServer
from leadheat.engage import nurture
from leadheat.engage.lists import tasks
from leadheat.identity import LeadKey, parse_lead_key
from leadheat.ingest.records import OutcomeInput
from leadheat.service import Leadheat, LeadInput, UnknownLeadError
from leadheat.store.models import Base, Lead
from leadheat.store.suggestions import suggest

EMAIL = "ana.diaz@example.com"
NAME = "Ana Diaz"
EXTERNAL = "crm-4711"
ANONYMOUS = "visitor-0042"
PERSONAL = (EMAIL, NAME, EXTERNAL, ANONYMOUS)
"""What must not survive an erasure anywhere in the database, the audit log included."""

PLAYBOOK = (
    DEMO_MAKES_HOT
    + """
[[speed.alerts]]
channel = "webhook"
url = "https://hooks.example.com/hooks"
[[sequences.welcome.steps]]
subject = "Welcome"
body = "Hello {{ lead.name }}"
"""
)


@pytest.fixture
def team(db_url: str, clock: Clock) -> Iterator[Leadheat]:
    """A database whose hot leads get an owner, an SLA clock and a webhook in the outbox."""
    lh = Leadheat(db_url, clock=clock)
    lh.init(PLAYBOOK)
    lh.add_rep("rita@x.com")
    yield lh
    lh.close()


def _person(lh: Leadheat) -> int:
    """Ana, with one of everything: an anonymous visit merged in, events with properties,
    evidence, a touch, an outcome, an owner, SLA clocks and notifications, an account and
    the one she was in before."""
    lh.track(f"anon:{ANONYMOUS}", "page_view", NOW - timedelta(hours=5), {"url": "/pricing"})
    report = lh.upsert_leads(
        [
            LeadInput(
                [parse_lead_key(EMAIL), LeadKey("external", EXTERNAL)],
                {"name": NAME, "title": "CTO", "city": "Sevilla", "account": "acme.com"},
            )
        ]
    )
    lead_id = report.lead_ids[0]
    # a company she belonged to before her account now: a past membership
    lh.patch_lead(EMAIL, {"attributes": {"account": "initech.com"}})
    lh.merge(EMAIL, f"anon:{ANONYMOUS}")
    lh.track(EMAIL, "demo_request", NOW - timedelta(hours=1), {"form_email": EMAIL})
    lh.evidence(EMAIL, "budget", "EUR 30k")
    nurture.enroll(lh, EMAIL, "welcome", actor="tests")
    nurture.unsubscribe(lh, EMAIL, source="tests", lead_id=lead_id)
    lh.touch(EMAIL, "call", result="connected", rep="rita@x.com", note=f"spoke to {NAME}")
    lh.outcome(EMAIL, "won", reason="signed")
    (visit,) = _person_ids(lh, lead_id) - {lead_id}
    with lh.transaction() as connection:
        suggest(connection, [(visit, lead_id, "a web visitor named both")], "tests", NOW)
    return lead_id


def _other(lh: Leadheat) -> None:
    lh.upsert_leads([LeadInput([parse_lead_key("bo@example.com")], {"title": "CTO"})])
    lh.track("bo@example.com", "demo_request", NOW - timedelta(hours=2))


# -- the independent walk -----------------------------------------------------------------------
def _all_rows(lh: Leadheat) -> dict[str, list[dict[str, Any]]]:
    with lh.engine.connect() as connection:
        return {
            table.name: [dict(row) for row in connection.execute(select(table)).mappings()]
            for table in Base.metadata.sorted_tables
        }


def _rows_about(lh: Leadheat, lead_ids: set[int]) -> dict[str, list[dict[str, Any]]]:
    """Per table that references leads (directly or through another table): the rows that
    point at these leads."""
    everything = _all_rows(lh)
    leads = Lead.__table__
    keys: dict[tuple[str, str], set[Any]] = {(leads.name, "id"): set(lead_ids)}
    referenced: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            referenced.setdefault(key.column.table.name, set()).add(key.column.name)
    about: dict[str, list[dict[str, Any]]] = {}
    for table in Base.metadata.sorted_tables:
        links = [
            (key.parent.name, (key.column.table.name, key.column.name))
            for key in table.foreign_keys
            if isinstance(key.column.table, Table) and key.column.table is not table
        ]
        if table is leads:
            rows = [row for row in everything[table.name] if row["id"] in lead_ids]
        elif any(target in keys for _, target in links):
            rows = [
                row
                for row in everything[table.name]
                if any(row[column] in keys.get(target, ()) for column, target in links)
            ]
        elif "lead_id" in table.columns:  # kept per lead without a foreign key
            rows = [row for row in everything[table.name] if row["lead_id"] in lead_ids]
        else:
            continue
        about[table.name] = rows
        for column in table.columns:
            if column.name in referenced.get(table.name, ()):
                keys[(table.name, column.name)] = {row[column.name] for row in rows}
    return about


UNLINKED = {"followup_leads", "followup_phases", "followup_stale"}
"""Follow-up state kept per lead without a foreign key: rows there come and go with reads
(a read computes the stale leads), so the person may have none at a given moment."""


def _person_ids(lh: Leadheat, lead_id: int) -> set[int]:
    with lh.engine.connect() as connection:
        merged = connection.execute(select(Lead.id).where(Lead.merged_into_id == lead_id))
        return {lead_id, *merged.scalars()}


def _lead_tables() -> set[str]:
    """Tables with a ``lead_id`` column or any foreign key to ``leads``."""
    return {
        table.name
        for table in Base.metadata.sorted_tables
        if "lead_id" in table.columns
        or any(key.column.table is Lead.__table__ for key in table.foreign_keys)
    }


def test_the_walk_finds_the_tables_that_hold_a_person() -> None:
    assert {
        "leads",
        "identities",
        "events",
        "touches",
        "outcomes",
        "evidence",
        "lead_states",
        "heat_keys",
        "sla_clocks",
        "deliveries",
    } <= _lead_tables()


# -- export -------------------------------------------------------------------------------------
def test_export_has_every_table_about_the_person(team: Leadheat) -> None:
    lead_id = _person(team)
    _other(team)
    exported = team.export(EMAIL)
    ids = _person_ids(team, lead_id)
    assert exported["lead"] == lead_id
    assert set(exported["lead_ids"]) == ids and len(ids) == 2  # the anonymous visit merged in
    tables = exported["tables"]
    assert _lead_tables() <= set(tables)
    expected = _rows_about(team, ids)
    for name, rows in expected.items():
        if name not in UNLINKED:
            assert rows, f"the test person has no row in {name}: give them one"
        assert len(tables[name]) == len(rows), name
    assert {row["email"] for row in tables["leads"]} == {EMAIL, None}
    (merged,) = [row for row in tables["leads"] if row["merged_into_id"] == lead_id]
    assert merged["id"] != lead_id
    assert {(row["kind"], row["value"]) for row in tables["identities"]} == {
        ("email", EMAIL),
        ("external", EXTERNAL),
        ("anonymous", ANONYMOUS),
    }
    properties = [row["properties"] for row in tables["events"]]
    assert {"url": "/pricing"} in properties and {"form_email": EMAIL} in properties
    assert tables["leads"][0]["attributes"] or tables["leads"][1]["attributes"]
    assert "probability" in tables["lead_states"][0]
    assert [row["outcome"] for row in tables["outcomes"]] == ["won"]
    assert EMAIL in [row["payload"]["lead"]["email"] for row in tables["deliveries"]]
    assert all("target" not in row for row in tables["deliveries"])  # a URL can be a secret
    assert all("bo@example.com" not in json.dumps(rows) for rows in tables.values())
    assert exported["exported_at"].endswith("Z")
    json.dumps(exported)  # plain JSON all the way down
    (record,) = team.audit_log(action="lead.export")
    assert record.subject == f"lead:{lead_id}" and record.actor == "python"


# -- erasure ------------------------------------------------------------------------------------
def test_erase_removes_every_row_about_the_person_and_nothing_else(team: Leadheat) -> None:
    lead_id = _person(team)
    _other(team)
    ids = _person_ids(team, lead_id)
    tasks(team)  # the follow-up state is computed: it holds rows about the person too
    before = _rows_about(team, ids)
    assert before["followup_leads"]
    assert set(before) == _lead_tables()
    assert all(rows for name, rows in before.items() if name not in UNLINKED), {
        name: len(rows) for name, rows in before.items()
    }
    totals = {name: len(rows) for name, rows in _all_rows(team).items()}
    bo = team.show("bo@example.com")

    erased = team.erase(f"id:{lead_id}", actor="dpo")

    assert erased.lead_id == lead_id and set(erased.lead_ids) == ids
    assert erased.removed == {name: len(rows) for name, rows in before.items()}
    after = _rows_about(team, ids)
    assert not any(after.values()), {name: len(rows) for name, rows in after.items()}
    remaining = {name: len(rows) for name, rows in _all_rows(team).items()}
    for name, count in totals.items():
        if name == "account_heat_keys":  # the sum of the members' keys: hers went with her
            continue
        removed = erased.removed.get(name, 0) - (1 if name == "audit_log" else 0)
        assert remaining[name] == count - removed, name
    # nothing anywhere names the person, the audit log included
    dump = json.dumps(_all_rows(team), default=str)
    for personal in PERSONAL:
        assert personal not in dump, personal
    # no key finds them
    keys = [parse_lead_key(EMAIL), LeadKey("external", EXTERNAL), LeadKey("anonymous", ANONYMOUS)]
    assert team.known_leads(keys) == {}
    for name in (EMAIL, EMAIL.upper(), EXTERNAL, f"anon:{ANONYMOUS}", f"id:{lead_id}"):
        with pytest.raises(UnknownLeadError):
            team.show(name)
    # the other lead is as it was
    again = team.show("bo@example.com")
    assert again.score.heat == pytest.approx(bo.score.heat, rel=1e-12)
    assert again.score.temperature == bo.score.temperature
    assert again.lead == bo.lead
    assert [row.lead_id for row in team.leads()] == [bo.lead["id"]]
    assert {d.lead_id for d in team.deliveries()} == {bo.lead["id"]}


def test_the_erasure_is_audited_without_personal_data(team: Leadheat) -> None:
    lead_id = _person(team)
    erased = team.erase(EMAIL, actor="dpo")
    (record,) = team.audit_log(action="lead.erase")
    assert record.actor == "dpo"
    assert record.subject == f"lead:{lead_id}"
    assert record.detail["removed"] == dict(erased.removed)
    assert sorted(record.detail["lead_ids"]) == sorted(erased.lead_ids)
    text = json.dumps([record.subject, record.actor, record.detail])
    for personal in PERSONAL:
        assert personal not in text


def test_a_person_known_again_after_erasure_is_someone_new(team: Leadheat) -> None:
    lead_id = _person(team)
    team.erase(EMAIL)
    team.track(EMAIL, "page_view")
    view = team.show(EMAIL)
    assert view.lead["id"] != lead_id
    assert view.lead["name"] is None
    assert view.score.heat == pytest.approx(1.0)


def test_erasing_or_exporting_an_unknown_lead_is_a_clear_error(lh: Leadheat) -> None:
    lh.track("bo@example.com", "page_view")
    with pytest.raises(UnknownLeadError, match="nobody@example"):
        lh.erase("nobody@example.com")
    with pytest.raises(UnknownLeadError, match="id 999"):
        lh.export("id:999")
    assert lh.audit_log() == []
    assert len(lh.leads()) == 1


# -- the audit log ------------------------------------------------------------------------------
def test_changes_are_audited_with_who_did_them(team: Leadheat, clock: Clock) -> None:
    _other(team)
    source = team.playbook_source()
    version = team.apply_playbook(source, actor="ops")
    team.outcome("bo@example.com", "lost", reason="no budget", actor="ops")
    clock.now = NOW + timedelta(minutes=1)
    stored, _ = team.record_outcomes(
        [OutcomeInput(parse_lead_key("bo@example.com"), "won", NOW)], actor="import"
    )
    assert stored == 1
    team.add_rep("sam@x.com", team="default", actor="ops")
    team.set_rep_active("sam@x.com", False, actor="ops")
    team.set_rep_active("sam@x.com", True, actor="ops")
    bo = team.show("bo@example.com").lead
    team.patch_lead("bo@example.com", {"owner": "sam@x.com"}, actor="ops")
    team.patch_lead("bo@example.com", {"owner": "sam@x.com", "title": "CEO"}, actor="ops")
    secret, key = team.create_key("crm sync", ["read"], actor="ops")
    assert team.revoke_key("crm sync", actor="ops") == 1
    (delivery, *_) = team.deliveries()
    team.delivery_failed(delivery.id, "HTTP 500", None)
    team.retry_delivery(delivery.id, actor="ops")

    log = team.audit_log(limit=100)
    seen = [(r.actor, r.action, r.subject, dict(r.detail)) for r in reversed(log)]
    lead = f"lead:{bo['id']}"
    assert seen == [
        ("python", "rep.add", "rita@x.com", {"team": "default", "capacity": None, "weight": 1.0}),
        (  # the hot lead of the fixture was given to a rep by speed to lead
            "speed-to-lead",
            "lead.owner",
            "lead:1",
            {"from": None, "to": "rita@x.com", "why": "round robin over all reps"},
        ),
        ("ops", "playbook.apply", f"playbook:{version}", {"version": version}),
        ("ops", "outcome.record", lead, {"outcome": "lost"}),
        ("import", "outcome.record", lead, {"outcome": "won"}),
        ("ops", "rep.add", "sam@x.com", {"team": "default", "capacity": None, "weight": 1.0}),
        ("ops", "rep.pause", "sam@x.com", {}),
        ("ops", "rep.resume", "sam@x.com", {}),
        ("ops", "lead.owner", lead, {"from": bo["owner"], "to": "sam@x.com"}),
        ("ops", "key.create", f"key:{key.prefix}", {"name": "crm sync", "scopes": ["read"]}),
        ("ops", "key.revoke", f"key:{key.prefix}", {"name": "crm sync"}),
        ("ops", "delivery.retry", f"delivery:{delivery.id}", {}),
    ]
    assert log[0].at == clock.now
    assert secret.split("_", 2)[2] not in json.dumps([dict(r.detail) for r in log])
    assert [r.action for r in team.audit_log(limit=2)] == ["delivery.retry", "key.revoke"]
    assert [r.subject for r in team.audit_log(action="rep.pause")] == ["sam@x.com"]


def test_an_audit_record_is_rolled_back_with_its_change(lh: Leadheat) -> None:
    with pytest.raises(UnknownLeadError):
        lh.outcome("nobody@example.com", "won")
    with pytest.raises(ValueError, match="must be one of"):
        lh.audit_log(action="lead.delete")
    assert lh.audit_log() == []


# -- the command line ---------------------------------------------------------------------------
def test_cli_export_erase_and_audit(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with Leadheat(db_url) as lh:
        lh.init(PLAYBOOK)
        lh.add_rep("rita@x.com")
        lh.upsert_leads([LeadInput([parse_lead_key(EMAIL)], {"name": NAME, "title": "CTO"})])
        lh.track(EMAIL, "demo_request", properties={"plan": "pro"})
        lh.upsert_leads([LeadInput([parse_lead_key("bo@example.com")], {})])
    cli = Cli(db_url, capsys)

    code, out, err = cli("export", EMAIL)
    assert code == 0, err
    exported = json.loads(out)
    assert _lead_tables() <= set(exported["tables"])
    assert exported["tables"]["leads"][0]["name"] == NAME
    target = tmp_path / "ana.json"
    code, out, err = cli("export", EMAIL, "--out", str(target))
    assert code == 0 and out == "" and str(target) in err
    assert json.loads(target.read_text("utf-8"))["tables"]["events"][0]["properties"] == {
        "plan": "pro"
    }
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600

    code, _, err = cli("erase", EMAIL)  # stdin is not a terminal: no silent erasure
    assert code == 1 and "--yes" in err
    assert cli("show", EMAIL)[0] == 0
    code, out, err = cli("erase", EMAIL, "--yes")
    assert code == 0, err
    assert out.startswith("erased lead ") and "identities 1" in out and EMAIL not in out
    code, _, err = cli("show", EMAIL)
    assert code == 1 and "no lead known as" in err
    code, _, err = cli("erase", EMAIL, "--yes")
    assert code == 1 and err.startswith("error: no lead known as")
    assert cli("show", "bo@example.com")[0] == 0

    code, out, err = cli("audit", "--json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["action"] for r in records[:2]] == ["lead.erase", "lead.export"]
    assert {r["actor"] for r in records[:3]} == {"cli"}
    assert EMAIL not in out and NAME not in out
    assert set(records[0]) == {"id", "at", "actor", "action", "subject", "detail"}
    code, out, _ = cli("audit", "--limit", "1", "--action", "lead.erase")
    assert code == 0 and "lead.erase" in out and "lead.export" not in out
    code, _, err = cli("audit", "--action", "nope")
    assert code == 1 and "must be one of" in err


# -- the HTTP API -------------------------------------------------------------------------------
def _call(server: LiveServer, key: str, method: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, server.url + path, headers=headers, timeout=10)


def test_api_export_erase_and_audit_need_an_admin_key(live_server: LiveServer) -> None:
    lh = live_server.lh
    lh.upsert_leads([LeadInput([parse_lead_key(EMAIL)], {"name": NAME})])
    lh.track(EMAIL, "form_submit")
    lh.track("bo@example.com", "form_submit")
    lead = f"/api/v1/leads/{EMAIL}"
    for key in (live_server.read_key, live_server.ingest_key):
        for method, path in (("GET", f"{lead}/export"), ("DELETE", lead), ("GET", "/api/v1/audit")):
            answer = _call(live_server, key, method, path)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "admin" in answer.json()["error"]
    assert _call(live_server, live_server.read_key, "GET", lead).status_code == 200

    admin = live_server.admin_key
    prefix = admin.split("_")[1]
    exported = _call(live_server, admin, "GET", f"{lead}/export")
    assert exported.status_code == 200, exported.text
    assert _lead_tables() <= set(exported.json()["tables"])
    assert exported.json()["tables"]["leads"][0]["email"] == EMAIL

    erased = _call(live_server, admin, "DELETE", lead)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["ok"] is True and body["removed"]["identities"] == 1
    assert body["removed"]["events"] == 1 and body["lead"] == exported.json()["lead"]

    for method, path in (("GET", lead), ("DELETE", lead), ("GET", f"{lead}/export")):
        gone = _call(live_server, admin, method, path)
        assert gone.status_code == 404, (method, path, gone.text)
        assert gone.json()["field"] == "lead" and gone.json()["error"]
    assert _call(live_server, admin, "GET", "/api/v1/leads/bo@example.com").status_code == 200

    audit = _call(live_server, admin, "GET", "/api/v1/audit?limit=2")
    assert audit.status_code == 200, audit.text
    records = audit.json()
    assert [(r["action"], r["actor"]) for r in records] == [
        ("lead.erase", f"api:{prefix}"),
        ("lead.export", f"api:{prefix}"),
    ]
    assert EMAIL not in audit.text and NAME not in audit.text
    assert admin.split("_", 2)[2] not in audit.text
    only = _call(live_server, admin, "GET", "/api/v1/audit?action=lead.erase")
    assert [r["action"] for r in only.json()] == ["lead.erase"]
    bad = _call(live_server, admin, "GET", "/api/v1/audit?action=lead.delete")
    assert bad.status_code == 422 and bad.json()["field"] == "action"


def test_owners_set_by_an_import_or_the_api_are_audited(
    lh: Leadheat, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(lh.url, capsys)
    crm = tmp_path / "crm.csv"
    crm.write_text("email,owner\nana@example.com,rita@x.com\nbo@example.com,\n")
    assert cli("import", "leads", str(crm))[0] == 0
    assert cli("import", "leads", str(crm))[0] == 0  # the same file again changes nothing
    crm.write_text("email,owner\nana@example.com,otto@x.com\n")
    assert cli("import", "leads", str(crm))[0] == 0
    owners = [e for e in cli.json("audit", "--action", "lead.owner") if e["actor"] == "cli"]
    assert [(e["detail"]["from"], e["detail"]["to"]) for e in reversed(owners)] == [
        (None, "rita@x.com"),
        ("rita@x.com", "otto@x.com"),
    ]
    server = LiveServer(lh)
    try:
        response = httpx.post(
            f"{server.url}/api/v1/leads",
            json={"email": "bo@example.com", "owner": "rita@x.com"},
            headers={"Authorization": f"Bearer {server.ingest_key}"},
        )
        assert response.status_code == 200, response.text
    finally:
        server.stop()
    (latest, *_) = cli.json("audit", "--action", "lead.owner")
    assert latest["actor"].startswith("api:") and latest["detail"]["to"] == "rita@x.com"
