"""The dashboard in a real browser (Debian's Chromium through Playwright) against a live
server: a lead sent through the Segment endpoint shows up in Hot now within 2 s, a rep opens
it, logs a touch (the SLA clock stops) and marks it won. A screenshot of each page is saved
under ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from conftest import DEMO_MAKES_HOT, Clock, LiveServer
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent
from leadheat.web.auth import add_user
from test_followup import selling_day

CHROMIUM = Path(os.environ.get("LEADHEAT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "correct horse battery"
REP = "rita@example.com"

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt-get)"
)


@pytest.fixture
def browser() -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def team(live_server: LiveServer) -> LiveServer:
    """A server whose playbook makes a CTO asking for a demo hot at once, with one rep (who
    gets every new hot lead) and a manager, and a few hot leads already in the queue."""
    lh = live_server.lh
    lh.apply_playbook(DEMO_MAKES_HOT)
    lh.add_rep(REP, name="Rita")
    add_user(lh, REP, "rep", PASSWORD)
    add_user(lh, "max@example.com", "manager", PASSWORD)
    for name, company in (("Noor Haddad", "Globex"), ("Jon Park", "Initech")):
        email = f"{name.split()[0].lower()}@{company.lower()}.example.com"
        segment(live_server, email, name, company, "VP Sales")
    return live_server


def segment(server: LiveServer, email: str, name: str, company: str, title: str) -> None:
    """What an analytics SDK sends when a visitor asks for a demo."""
    reply = httpx.post(
        f"{server.url}/v1/track",
        auth=(server.ingest_key, ""),
        json={
            "userId": email,
            "event": "demo_request",
            "context": {
                "traits": {"email": email, "name": name, "company": company, "title": title}
            },
        },
    )
    assert reply.status_code == 200, reply.text


def shot(page: playwright_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_rep_works_a_lead_from_arrival_to_won(
    team: LiveServer, browser: playwright_api.Browser
) -> None:
    expect = playwright_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(team.url + "/")
    expect(page).to_have_url(f"{team.url}/login?next=%2F")
    shot(page, "sign-in")
    page.get_by_label("Email").fill(REP)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hot now")).to_be_visible()

    sent = time.monotonic()
    segment(team, "lea@acme.example.com", "Lea Lead", "Acme", "CTO")
    row = page.locator("tr", has=page.get_by_role("link", name="Lea Lead"))
    expect(row).to_be_visible(timeout=2000)
    assert time.monotonic() - sent < 2.0
    expect(row.locator(".clock.running")).to_contain_text("left")
    expect(row.locator(".why")).to_have_text(re.compile(r"^demo request \d+s ago$"))
    shot(page, "hot-now")

    page.get_by_role("link", name="Lea Lead").click()
    expect(page.get_by_role("heading", name="Lea Lead", exact=True)).to_be_visible()
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.locator("#h-sla + ul .clock")).to_have_text("running")
    expect(page.locator("p.why")).to_contain_text("demo request")  # what it did, then the rule
    shot(page, "lead")

    page.get_by_label("Touch kind").select_option("call")
    page.get_by_label("Result", exact=True).fill("connected")
    page.get_by_label("Note", exact=True).fill("Wants a pilot in January")
    page.get_by_role("button", name="Log touch").click()
    expect(page.get_by_role("status")).to_have_text("Saved: touch.")
    expect(page.locator("#h-sla + ul .clock")).to_have_text("met")
    lead = team.lh.lead_id("lea@acme.example.com")
    clock = team.lh.sla_clocks(lead=lead)[0]
    assert clock.stopped_at is not None and clock.touched_by == REP
    expect(page.get_by_text("Wants a pilot in January")).to_be_visible()

    page.get_by_label("Outcome", exact=True).select_option("won")
    page.get_by_role("button", name="Record outcome").click()
    expect(page.locator(".status")).to_have_text("won")
    assert team.lh.show(lead).score.status == "won"

    page.goto(team.url + "/")  # won leads leave the queue
    expect(page.get_by_role("link", name="Noor Haddad")).to_be_visible()
    expect(page.get_by_role("link", name="Lea Lead")).to_have_count(0)

    page.get_by_role("link", name="Lists").click()
    page.get_by_label("Search").fill("acme")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Lea Lead")).to_be_visible()
    expect(page.get_by_role("link", name="Noor Haddad")).to_have_count(0)
    page.goto(team.url + "/lists")
    shot(page, "lists")

    page.get_by_role("link", name="Playbook").click()
    expect(page.get_by_text("Only managers may apply a playbook")).to_be_visible()
    shot(page, "playbook")

    for link, heading, name in (
        ("Tasks", "Tasks", "tasks"),
        ("Recovery", "Recovery", "recovery"),
        ("Win-back", "Win-back", "winback"),
        ("Analytics", "Analytics", "analytics"),
    ):
        page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shot(page, name)
    # the whole-history pages show a snapshot computed in the background: polled until ready
    expect(page.locator("figure img").first).to_be_visible(timeout=30_000)  # SVG charts
    page.goto(team.url + "/tasks?scope=team")
    noor = page.get_by_role("link", name="Noor Haddad")  # a hot lead's follow-up
    expect(noor).to_be_visible(timeout=30_000)

    manager = browser.new_page(viewport={"width": 1280, "height": 800})
    manager.goto(team.url + "/login?next=/playbook")
    manager.get_by_label("Email").fill("max@example.com")
    manager.get_by_label("Password").fill(PASSWORD)
    manager.get_by_role("button", name="Sign in").click()
    source = manager.get_by_label("Edited playbook (TOML)")
    source.fill(source.input_value().replace("points = 25", "points = 15"))
    manager.get_by_role("button", name="Backtest").click()
    expect(manager.get_by_role("heading", name="Backtest: edited against current")).to_be_visible()
    shot(manager, "playbook-backtest")

    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(team.url + "/?scope=team")
    expect(phone.get_by_role("link", name="Noor Haddad")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the phone layout scrolls sideways ({width}px)"
    shot(phone, "hot-now-phone")


def test_the_one_click_touch_stops_the_clock_and_keys_work(
    team: LiveServer, browser: playwright_api.Browser
) -> None:
    page = browser.new_page()
    page.goto(team.url + "/login")
    page.keyboard.press("Tab")  # the skip link comes first, then the form, in order
    page.keyboard.press("Tab")
    page.keyboard.type(REP)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect = playwright_api.expect
    row = page.locator("tr", has=page.get_by_role("link", name="Noor Haddad"))
    expect(row.locator(".clock.running")).to_be_visible()
    row.get_by_role("button", name="Log a call to Noor Haddad").click()
    expect(row.locator(".clock")).to_have_text(re.compile(r"^touched \d+s ago$"), timeout=3000)
    lead = team.lh.lead_id("noor@globex.example.com")
    assert team.lh.sla_clocks(lead=lead)[0].touched_by == REP
    page.goto(team.url + "/lists?q=globex")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename == "leads.csv"
    body = Path(download.value.path()).read_text("utf-8")
    assert body.splitlines()[0].startswith("id,email,name,company")
    assert "noor@globex.example.com" in body and "acme" not in body


def test_a_hot_lead_nobody_owns_is_taken_with_one_click(
    live_server: LiveServer, browser: playwright_api.Browser
) -> None:
    """A new install with no reps: the first hot lead heads the manager's landing page (the
    team view) and the rep's Mine, marked; the rep takes it and it is hers, unmarked."""
    lh = live_server.lh
    lh.apply_playbook(DEMO_MAKES_HOT)
    add_user(lh, REP, "rep", PASSWORD)
    add_user(lh, "max@example.com", "manager", PASSWORD)
    expect = playwright_api.expect
    pages = {}
    for email in ("max@example.com", REP):
        page = browser.new_context().new_page()
        page.goto(live_server.url + "/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Hot now")).to_be_visible()
        pages[email] = page
    manager, rep = pages["max@example.com"], pages[REP]
    tabs = manager.get_by_role("navigation", name="Whose leads")
    expect(tabs.get_by_role("link", name="Team")).to_have_attribute("aria-current", "page")
    expect(rep.get_by_role("link", name="Mine")).to_have_attribute("aria-current", "page")

    segment(live_server, "lea@acme.example.com", "Lea Lead", "Acme", "CTO")
    for page in (manager, rep):  # the rows refresh every second
        row = page.locator("tr", has=page.get_by_role("link", name="Lea Lead"))
        expect(row).to_contain_text("Nobody owns this lead", timeout=3000)
        expect(row.get_by_role("button", name="Take it")).to_be_visible()
    shot(manager, "hot-now-unowned")

    rep.locator("tr", has=rep.get_by_role("link", name="Lea Lead")).get_by_role(
        "button", name="Take it"
    ).click()
    expect(rep.get_by_role("status")).to_contain_text("The lead is yours now")
    row = rep.locator("tr", has=rep.get_by_role("link", name="Lea Lead"))
    expect(row).to_be_visible()
    expect(row).not_to_contain_text("Nobody owns this lead")
    lead = lh.lead_id("lea@acme.example.com")
    assert lh.show(lead).lead["owner"] == REP
    assert [clock.owner for clock in lh.sla_clocks(lead=lead, open_only=True)] == [REP]
    owned = manager.locator("tr", has=manager.get_by_role("link", name="Lea Lead"))
    expect(owned).to_contain_text(REP, timeout=3000)  # the team view names her now
    expect(owned.get_by_role("button", name="Take it")).to_have_count(0)


def sign_in_page(browser: playwright_api.Browser, server: LiveServer) -> playwright_api.Page:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(REP)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    playwright_api.expect(page.get_by_role("heading", name="Hot now")).to_be_visible()
    return page


def test_hot_now_says_what_state_each_lead_is_in_and_what_it_did(
    team: LiveServer, browser: playwright_api.Browser
) -> None:
    """Each SLA cell names the lead's real state (a clock running, touched and when, never
    touched with no clock, or its outcome), and "why" says what the lead did, not the
    threshold it passed."""
    lh = team.lh
    now = lh.clock()
    email = "ivy@umbrella.example.com"  # imported: hot, owned, but no trigger ever fired
    fields = {"name": "Ivy Imported", "title": "CTO", "owner": REP, "budget": "40k"}
    lh.upsert_leads([LeadInput([parse_lead_key(email)], fields)], react=False)
    lh.record_events(
        [NewEvent(parse_lead_key(email), "demo_request", now - timedelta(hours=2), "d1")]
        + [
            NewEvent(parse_lead_key(email), "page_view", now - timedelta(minutes=m), f"p{m}")
            for m in (5, 20, 40)
        ],
        react=False,
    )
    assert lh.sla_clocks(lead=lh.lead_id(email)) == []
    segment(team, "tom@hooli.example.com", "Tom Touched", "Hooli", "CTO")
    lh.touch("tom@hooli.example.com", "call", rep=REP)
    segment(team, "lars@wonka.example.com", "Lars Lost", "Wonka", "CTO")
    lh.outcome("lars@wonka.example.com", "lost", reason="went with a competitor")

    expect = playwright_api.expect
    page = sign_in_page(browser, team)
    row = page.locator("tr", has=page.get_by_role("link", name="Ivy Imported"))
    expect(row.locator(".clock")).to_have_text("never touched")
    expect(row).to_contain_text("no SLA clock")
    why = row.locator(".why")
    expect(why).to_have_text(
        re.compile(
            r"^demo request 2h 0m ago, page view ×3 \(last 5m \d+s ago\); evidence: budget 40k$"
        )
    )
    expect(why).to_have_attribute("title", re.compile(r"heat .* >= "))
    tom = page.locator("tr", has=page.get_by_role("link", name="Tom Touched"))
    expect(tom.locator(".clock.stopped")).to_have_text(re.compile(r"^touched \d+s ago$"))
    noor = page.locator("tr", has=page.get_by_role("link", name="Noor Haddad"))
    expect(noor.locator(".clock.running")).to_have_text(re.compile(r"^\d+[dhm] \d+[hms] left$"))
    lars = page.locator("tr", has=page.get_by_role("link", name="Lars Lost"))
    expect(lars.locator(".closed")).to_have_text("lost")
    expect(lars.locator(".clock")).to_have_count(0)
    expect(lars.locator("td").nth(4)).to_have_text("")  # no "cools in…" for a closed lead
    shot(page, "hot-now-states")

    page.get_by_role("link", name="Lars Lost").click()
    expect(page.locator(".heading .closed")).to_have_text("lost")
    expect(page.locator(".heading .temp")).to_have_count(0)
    expect(page.locator("p.why")).to_contain_text("Closed: lost")
    expect(page.locator("p.why")).to_contain_text("went with a competitor")
    expect(page.get_by_text("Stays hot until")).to_have_count(0)
    shot(page, "lead-closed")

    page.goto(team.url + "/lists?q=wonka")
    expect(page.locator("#count")).to_have_text("1 lead")
    lars = page.locator("tr", has=page.get_by_role("link", name="Lars Lost"))
    expect(lars.locator(".closed")).to_have_text("lost")
    expect(lars.locator(".temp")).to_have_count(0)
    page.goto(team.url + "/lists")
    expect(page.locator("#count")).to_have_text("5 leads")
    page.goto(team.url + "/lists?temperature=hot")  # judged: exact on the last page
    expect(page.locator("#count")).to_have_text("5 leads")
    shot(page, "lists-count")


def test_the_tasks_page_lists_what_sells_first_with_overdue_in_calendar_time(
    lh: Leadheat, clock: Clock, browser: playwright_api.Browser
) -> None:
    """Hot leads nobody called head Tasks, then overdue tasks hottest first; overdue time
    reads as a person counts it, with the working time beneath; no task for a student."""
    selling_day(lh, clock)
    add_user(lh, "max@example.com", "manager", PASSWORD)
    server = LiveServer(lh)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url + "/login?next=/tasks%3Fscope%3Dteam")
        page.get_by_label("Email").fill("max@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect = playwright_api.expect
        rows = page.locator("table tbody tr")
        expect(rows.first).to_contain_text("olga@example.com", timeout=30_000)
        names = [name.partition("@")[0] for name in rows.locator("th").all_inner_texts()]
        assert names == ["olga", "nina", "hank", "wendy", "carl"]
        expect(rows.nth(0)).to_contain_text("never contacted")
        wendy = rows.nth(3)  # due Tuesday 11:00, now Wednesday 15:00
        expect(wendy.locator(".clock.breached")).to_have_text("1d 4h overdue")
        expect(wendy.locator(".sub")).to_have_text("12h 0m of working time")
        shot(page, "tasks-order")
    finally:
        server.stop()


def test_the_api_docs_render_from_the_server_alone(
    live_server: LiveServer, browser: playwright_api.Browser
) -> None:
    """Swagger UI and ReDoc draw the API with every request going to the server itself (any
    other is refused, as a network with no way out would), the pages' CSP refusing nothing
    but ReDoc's own logo."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    own = live_server.url
    elsewhere: list[str] = []
    refused: list[str] = []

    def only_here(route: playwright_api.Route) -> None:
        url = route.request.url
        if url.startswith((own + "/", "data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    page.route("**/*", only_here)
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    expect = playwright_api.expect
    page.goto(own + "/docs")
    expect(page.get_by_role("heading", name=re.compile("^leadheat"))).to_be_visible()
    expect(page.get_by_text("/api/v1/tasks", exact=True).first).to_be_visible()
    shot(page, "api-docs")
    page.goto(own + "/redoc")
    expect(page.get_by_role("heading", name=re.compile("^leadheat"))).to_be_visible()
    expect(page.get_by_text("Follow-up tasks in the order that sells").first).to_be_attached()
    # ReDoc's sidebar always asks for Redocly's logo from their CDN: the page's CSP refuses
    # it before any request leaves, and ReDoc then drops the image
    expect(page.locator('img[alt="redocly logo"]')).to_have_count(0)
    shot(page, "api-redoc")
    assert elsewhere == []
    assert [m for m in refused if "cdn.redoc.ly/redoc/logo-mini.svg" not in m] == []
