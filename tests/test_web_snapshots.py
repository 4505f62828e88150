"""The dashboard's whole-history views as snapshots: the same numbers as the live lists at
the snapshot's instant (real database, fixed clock), patched at once by a touch, shown with
their age, computed in the background and refreshed on request."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from conftest import DEMO_MAKES_HOT, Clock, LiveServer
from leadheat.analytics.report import build_report, report_charts
from leadheat.engage.lists import recover, tasks, winback
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.store.models import ViewSnapshot
from leadheat.web.auth import add_user
from leadheat.web.snapshots import (
    MAX_PERIODS,
    latest,
    lost_rows,
    patch_tasks,
    refresh,
    task_rows,
    winback_view,
)

PASSWORD = "correct horse battery"
PEOPLE = [
    # email, title, owner, days on the list, days since each demo request, days since each view
    ("ana@acme.example.com", "CTO", "rita@example.com", 20, [0.1, 0.2], [1, 2]),
    ("bo@acme.example.com", "VP Sales", "sam@example.com", 20, [0.3], []),
    ("cy@globex.example.com", "CTO", "rita@example.com", 40, [12, 12.5], []),
    ("di@globex.example.com", "Engineer", "rita@example.com", 10, [1], [1]),
    ("ed@initech.example.com", "Analyst", None, 300, [], [200, 210]),
    ("fa@initech.example.com", "CTO", "sam@example.com", 250, [220], [225]),
]


@pytest.fixture
def team(lh: Leadheat, clock: Clock) -> Leadheat:
    """Hot leads, one let go after it was hot, old engaged cold leads, and one won."""
    lh.apply_playbook(DEMO_MAKES_HOT)
    lh.upsert_leads(
        [
            LeadInput(
                keys=[parse_lead_key(email)],
                fields={"name": email.split("@")[0].title(), "title": title, "owner": owner},
                created_at=clock.now - timedelta(days=days),
            )
            for email, title, owner, days, _, _ in PEOPLE
        ],
        react=False,
    )
    for email, *_, demos, views in PEOPLE:
        for ago in demos:
            lh.track(email, "demo_request", clock.now - timedelta(days=ago))
        for ago in views:
            lh.track(email, "page_view", clock.now - timedelta(days=ago))
    lh.outcome("fa@initech.example.com", "won")
    return lh


def test_snapshots_equal_the_live_lists_at_their_instant(team: Leadheat, clock: Clock) -> None:
    for view in ("tasks", "recovery", "winback", "analytics::"):
        refresh(team, view)
    clock.now += timedelta(hours=5)  # the snapshots stay as of their instant
    at = clock.now - timedelta(hours=5)

    snapshot = latest(team, "tasks")
    assert snapshot is not None and snapshot.computed_at == at
    for owner in (None, "rita@example.com", "RITA@example.com", "nobody@example.com"):
        for overdue in (False, True):
            live = tasks(team, at=at, owner=owner, overdue=overdue, limit=200)
            assert task_rows(snapshot, owner, overdue) == live
    assert len(task_rows(snapshot, None, False)) == 5  # every open lead has a follow-up

    snapshot = latest(team, "recovery")
    assert snapshot is not None
    for owner in (None, "rita@example.com", "sam@example.com"):
        assert lost_rows(snapshot, owner) == recover(team, at=at, owner=owner, limit=200)
    assert [lost.lead for lost in lost_rows(snapshot, None)] == ["cy@globex.example.com"]

    snapshot = latest(team, "winback")
    assert snapshot is not None
    shown, live_list = winback_view(snapshot), winback(team, at=at)
    assert shown.leads == live_list.leads
    assert [lead.lead for lead in shown.leads] == ["ed@initech.example.com"]
    assert (shown.older_than, shown.horizon) == (live_list.older_than, live_list.horizon)
    expected = live_list.expectation
    assert shown.expectation == {
        "members": expected.members, "rate": expected.rate, "expected": expected.expected,
        "low": expected.low, "high": expected.high, "sample": expected.sample,
    }  # fmt: skip

    snapshot = latest(team, "analytics::")
    assert snapshot is not None
    assert snapshot.body["summary"] == build_report(team, until=at).as_json()
    assert len(snapshot.body["charts"]) > 3


def test_a_touch_patches_the_leads_task_at_once(team: Leadheat, clock: Clock) -> None:
    refresh(team, "tasks")
    clock.now += timedelta(hours=2)
    ana = team.lead_id("ana@acme.example.com")
    before = latest(team, "tasks")
    assert before is not None
    team.touch(ana, "call", rep="rita@example.com")
    patch_tasks(team, [ana])

    after = latest(team, "tasks")
    assert after is not None and after.computed_at == before.computed_at
    patched = {task.lead_id: task for task in task_rows(after, None, False)}
    assert patched[ana] == tasks(team, lead_ids=[ana])[0]  # planned from the touch, now
    assert patched[ana].last_touch == clock.now
    others = [task for task in task_rows(before, None, False) if task.lead_id != ana]
    assert [task for task in task_rows(after, None, False) if task.lead_id != ana] == others

    team.outcome(ana, "lost")  # a closed lead has no follow-up
    patch_tasks(team, [ana])
    after = latest(team, "tasks")
    assert after is not None
    assert ana not in {task.lead_id for task in task_rows(after, "rita@example.com", False)}


def test_erasing_a_person_drops_the_snapshots_that_may_name_them(team: Leadheat) -> None:
    refresh(team, "tasks")
    team.erase("ana@acme.example.com")
    assert latest(team, "tasks") is None  # recomputed when a page next asks


@pytest.fixture
def server(team: Leadheat) -> Iterator[LiveServer]:
    add_user(team, "rita@example.com", "rep", PASSWORD)
    running = LiveServer(team)
    yield running
    running.stop()


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def rita(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        token = csrf_in(client.get("/login").text)
        form = {"email": "rita@example.com", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=form).status_code == 303
        yield client


def wait_for(client: httpx.Client, path: str, text: str, seconds: float = 60) -> str:
    """The page once it shows ``text`` and has stopped polling (the background computation
    runs in another process, which stores the snapshot a moment before the server learns that
    it is done: for that moment the page rightly shows both the snapshot and the polling)."""
    deadline = time.monotonic() + seconds
    while True:
        html = client.get(path).text
        if text in html and "every 2s" not in html:
            return html
        assert time.monotonic() < deadline, f"{path} never showed {text!r} without polling"
        time.sleep(0.2)


def test_pages_show_the_snapshot_its_age_and_refresh_on_request(
    server: LiveServer, rita: httpx.Client, clock: Clock
) -> None:
    first = rita.get("/winback").text
    assert "Being computed" in first and 'hx-trigger="every 2s"' in first
    html = wait_for(rita, "/winback", "As of 2026-11-01 12:00:00 UTC")
    assert "Ed" in html and "Refresh now" in html and "every 2s" not in html

    clock.now += timedelta(minutes=3)
    html = rita.get("/winback").text
    assert "As of 2026-11-01 12:00:00 UTC (3m 0s ago)" in html  # staleness is shown
    form = {"view": "winback", "back": "/winback", "csrf_token": csrf_in(html)}
    answer = rita.post("/refresh", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == "/winback"
    wait_for(rita, "/winback", "As of 2026-11-01 12:03:00 UTC")

    form["view"] = "nonsense"
    assert rita.post("/refresh", data=form).status_code == 400
    del form["csrf_token"]
    assert rita.post("/refresh", data={**form, "view": "winback"}).status_code == 403

    for path in ("/analytics", "/analytics?since=2026-10-01"):
        assert "Being computed" in rita.get(path).text
        assert "<figure>" in wait_for(rita, path, "As of 2026-11-01 12:03:00 UTC")
    assert "must be before" in rita.get("/analytics?since=2026-10-02&until=2026-10-01").text


def test_tasks_and_recovery_are_live(server: LiveServer, rita: httpx.Client, clock: Clock) -> None:
    """Tasks and Recovery read the kept follow-up state: no snapshot, no waiting, a new lead
    at once, and the same rows as the library's lists."""
    html = rita.get("/tasks?scope=team").text
    assert "Being computed" not in html and "every 2s" not in html
    assert "Live: as of 2026-11-01 12:00:00 UTC" in html and "Ana" in html
    assert "Cy" in rita.get("/recovery").text
    clock.now += timedelta(minutes=3)
    server.lh.upsert_leads(
        [LeadInput(keys=[parse_lead_key("gus@hooli.example.com")], fields={"name": "Gus"})],
        react=False,
    )
    html = rita.get("/tasks?scope=team").text
    assert "Gus" in html and "Live: as of 2026-11-01 12:03:00 UTC" in html
    shown = re.findall(r'href="/leads/(\d+)">', html.split("<tbody>")[1])
    assert [int(n) for n in shown] == [t.lead_id for t in tasks(server.lh, limit=200)]
    mine = rita.get("/tasks?scope=mine&overdue=true").text
    shown = re.findall(r'href="/leads/(\d+)">', mine.split("<tbody>")[1])
    wanted = tasks(server.lh, owner="rita@example.com", overdue=True, limit=200)
    assert [int(n) for n in shown] == [t.lead_id for t in wanted]


def test_a_touch_from_the_dashboard_completes_the_task_at_once(
    server: LiveServer, rita: httpx.Client, clock: Clock
) -> None:
    html = rita.get("/tasks").text
    row = re.search(r'href="/leads/(\d+)">Ana</a>.*?</tr>', html, re.S)
    assert row is not None and "ago</td>" not in row.group(0)  # never touched
    clock.now += timedelta(minutes=10)
    token = csrf_in(html)
    answer = rita.post(f"/leads/{row.group(1)}/touch", data={"kind": "call", "csrf_token": token})
    assert answer.status_code == 303
    html = rita.get("/tasks").text
    row = re.search(r'href="/leads/\d+">Ana</a>.*?</tr>', html, re.S)
    assert row is not None and "last touch 2026-11-01 12:10 UTC" in row.group(0)  # planned anew


def test_a_view_that_could_not_be_computed_offers_to_try_again() -> None:
    """A failed computation is not retried on its own (it would fail again every minute), so
    the page must offer "Refresh now" even when no snapshot was ever stored."""
    from leadheat.web.render import templates

    snippet = templates.env.get_template("_snapshot.html")
    failed = snippet.render(
        failure="database is locked",
        snapshot=None,
        pending=False,
        view="tasks",
        back="/tasks",
        csrf="token",
    )
    assert "could not be computed: database is locked" in failed
    assert "Refresh now" in failed and 'name="view" value="tasks"' in failed
    assert "every 2s" not in failed and "Being computed" not in failed
    waiting = snippet.render(failure=None, snapshot=None, pending=True, view="tasks", back="/t")
    assert "Being computed" in waiting and "every 2s" in waiting and "Refresh now" not in waiting


TEX = "$\\leadheat{$"
"""An owner or source matplotlib would read as TeX math (and fail on)."""


def test_an_owner_and_source_that_read_as_tex_are_drawn_as_typed(team: Leadheat) -> None:
    team.patch_lead("ed@initech.example.com", {"owner": TEX, "source": TEX})
    snapshot = refresh(team, "analytics::")
    charts = dict(snapshot.body["charts"])
    assert len(charts) == len(report_charts(build_report(team)))
    drawn = [base64.b64decode(uri.partition(",")[2]).decode() for uri in charts.values()]
    assert sum(f"<!-- {TEX} -->" in svg for svg in drawn) >= 3  # by source, rep, overdue


@pytest.mark.slow
def test_periods_asked_for_beyond_the_cap_are_forgotten(
    server: LiveServer, rita: httpx.Client, clock: Clock
) -> None:
    """Anyone signed in may ask for any number of Analytics periods; past ``MAX_PERIODS``
    the one computed longest ago is dropped from the queue and from the database (36
    snapshots of half a megabyte in 45 s stayed for good)."""
    periods = [f"2026-10-{day:02d}" for day in range(1, MAX_PERIODS + 3)]
    for since in periods:
        assert rita.get(f"/analytics?since={since}").status_code == 200
    wait_for(rita, f"/analytics?since={periods[-1]}", "As of 2026-11-01 12:00:00 UTC", 120)
    kept = [since for since in periods if latest(server.lh, f"analytics:{since}:") is not None]
    assert periods[-1] in kept and len(kept) <= MAX_PERIODS, kept
    # a later period pushes out the oldest snapshot, whoever asked for it
    clock.now += timedelta(minutes=1)
    wait_for(rita, "/analytics?since=2026-09-02", "As of 2026-11-01 12:01:00 UTC", 120)
    with server.lh.engine.connect() as connection:
        names = connection.execute(
            select(ViewSnapshot.name).where(ViewSnapshot.name.startswith("analytics:"))
        ).scalars()
        stored = sorted(names)
    assert len(stored) <= MAX_PERIODS and "analytics:2026-09-02:" in stored, stored
