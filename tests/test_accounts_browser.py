"""The Accounts pages in a real browser (Debian's Chromium through Playwright) against a
live server: hot accounts appear live, hottest first; an account's page shows its members,
heat chart, coverage and timeline; a lead's page links its account."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conftest import LiveServer
from leadheat.identity import parse_lead_key
from leadheat.service import LeadInput
from leadheat.web.auth import add_user
from test_web_browser import CHROMIUM, PASSWORD, REP, shot

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")


def test_hot_accounts_live_and_an_account_page(live_server: LiveServer) -> None:
    lh = live_server.lh
    add_user(lh, REP, "rep", PASSWORD)
    titles = {"ana": "VP Engineering", "bo": "Engineering Manager", "cy": "Data Analyst"}
    for who, title in titles.items():
        email = f"{who}@umbrella.com"
        lh.upsert_leads([LeadInput([parse_lead_key(email)], {"title": title})], react=False)
        lh.track(email, "trial_signup", datetime.now(UTC))
    lh.evidence("ana@umbrella.com", "budget", "EUR 40k")
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(live_server.url + "/login")
            page.get_by_label("Email").fill(REP)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Accounts").click()
            expect(page.get_by_role("heading", name="Hot accounts")).to_be_visible()
            rows = page.locator("#accounts tr[data-account]")
            expect(rows).to_have_count(1)
            # a hotter account arrives while the page is open: live, and first
            for who in ("di", "ed", "fa", "gu"):
                lh.track(f"{who}@initech.com", "trial_signup", datetime.now(UTC))
            expect(rows).to_have_count(2, timeout=3000)
            expect(rows.first).to_have_attribute("data-account", "initech.com")
            shot(page, "accounts")
            page.get_by_role("link", name="umbrella.com").click()
            expect(page.get_by_role("heading", name="umbrella.com")).to_be_visible()
            members = page.locator("tr[data-lead]")
            expect(members).to_have_count(3)
            expect(page.locator("svg[role=img]")).to_have_count(1)
            expect(page.get_by_text("3 of 3 members engaged")).to_be_visible()
            expect(page.locator(".checks li.ok", has_text="economic buyer")).to_contain_text(
                "ana@umbrella.com"
            )
            expect(page.locator(".checks li", has_text="budget")).to_contain_text("EUR 40k")
            expect(page.locator(".timeline li")).to_have_count(4)  # 3 sign-ups and the budget
            shot(page, "account")
            page.get_by_role("link", name="ana@umbrella.com").first.click()
            expect(page.get_by_role("link", name="umbrella.com")).to_be_visible()
        finally:
            browser.close()
