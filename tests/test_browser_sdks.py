"""Acceptance: the real browser analytics SDKs, from their npm packages, in Debian's Chromium
on a page served from another origin than leadheat, configured by README's snippets as
written ("Track your website").

Segment's analytics-next (default and batching modes) and RudderStack's analytics-js v3
(default and beacon modes): a visitor views two pages anonymously, then fills a form (an
``identify`` with their email, a ``form_submit``). Every anonymous view joins the identified
lead, checked down to its exact heat. The packages are pinned in ``tests/browser_sdks/
package.json``; ``.ci/run`` installs them with ``npm ci`` (so does the first test here, when
npm is on the machine). Each page's script is bundled with the pinned esbuild.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveServer
from leadheat.identity import LeadKey
from leadheat.service import LeadInput, UnknownLeadError

ROOT = Path(__file__).resolve().parents[1]
SDK_DIR = Path(__file__).resolve().parent / "browser_sdks"
CHROMIUM = Path(os.environ.get("LEADHEAT_CHROMIUM", "/usr/bin/chromium"))
HALF_LIFE = timedelta(days=7)
POINTS = {"page_view": 1, "pricing": 5, "form_submit": 10}
"""The default playbook's points: a page view, the pricing page's view, a form."""
VISITOR = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
"""A person's browser: headless Chromium says ``HeadlessChrome``, which leadheat flags as a
bot (its events carry no heat)."""
FLUSH_SECONDS = 30.0
"""The longest a test waits for an SDK to deliver (beacon and batching flush on timers)."""

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt-get)"
)


@dataclass(frozen=True)
class Mode:
    """One SDK in one delivery mode: README's snippet, and the commented-out option the
    README tells readers to uncomment for this mode (if any)."""

    snippet: str
    uncomment: str | None = None
    on_leave: bool = False
    """Whether the SDK sends only when the page is left (RudderStack's beacon queue flushes
    on ``pagehide``, or every 10 minutes)."""

    @property
    def id(self) -> str:
        return f"{self.snippet}-{self.uncomment or 'default'}"


MODES = [
    Mode("segment"),
    Mode("segment", "deliveryStrategy"),
    Mode("rudderstack"),
    Mode("rudderstack", "useBeacon", on_leave=True),
]


def readme_snippet(name: str) -> str:
    """The JavaScript block that follows ``<!-- snippet: NAME -->`` in README.md."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- snippet: {name} -->\n```js\n(.*?)```", readme, re.DOTALL)
    assert found, f"README.md has no snippet {name!r}"
    return found.group(1)


def configured(mode: Mode, key: str, server_url: str) -> str:
    """README's snippet with this server and key in place of the examples, as a reader
    would fill it in, and the mode's option uncommented."""
    code = readme_snippet(mode.snippet)
    host = server_url.removeprefix("http://")
    replacements = [
        ("'lh_3f9a0c1d_…'", f"'{key}'"),
        ("'leadheat.acme.com/v1'", f"'{host}/v1'"),
        ("protocol: 'https'", "protocol: 'http'"),
        ("'https://leadheat.acme.com'", f"'{server_url}'"),
    ]
    if mode.uncomment:
        replacements.append((f"// {mode.uncomment}", mode.uncomment))
    for example, actual in replacements:
        code = code.replace(example, actual)
    assert "acme.com" not in code and "…" not in code, code
    return code


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The pinned SDKs; installed with ``npm ci`` when missing (CI always has them)."""
    modules = SDK_DIR / "node_modules"
    if not (modules / ".bin" / "esbuild").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("tests/browser_sdks/node_modules is missing and npm is not installed")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=SDK_DIR, check=True, capture_output=True
        )
    return modules


def bundle(code: str, modules: Path, folder: Path) -> None:
    """``site.js``: the snippet and the SDK it imports, one script for the browser."""
    entry = folder / "entry.js"
    entry.write_text(code)
    subprocess.run(
        [
            str(modules / ".bin" / "esbuild"),
            str(entry),
            "--bundle",
            "--format=iife",
            "--global-name=site",
            f"--outfile={folder / 'site.js'}",
            "--log-level=error",
        ],
        check=True,
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
    )


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><script src="site.js"></script></head>
<body><h1>{title}</h1>{body}</body></html>
"""
FORM = """
<form id="demo">
  <input name="email" type="email"> <input name="name"> <input name="title">
  <input name="owner" type="hidden">
  <button type="submit">Book a demo</button>
</form>
<p id="sent" hidden>Thanks!</p>
<script>
document.getElementById('demo').addEventListener('submit', (event) => {
  event.preventDefault()
  const traits = Object.fromEntries([...new FormData(event.target)].filter(([, v]) => v))
  site.analytics.identify({ ...traits, company: 'Initech' })  // as README says: no userId
  site.analytics.track('form_submit', { form: 'demo' })
  document.getElementById('sent').hidden = false
})
</script>
"""


@pytest.fixture
def website(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static site on its own loopback port (another origin than leadheat's)."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "index.html").write_text(PAGE.format(title="Acme", body=""))
    (folder / "pricing.html").write_text(PAGE.format(title="Pricing", body=FORM))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def wait_for(what: str, ready: Callable[[], bool], page: Any, log: list[str]) -> None:
    """Poll the database until the SDK's delivery shows (bounded); on failure, say what the
    browser saw (its console, the requests to leadheat and their answers). The page waits
    in Playwright's loop, so that the browser's events reach ``log`` meanwhile."""
    deadline = time.monotonic() + FLUSH_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            seen = "\n".join(log[-40:])
            raise AssertionError(f"not delivered within {FLUSH_SECONDS:.0f} s: {what}\n{seen}")
        page.wait_for_timeout(100)


def watched(browser: Any, server: LiveServer) -> tuple[Any, list[str]]:
    """A new page, and the list its console messages and leadheat's answers go to."""
    page = browser.new_page(user_agent=VISITOR)
    log: list[str] = []
    page.on("console", lambda m: log.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.append(f"page error: {e}"))
    page.on(
        "response",
        lambda r: (
            log.append(f"{r.request.method} {r.url} -> {r.status}")
            if r.url.startswith(server.url)
            else None
        ),
    )
    page.on("requestfailed", lambda r: log.append(f"failed {r.method} {r.url}: {r.failure}"))
    return page, log


def events_of(server: LiveServer, lead: str) -> list[dict[str, Any]]:
    try:
        return [i for i in server.lh.timeline(lead) if i["kind"] == "event"]
    except UnknownLeadError:
        return []


def page_views(server: LiveServer) -> int:
    return sum(
        1
        for lead in server.lh.leads()
        for item in events_of(server, f"id:{lead.lead_id}")
        if item["type"] == "page_view"
    )


def visit(
    server: LiveServer,
    site: str,
    browser: Any,
    mode: Mode,
    visitor: tuple[str, str, str],
    owner: str = "",
) -> None:
    """Two anonymous page views, then the pricing page's demo form, then the visitor leaves
    (as people do); waits until leadheat has stored all of it. ``owner`` is what a visitor
    who edits the page puts in the form's hidden field."""
    email, name, title = visitor
    page, log = watched(browser, server)
    page.goto(f"{site}/index.html")
    if not mode.on_leave:
        wait_for("the first page view", lambda: page_views(server) >= 1, page, log)
    page.goto(f"{site}/pricing.html")
    if not mode.on_leave:
        wait_for("the second page view", lambda: page_views(server) >= 2, page, log)
    page.fill("input[name=email]", email)
    page.fill("input[name=name]", name)
    page.fill("input[name=title]", title)
    page.eval_on_selector("input[name=owner]", "(input, owner) => { input.value = owner }", owner)
    page.click("button[type=submit]")
    page.wait_for_selector("#sent", state="visible")

    def stored() -> bool:
        kinds = sorted(e["type"] for e in events_of(server, email))
        return kinds == ["form_submit", "page_view", "page_view"]

    if not mode.on_leave:
        # a mode that sends as it goes may still be sending when the page goes away (the
        # browser aborts its requests, as it would for a real visitor); wait, then leave
        wait_for("the views and the form", stored, page, log)
    page.goto("about:blank")
    wait_for("the views and the form", stored, page, log)
    page.close()


def exact_heat(events: list[dict[str, Any]], at: datetime) -> float:
    """The default playbook's heat of these events at ``at``: points halved per 7 days."""
    total = 0.0
    for item in events:
        points = POINTS[item["type"]]
        if item["type"] == "page_view" and "/pricing" in str(item["properties"].get("url", "")):
            points = POINTS["pricing"]
        total += points * 2 ** (-((at - item["at"]) / HALF_LIFE))
    return total


def site_key(server: LiveServer, site: str) -> str:
    key, _ = server.lh.create_key("website", ["ingest"], public=True, origins=[site])
    return key


@pytest.fixture(params=MODES, ids=[m.id for m in MODES])
def mode(request: pytest.FixtureRequest) -> Mode:
    chosen: Mode = request.param
    return chosen


def test_a_visitor_browses_then_fills_a_form(
    mode: Mode,
    live_server: LiveServer,
    website: tuple[str, Path],
    browser: Any,
    node_modules: Path,
) -> None:
    site, folder = website
    bundle(configured(mode, site_key(live_server, site), live_server.url), node_modules, folder)
    email = "ana.lopez@initech.example"
    visit(live_server, site, browser, mode, (email, "Ana Lopez", "VP Sales"))

    lh = live_server.lh
    assert len(lh.leads()) == 1  # the anonymous visitor became the lead
    events = events_of(live_server, email)
    assert sorted(e["type"] for e in events) == ["form_submit", "page_view", "page_view"]
    paths = sorted(str(e["properties"].get("path")) for e in events if e["type"] == "page_view")
    assert paths == ["/index.html", "/pricing.html"]
    at = max(e["at"] for e in events) + timedelta(days=7)
    view = lh.show(email, at)
    assert view.score.heat == pytest.approx(exact_heat(events, at), rel=1e-12)
    assert view.score.heat == pytest.approx((1 + 5 + 10) / 2, rel=1e-4)  # a half-life later
    assert view.lead["attributes"]["name"] == "Ana Lopez"


def test_a_visitor_joins_the_lead_the_crm_imported(
    live_server: LiveServer, website: tuple[str, Path], browser: Any, node_modules: Path
) -> None:
    site, folder = website
    email = "noor.haddad@globex.example"
    lh = live_server.lh
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("email", email)],
                {"name": "Noor Haddad", "title": "CTO", "owner": "rita@acme.example"},
            )
        ],
        actor="crm-import",
    )
    mode = MODES[0]
    bundle(configured(mode, site_key(live_server, site), live_server.url), node_modules, folder)
    visit(live_server, site, browser, mode, (email, "Noor", "student"), "mallory@evil.example")

    assert len(lh.leads()) == 1  # the anonymous views joined the CRM's lead
    events = events_of(live_server, email)
    assert sorted(e["type"] for e in events) == ["form_submit", "page_view", "page_view"]
    # what the "trust" part of issue 16 guarantees: the page's key cannot overwrite these
    attributes = lh.show(email).lead["attributes"]
    assert (attributes["title"], attributes.get("owner")) == ("CTO", "rita@acme.example")


def test_a_page_on_a_foreign_origin_stores_nothing(
    live_server: LiveServer, website: tuple[str, Path], browser: Any, node_modules: Path
) -> None:
    """The site's key copied onto another site: the SDK sends, leadheat refuses."""
    site, folder = website
    key, _ = live_server.lh.create_key(
        "website", ["ingest"], public=True, origins=["https://www.acme.com"]
    )
    bundle(configured(MODES[0], key, live_server.url), node_modules, folder)
    page, log = watched(browser, server := live_server)
    answered: list[str] = []  # the browser hides a refused answer from the page (no CORS)
    for outcome in ("requestfinished", "requestfailed"):
        page.on(
            outcome,
            lambda r: (
                answered.append(r.url)
                if r.method == "POST" and r.url.startswith(server.url)
                else None
            ),
        )
    page.goto(f"{site}/index.html")
    wait_for("the refused page view", lambda: bool(answered), page, log)
    assert answered[0] == f"{server.url}/v1/p"
    assert live_server.lh.leads() == []
    page.close()

    # the same page with the site's own key is heard: the origin was the only difference
    bundle(configured(MODES[0], site_key(live_server, site), live_server.url), node_modules, folder)
    page, log = watched(browser, live_server)
    page.goto(f"{site}/index.html")
    wait_for("the accepted page view", lambda: page_views(live_server) == 1, page, log)
    page.close()
