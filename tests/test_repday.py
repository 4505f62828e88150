"""A rep's day, the parts left from issue 23, over real HTTP and the real CLI, on SQLite and
PostgreSQL: Lists' bulk "Assign", the one-click "Log call" saying what it recorded, the
Playbook page's event types not scored, rule labels and numbers in words, playbook errors in
line order with a "did you mean", ``leadheat sla`` by lead, tables not cut in a log, and hot
leads an import or a playbook change leaves with nobody on them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import Cli, LiveServer
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from test_unowned import (  # noqa: F401 (fixtures)
    MANAGER,
    PLAYBOOK,
    REP,
    SignIn,
    _hot_lead,
    csrf_in,
    fresh,
    owner_records,
    server,
    sign_in,
)

SAM = "sam@example.com"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""For a test of wording, not of the store: once is enough (CI's time is short)."""


# -- the dashboard --------------------------------------------------------------------------
def test_a_manager_assigns_leads_ticked_in_lists(
    server: LiveServer,  # noqa: F811
    fresh: Leadheat,  # noqa: F811
    sign_in: SignIn,  # noqa: F811
) -> None:
    """Ticked leads go to one rep each as the lead page's Assign gives them: audited from and
    to, the clock that has run since the lead turned hot handed over; all or nothing."""
    ana = _hot_lead(fresh, "ana@x.com")
    bo = _hot_lead(fresh, "bo@x.com", owner=SAM)
    (waiting,) = fresh.sla_clocks(lead=ana)
    for rep in (REP, SAM):
        fresh.add_rep(rep)
    rep, _ = sign_in(REP)
    page = rep.get("/lists")
    assert 'action="/lists/assign"' not in page.text and 'name="lead"' not in page.text
    refused = rep.post("/lists/assign", data={"csrf_token": csrf_in(page.text), "lead": ana})
    assert refused.status_code == 403

    manager, _ = sign_in(MANAGER)
    page = manager.get("/lists?q=x.com")
    assert 'action="/lists/assign"' in page.text
    assert sorted(map(int, re.findall(r'name="lead" value="(\d+)"', page.text))) == [ana, bo]
    token = csrf_in(page.text)
    form = {"csrf_token": token, "lead": [str(ana), str(bo)], "back": "/lists?q=x.com"}
    assert manager.post("/lists/assign", data={**form, "csrf_token": ""}).status_code == 403
    unknown = manager.post("/lists/assign", data={**form, "rep": "nobody@example.com"})
    assert unknown.status_code == 400 and "leadheat reps add" in unknown.text
    missing = manager.post("/lists/assign", data={**form, "lead": [str(ana), "99999"], "rep": REP})
    assert missing.status_code == 400 and "99999" in missing.text
    assert fresh.show(ana).lead["owner"] is None and owner_records(fresh, ana) == []  # no half
    nothing = manager.post("/lists/assign", data={**form, "lead": [], "rep": REP})
    assert "Tick the leads to assign first: nothing was changed." in nothing.text

    done = manager.post("/lists/assign", data={**form, "rep": REP})
    assert done.status_code == 200 and done.history[0].status_code == 303
    assert str(done.url).startswith(f"{server.url}/lists?q=x.com&done=")
    assert f"Assigned 2 leads to {REP}; 2 SLA clocks running for them." in done.text
    assert [fresh.show(lead).lead["owner"] for lead in (ana, bo)] == [REP, REP]
    assert (owner_records(fresh, bo)[0].actor, owner_records(fresh, bo)[0].detail) == (
        f"web:{MANAGER}",
        {"from": SAM, "to": REP, "why": "assigned"},
    )
    (clock,) = fresh.sla_clocks(lead=ana, open_only=True)
    assert (clock.id, clock.owner, clock.deadline) == (waiting.id, REP, waiting.deadline)
    again = manager.post("/lists/assign", data={**form, "lead": str(ana), "rep": REP})
    assert "Assigned 0 leads to" in again.text and "(1 already theirs)" in again.text
    assert len(owner_records(fresh, ana)) == 1


@SQLITE_ONLY
def test_one_click_log_call_says_what_it_recorded(
    server: LiveServer,  # noqa: F811
    fresh: Leadheat,  # noqa: F811
    sign_in: SignIn,  # noqa: F811
) -> None:
    fresh.add_rep(REP)
    ana = _hot_lead(fresh, "ana@x.com")
    rep, landed = sign_in(REP)
    assert '<p class="notice" id="flash" role="status" hidden>' in landed.text
    answer = rep.post(
        f"/leads/{ana}/touch",
        data={"csrf_token": csrf_in(landed.text), "kind": "call"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200 and answer.headers["hx-trigger"] == "queue-changed"
    assert answer.text == (
        '<p class="notice" id="flash" role="status">Logged a call with Ana at 2026-11-01 12:00 '
        "UTC. SLA met: the clock stopped.</p>"
    )
    assert fresh.sla_clocks(lead=ana)[0].touched_by == REP


def test_the_playbook_page_lists_event_types_it_does_not_score(
    server: LiveServer,  # noqa: F811
    fresh: Leadheat,  # noqa: F811
    sign_in: SignIn,  # noqa: F811
) -> None:
    now = fresh.clock()
    for minutes, kind in enumerate(("demo_requets", "demo_requets", "webinar", "demo_request")):
        fresh.track("ana@x.com", kind, now - timedelta(minutes=minutes))
    rep, _ = sign_in(REP)
    page = rep.get("/playbook").text
    table = re.search(r'<table id="unscored">.*?</table>', page, re.S)
    assert table is not None, page
    cells = re.findall(r"<tr><th scope=\"row\"><code>(\w+)</code></th><td class=\"num\">(\d+)"
                       r"</td><td>(?:<code>(\w+)</code>)?</td></tr>", table.group(0))  # fmt: skip
    assert cells == [("demo_requets", "2", "demo_request"), ("webinar", "1", "")]
    fresh.apply_playbook(PLAYBOOK + "[signals.demo_requets]\n[signals.webinar]\npoints = 1\n")
    assert "Every event type among the latest stored events is scored" in rep.get("/playbook").text


@SQLITE_ONLY
def test_a_playbook_applied_on_the_dashboard_or_the_api_leaves_no_hot_lead_unowned(
    server: LiveServer,  # noqa: F811
    fresh: Leadheat,  # noqa: F811
    sign_in: SignIn,  # noqa: F811
) -> None:
    """The Apply button and ``PUT /api/v1/playbook`` give the leads the change makes hot what
    the hot trigger would (the CLI's ``playbook apply`` is tested below), and say so."""
    now = fresh.clock()
    for email, kind in (("ana@x.com", "pricing_view"), ("bo@x.com", "webinar")):
        fields = {"name": email[:2].title(), "title": "CTO"}
        fresh.upsert_leads([LeadInput([parse_lead_key(email)], fields)], react=False)
        fresh.track(email, kind, now - timedelta(minutes=5))
    fresh.add_rep(REP)
    manager, _ = sign_in(MANAGER)
    token = csrf_in(manager.get("/playbook").text)
    source = PLAYBOOK + "[signals.pricing_view]\npoints = 30\n"
    done = manager.post(
        "/playbook", data={"csrf_token": token, "source": source, "action": "apply"}
    )
    assert done.status_code == 200
    assert "Hot leads nobody owned: 1 assigned." in done.text
    assert fresh.show("ana@x.com").lead["owner"] == REP
    assert fresh.show("bo@x.com").lead["owner"] is None  # webinars score nothing yet
    put = httpx.put(
        f"{server.url}/api/v1/playbook",
        headers={"Authorization": f"Bearer {server.admin_key}"},
        json={"source": source + "[signals.webinar]\npoints = 30\n"},
    )
    assert put.status_code == 200, put.text
    assert fresh.show("bo@x.com").lead["owner"] == REP
    assert [c.owner for c in fresh.sla_clocks(lead="bo@x.com", open_only=True)] == [REP]


@SQLITE_ONLY
def test_rules_are_named_by_label_or_in_words_never_by_regex(
    server: LiveServer,  # noqa: F811
    fresh: Leadheat,  # noqa: F811
    sign_in: SignIn,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh.apply_playbook(
        PLAYBOOK.replace(
            'matches = "(?i)cto|vp"', 'matches = "(?i)\\\\bc[et]o\\\\b|vp"\nlabel = "Senior title"'
        )
        + "[[fit.rules]]\nfield = 'orders'\nrange = [1, 1000000]\npoints = 2\n"
        + "[[fit.rules]]\nfield = 'email'\nmatches = '^[^@]+@(gmail|yahoo)\\.com$'\npoints = -5\n"
    )
    ana = _hot_lead(fresh, "ana@x.com")
    explained = Cli(fresh.url, capsys).json("show", "ana@x.com")
    fit = explained["explanation"]["fit"]  # type: ignore[index]
    assert [r["rule"] for r in fit["matched"]] == ["Senior title"]
    assert [r["rule"] for r in fit["missed"]] == [
        "orders from 1 to 1,000,000",
        "email matches a text pattern",
    ]
    assert "fit 10 (Senior title)" in explained["explanation"]["summary"]  # type: ignore[index]
    code, out, _ = Cli(fresh.url, capsys)("show", "ana@x.com")
    assert code == 0 and "+ 10  Senior title" in out and ". 2  orders from 1 to 1,000,000" in out
    rep, _ = sign_in(REP)
    page = rep.get(f"/leads/{ana}").text
    assert "✓ Senior title (+10)" in page and "orders from 1 to 1,000,000 (+2)" in page
    assert "email matches a text pattern (−5)" in page
    for text in (page, out, str(explained)):
        assert "(?i)" not in text and "e+0" not in text and "[et]" not in text


# -- the CLI --------------------------------------------------------------------------------
@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    runner = Cli(db_url, capsys)
    assert runner("init")[0] == 0
    book = tmp_path / "playbook.toml"
    book.write_text(PLAYBOOK)
    assert runner("playbook", "apply", str(book))[0] == 0
    return runner


@SQLITE_ONLY
def test_playbook_errors_come_in_line_order_one_per_line_with_did_you_mean(
    cli: Cli, tmp_path: Path
) -> None:
    book = tmp_path / "bad.toml"
    book.write_text(
        "[temprature]\nhot_heat = 20\n\n[signals.demo_request]\npionts = 3\n"
        "[fit]\nqualified_at = 'x'\n[[fit.rules]]\nfeild = 'title'\nmatches = 'cto'\n"
    )
    for command in ("check", "apply"):
        code, out, err = cli("playbook", command, str(book))
        assert code == 1 and out == ""
        lines = err.strip().splitlines()
        assert lines == [
            f"error: {book}: 5 problems",
            "  line 1, temprature: unknown key (did you mean temperature?)",
            "  line 5, signals.demo_request.pionts: unknown key (did you mean points?)",
            "  line 7, fit.qualified_at: Input should be a valid number, unable to parse "
            "string as a number",
            "  line 8, fit.rules.0.field: Field required",
            "  line 9, fit.rules.0.feild: unknown key (did you mean field?)",
        ], err
    typo = tmp_path / "typo.toml"
    typo.write_text(PLAYBOOK + "[signals.product_veiw]\npoints = 5\n")
    code, out, _ = cli("playbook", "check", str(typo))
    assert code == 0
    assert (
        "signals.product_veiw: no shipped event type has this name (did you mean product_view?)"
        in out
    )


def test_imports_and_playbook_changes_leave_no_hot_lead_unowned(cli: Cli, tmp_path: Path) -> None:
    """The hot trigger's treatment for leads that turned hot without a trigger: an owner by
    round robin, the clock, audited; with no rep free, the lead waits for Take it."""
    assert cli("reps", "add", REP)[0] == 0
    leads = tmp_path / "leads.csv"
    leads.write_text("email,name,title\nana@x.com,Ana,CTO\nbo@x.com,Bo,CTO\ncy@x.com,Cy,Intern\n")
    code, out, _ = cli("import", "leads", str(leads))
    assert code == 0 and "nobody owned" not in out  # nobody is hot yet
    events = tmp_path / "events.csv"
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events.write_text(
        f"lead,type,timestamp\nana@x.com,demo_request,{hour_ago}\ncy@x.com,page_view,{hour_ago}\n"
    )
    code, out, err = cli("import", "events", str(events))
    assert code == 0, err
    assert "hot leads nobody owned: 1 assigned as speed to lead assigns" in out
    assert f"  ana@x.com -> {REP}" in out
    shown = cli.json("show", "ana@x.com")
    assert shown["lead"]["owner"] == REP  # type: ignore[index]
    (clock,) = cli.json("sla", "--open")  # type: ignore[misc]
    assert (clock["lead_key"], clock["owner"], clock["trigger"]) == ("ana@x.com", REP, "hot")
    (record,) = cli.json("audit", "--action", "lead.owner")  # type: ignore[misc]
    assert record["actor"] == "speed-to-lead" and record["detail"]["to"] == REP

    # a playbook change makes Bo hot (his page views now count): Rita is paused, so he waits
    assert cli("reps", "pause", REP)[0] == 0
    views = tmp_path / "views.csv"
    views.write_text(f"lead,type,timestamp\nbo@x.com,pricing_view,{hour_ago}\n")
    assert "nobody owned" not in cli("import", "events", str(views))[1]
    book = tmp_path / "more.toml"
    book.write_text(PLAYBOOK + "[signals.pricing_view]\npoints = 30\n")
    code, out, _ = cli("playbook", "apply", str(book))
    assert code == 0
    assert "0 assigned as speed to lead assigns; 1 waits unowned at the top of Hot now" in out
    assert "  bo@x.com -> nobody yet (manager alerted)" in out
    clocks = cli.json("sla", "--open")
    assert [(c["lead_key"], c["owner"]) for c in clocks] == [  # type: ignore[union-attr,index]
        ("bo@x.com", None),
        ("ana@x.com", REP),
    ]
    assert "nobody owned" not in cli("playbook", "apply", str(book))[1]  # once, not again


@SQLITE_ONLY
def test_sla_names_leads_and_tables_are_not_cut_in_a_log(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a log has no width (pytest-xdist sets 80)
    leads = tmp_path / "leads.csv"
    leads.write_text("email,name,title\nana.long.address.for.width@example.com,Ana Long,CTO\n")
    assert cli("import", "leads", str(leads))[0] == 0
    assert cli("track", "ana.long.address.for.width@example.com", "demo_request")[0] == 0
    code, out, _ = cli("sla")
    assert code == 0
    (row,) = [line for line in out.splitlines() if "ana.long" in line]
    assert "ana.long.address.for.width@example.com" in row and "Ana Long" in row
    code, out, _ = cli("hot")
    assert code == 0
    (row,) = [line for line in out.splitlines() if "ana.long.address" in line]
    assert len(row) > 80 and row.rstrip().endswith("│")  # one line, however wide
    assert re.search(r"│ demo request \d+s ago +│$", row.rstrip())  # what it did, not the rule
    assert "ana.long.address.for.width@example.com" in row
