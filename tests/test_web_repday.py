"""The rest of issue 23 in a real browser (Debian's Chromium through Playwright), against one
server for the whole module: a manager assigns leads ticked in Lists, reads the event types
the playbook does not score and checks a playbook with mistakes; a rep's one-click "Log call"
says what it recorded; the lead page names rules by label or in words. Screenshots go to
``test-artifacts/`` (git-ignored); the best are in the README (``docs/images/``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from conftest import DEMO_MAKES_HOT, Clock, LiveServer
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.web.auth import add_user
from test_web_browser import CHROMIUM, PASSWORD, shot

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt-get)"
)
REP = "rita@example.com"
MANAGER = "max@example.com"
PLAYBOOK = (
    DEMO_MAKES_HOT.replace("points = 10\n[signals", 'points = 10\nlabel = "Senior title"\n[signals')
    + "[[fit.rules]]\nfield = 'company_size'\nrange = [10, 5000]\npoints = 5\n"
    + "label = 'Mid-size company'\n"
    + "[[fit.rules]]\nfield = 'orders'\nrange = [1, 1000000]\npoints = 2\n"
    + "[speed.triggers.hot]\nbusiness_hours = false\n"
)
"""Hot at once for a CTO who asks for a demo; two rules with labels, one without."""
PEOPLE = [
    ("Noor Haddad", "Globex", "VP Sales", "250"),
    ("Jon Park", "Initech", "CTO", "40"),
    ("Lea Lind", "Hooli", "CTO", "900"),
]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A team on its first day: hot leads an import left with nobody on them (the reps were
    added after), events of types the playbook does not score, a rep and a manager."""
    path = tmp_path_factory.mktemp("repday")
    lh = Leadheat(f"sqlite:///{path / 'leadheat.db'}", clock=Clock())
    lh.init()
    lh.apply_playbook(PLAYBOOK)
    now = lh.clock()
    for name, company, title, size in PEOPLE:
        email = f"{name.split()[0].lower()}@{company.lower()}.example.com"
        fields = {"name": name, "company": company, "title": title, "company_size": size}
        lh.upsert_leads([LeadInput([parse_lead_key(email)], fields)], react=False)
        lh.track(email, "demo_request", now - timedelta(minutes=20))
        for minutes, kind in enumerate(("demo_requets", "demo_requets", "Pricing Page Visit")):
            lh.track(email, kind, now - timedelta(minutes=minutes + 1))
    for email, role in ((REP, "rep"), ("sam@example.com", "rep"), (MANAGER, "manager")):
        if role == "rep":
            lh.add_rep(email, name=email.partition("@")[0].title())
        add_user(lh, email, role, PASSWORD)
    server = LiveServer(lh)
    yield server
    server.stop()
    lh.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def signed_in(
    browser: playwright_api.Browser, server: LiveServer, email: str, path: str = "/"
) -> playwright_api.Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{server.url}/login?next={path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_a_manager_assigns_the_leads_ticked_in_lists(
    day: LiveServer, browser: playwright_api.Browser
) -> None:
    expect = playwright_api.expect
    page = signed_in(browser, day, MANAGER, "/lists")
    expect(page.get_by_role("heading", name="Lists")).to_be_visible()
    for name in ("Noor Haddad", "Jon Park"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_label("Assign the selected leads to").select_option(REP)
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(
        f"Assigned 2 leads to {REP}; 2 SLA clocks running for them."
    )
    for name, owner in (("Noor Haddad", REP), ("Jon Park", REP), ("Lea Lind", "")):
        row = page.locator("tr", has=page.get_by_role("link", name=name))
        expect(row.locator("td").nth(5)).to_have_text(owner)  # after the tick box
    shot(page, "lists-bulk-assign")
    lh = day.lh
    noor = lh.lead_id("noor@globex.example.com")
    assert lh.show(noor).lead["owner"] == REP
    assert [c.owner for c in lh.sla_clocks(lead=noor, open_only=True)] == [REP]
    (record,) = [r for r in lh.audit_log(action="lead.owner") if r.subject == f"lead:{noor}"]
    assert (record.actor, record.detail["why"]) == (f"web:{MANAGER}", "assigned")

    rep = signed_in(browser, day, "sam@example.com", "/lists")
    expect(rep.get_by_role("heading", name="Lists")).to_be_visible()
    expect(rep.get_by_role("button", name="Assign", exact=True)).to_have_count(0)
    expect(rep.get_by_role("checkbox")).to_have_count(0)


def test_the_playbook_page_shows_types_not_scored_and_mistakes_in_line_order(
    day: LiveServer, browser: playwright_api.Browser
) -> None:
    expect = playwright_api.expect
    page = signed_in(browser, day, MANAGER, "/playbook")
    table = page.get_by_role("table", name="Event types the playbook does not score")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_text(re.compile(r"^demo_requets\s*6\s*demo_request$"))
    expect(rows.nth(1)).to_have_text(re.compile(r"^pricing_page_visit\s*3\s*$"))
    table.scroll_into_view_if_needed()
    shot(page, "playbook-unscored")

    source = page.get_by_label("Edited playbook (TOML)")
    source.fill("[temprature]\nhot_heat = 20\n[signals.demo_request]\npionts = 3\n")
    page.get_by_role("button", name="Check").click()
    problems = page.get_by_role("alert").locator("li")
    expect(problems).to_have_text(
        [
            "line 1, temprature: unknown key (did you mean temperature?)",
            "line 4, signals.demo_request.pionts: unknown key (did you mean points?)",
        ]
    )
    shot(page, "playbook-check-problems")


def test_log_call_confirms_and_the_lead_page_names_rules_in_words(
    day: LiveServer, browser: playwright_api.Browser
) -> None:
    expect = playwright_api.expect
    lh = day.lh
    lh.assign("lea@hooli.example.com", REP)
    page = signed_in(browser, day, REP)
    row = page.locator("tr", has=page.get_by_role("link", name="Lea Lind"))
    expect(row.locator(".clock.running")).to_be_visible()
    expect(page.get_by_role("status")).to_have_count(0)  # nothing said yet
    row.get_by_role("button", name="Log a call to Lea Lind").click()
    expect(page.get_by_role("status")).to_have_text(
        "Logged a call with Lea Lind at 2026-11-01 12:00 UTC. SLA met: the clock stopped."
    )
    expect(row.locator(".clock")).to_have_text(re.compile(r"^touched "), timeout=3000)
    shot(page, "hot-now-log-call")
    assert lh.sla_clocks(lead=lh.lead_id("lea@hooli.example.com"))[0].touched_by == REP

    page.get_by_role("link", name="Lea Lind").click()
    fit = page.locator("ul.checks")
    expect(fit).to_contain_text("✓ Senior title (+10)")
    expect(fit).to_contain_text("✓ Mid-size company (+5)")
    expect(fit).to_contain_text("✗ orders from 1 to 1,000,000 (+2) — missing")
    body = page.locator("main").inner_text()
    assert "(?i)" not in body and "e+06" not in body
    shot(page, "lead-rule-labels")
