"""Hot leads nobody owns (no reps yet, or none with room): on top of everyone's Hot now, and
taken with one click by whoever is first. Library calls and the dashboard over real HTTP, on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest

from conftest import DEMO_MAKES_HOT, Clock, LiveServer
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput, LeadTakenError
from leadheat.store.audit import AuditEntry
from leadheat.web.auth import add_user
from leadheat.web.queue import hot_queue, unowned_queue

PASSWORD = "correct horse battery"
REP = "rita@example.com"
MANAGER = "max@example.com"
PLAYBOOK = DEMO_MAKES_HOT + "[speed.triggers.hot]\nbusiness_hours = false\n"
"""Hot at once, and the ``hot`` trigger's clock runs around the clock (the tests' day is a
Sunday)."""
HOT_SLA = timedelta(minutes=5)
"""The ``hot`` trigger's SLA by default."""


def _hot_lead(lh: Leadheat, email: str, owner: str | None = None, demos: int = 1) -> int:
    """A CTO who asks for a demo: hot at once under ``DEMO_MAKES_HOT``."""
    fields = {"name": email.partition("@")[0].title(), "title": "CTO", "owner": owner}
    lh.upsert_leads([LeadInput([parse_lead_key(email)], fields)], react=False)
    for _ in range(demos):
        lh.track(email, "demo_request")
    return lh.lead_id(email)


@pytest.fixture
def fresh(lh: Leadheat) -> Leadheat:
    """A new install: the playbook, no reps at all."""
    lh.apply_playbook(PLAYBOOK)
    return lh


# -- the library --------------------------------------------------------------------------
def test_a_hot_lead_with_no_rep_waits_unowned_with_a_clock(fresh: Leadheat) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    assert fresh.show(ana).lead["owner"] is None
    assert [item.lead_id for item in unowned_queue(fresh)] == [ana]
    assert hot_queue(fresh, REP) == []  # on no one's own list: hence the unowned list
    (clock,) = fresh.sla_clocks(lead=ana)
    assert clock.owner is None and clock.stopped_at is None


@pytest.mark.parametrize("half_lives", [1, 2])
def test_the_unowned_list_is_the_obvious_filter_of_the_hot_list(
    fresh: Leadheat, clock: Clock, half_lives: int
) -> None:
    """From the heat index (read from the top, with one half-life; by range, with several),
    the same leads in the same order as keeping the unowned ones of every hot lead."""
    if half_lives == 2:
        faster = "[signals.page_view]\npoints = 1\n"
        fresh.apply_playbook(PLAYBOOK.replace(faster, faster + 'half_life = "2d"\n'))
    assert len(fresh.playbook()[1].half_lives) == half_lives
    for hours in range(30):  # the older the demo request, the cooler the lead
        email = f"lead{hours:02d}@x.com"
        owner = None if hours % 3 == 0 or hours > 24 else "sam@example.com"
        fields = {"title": "CTO", "owner": owner}
        fresh.upsert_leads([LeadInput([parse_lead_key(email)], fields)], react=False)
        fresh.track(email, "demo_request", clock.now - timedelta(hours=hours))
        fresh.track(email, "page_view", clock.now - timedelta(hours=hours))
    fresh.outcome("lead03@x.com", "won")
    everyone = hot_queue(fresh, None, 1000)
    assert len(everyone) == 29
    expected = [item.lead_id for item in everyone if item.owner is None]
    assert len(expected) == 13
    for limit in (1, 4, 50):
        found = [item.lead_id for item in unowned_queue(fresh, limit)]
        assert found == expected[:limit], limit


def test_take_makes_the_rep_the_owner_audited_with_their_clock(
    fresh: Leadheat, clock: Clock
) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    (waiting,) = fresh.sla_clocks(lead=ana)
    fresh.add_rep("Rita@Example.com")  # the reps table may spell it otherwise
    clock.now += timedelta(minutes=2)
    taken = fresh.take(ana, REP, actor=f"web:{REP}")
    assert taken.rep.email == "Rita@Example.com" and not taken.joined
    assert fresh.show(ana).lead["owner"] == "Rita@Example.com"
    (mine,) = fresh.sla_clocks(lead=ana, open_only=True)
    # the clock that ran since the lead turned hot is now hers; the lead waited since then
    assert (mine.id, mine.owner, mine.deadline) == (
        waiting.id,
        "Rita@Example.com",
        waiting.deadline,
    )
    assert (taken.clock_id, taken.deadline) == (mine.id, mine.deadline)
    (record,) = fresh.audit_log(action="lead.owner")
    assert record.actor == f"web:{REP}" and record.subject == f"lead:{ana}"
    assert record.detail == {"from": None, "to": "Rita@Example.com", "why": "taken"}
    ((rep, open_hot),) = fresh.reps()
    assert rep.assigned == 1 and open_hot == 1  # round robin counts it as hers
    assert unowned_queue(fresh) == []
    assert [item.lead_id for item in hot_queue(fresh, REP)] == [ana]


def test_a_second_take_fails_and_changes_nothing(fresh: Leadheat) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    fresh.add_rep(REP)
    fresh.add_rep("sam@example.com")
    fresh.take(ana, REP)
    with pytest.raises(LeadTakenError, match=f"{REP} owns lead {ana} already") as refused:
        fresh.take(ana, "sam@example.com")
    assert refused.value.owner == REP
    assert fresh.show(ana).lead["owner"] == REP
    assert len(fresh.audit_log(action="lead.owner")) == 1
    assert [c.owner for c in fresh.sla_clocks(lead=ana)] == [REP]
    assert {rep.email: rep.assigned for rep, _ in fresh.reps()} == {
        REP: 1,
        "sam@example.com": 0,
    }
    bo = _hot_lead(fresh, "bo@x.com", owner="sam@example.com")
    with pytest.raises(LeadTakenError):  # an owner set otherwise (import, API) holds too
        fresh.take(bo, REP)


def test_of_takes_at_once_exactly_one_wins(fresh: Leadheat) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    takers = [f"rep{n}@example.com" for n in range(4)]
    for email in takers:
        fresh.add_rep(email)
    start = threading.Barrier(len(takers))
    won: list[str] = []
    lost: list[str] = []

    def take(email: str) -> None:
        start.wait()
        try:
            fresh.take(ana, email)
            won.append(email)
        except LeadTakenError as error:
            lost.append(error.owner)

    threads = [threading.Thread(target=take, args=(email,)) for email in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and lost == [won[0]] * (len(takers) - 1)
    assert fresh.show(ana).lead["owner"] == won[0]
    assert [r.detail["to"] for r in fresh.audit_log(action="lead.owner")] == won
    assert [c.owner for c in fresh.sla_clocks(lead=ana)] == won


def test_someone_not_a_rep_yet_joins_paused(fresh: Leadheat) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    taken = fresh.take(ana, MANAGER, actor=f"web:{MANAGER}")
    assert taken.joined and fresh.show(ana).lead["owner"] == MANAGER
    ((rep, _),) = fresh.reps()
    assert rep.email == MANAGER and not rep.active and rep.team == "default"
    assert fresh.audit_log(action="rep.add")[0].detail["active"] is False
    bo = _hot_lead(fresh, "bo@x.com")  # round robin gives a paused rep nothing new
    assert fresh.show(bo).lead["owner"] is None
    with pytest.raises(ValueError, match="'nobody' is not an email address"):
        fresh.take(bo, "nobody")
    assert len(fresh.reps()) == 1  # the failed take added no one


def test_taking_a_lead_whose_clock_ran_out_starts_a_fresh_one(
    fresh: Leadheat, clock: Clock
) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    clock.now += HOT_SLA + timedelta(minutes=1)
    assert fresh.escalate() == 1  # nobody owned it in time: the manager was told
    fresh.add_rep(REP)
    taken = fresh.take(ana, REP)
    late, mine = sorted(fresh.sla_clocks(lead=ana), key=lambda c: c.id)
    assert late.owner is None and late.breached_at is not None  # what happened stays
    assert (mine.owner, mine.trigger, mine.started_at) == (REP, "hot", clock.now)
    assert mine.deadline == clock.now + HOT_SLA == taken.deadline
    fresh.touch("ana@x.com", "call", rep=REP)
    assert all(c.stopped_at is not None for c in fresh.sla_clocks(lead=ana))


def test_a_lead_neither_hot_nor_waiting_is_taken_without_a_clock(fresh: Leadheat) -> None:
    fresh.upsert_leads([LeadInput([parse_lead_key("cy@x.com")], {"title": "Intern"})])
    taken = fresh.take("cy@x.com", REP)
    assert taken.clock_id is None and fresh.sla_clocks(lead="cy@x.com") == []
    assert fresh.show("cy@x.com").lead["owner"] == REP


# -- the dashboard over real HTTP -----------------------------------------------------------
@pytest.fixture
def server(fresh: Leadheat) -> Iterator[LiveServer]:
    """A live server over a new install (no reps) with a rep's and a manager's accounts."""
    add_user(fresh, REP, "rep", PASSWORD)
    add_user(fresh, MANAGER, "manager", PASSWORD)
    running = LiveServer(fresh)
    yield running
    running.stop()


SignIn = Callable[[str], tuple[httpx.Client, httpx.Response]]


@pytest.fixture
def sign_in(server: LiveServer) -> Iterator[SignIn]:
    """Signs a person in through the form; returns their client and the page they land on."""
    made: list[httpx.Client] = []

    def signed_in(email: str) -> tuple[httpx.Client, httpx.Response]:
        client = httpx.Client(base_url=server.url, follow_redirects=True)
        made.append(client)
        token = csrf_in(client.get("/login").text)
        landed = client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert landed.status_code == 200 and landed.history[0].status_code == 303
        return client, landed

    yield signed_in
    for client in made:
        client.close()


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def current_tab(html: str) -> str:
    found = re.search(r'<a href="/\?scope=(\w+)" aria-current="page">', html)
    assert found, "no current tab"
    return found.group(1)


def rows(html: str) -> list[tuple[int, bool]]:
    """Hot now's rows in order: each lead's id and whether it is marked unowned."""
    found = re.findall(r'<tr data-lead="(\d+)"( class="unowned")?>(.*?)</tr>', html, re.S)
    marked = [(int(lead), bool(cls)) for lead, cls, _ in found]
    assert all(("Nobody owns this lead" in body) == bool(cls) for _, cls, body in found)
    return marked


def owner_records(lh: Leadheat, lead_id: int) -> list[AuditEntry]:
    return [r for r in lh.audit_log(action="lead.owner") if r.subject == f"lead:{lead_id}"]


def test_managers_land_on_the_team_and_reps_on_their_own(sign_in: SignIn) -> None:
    manager, landed = sign_in(MANAGER)
    assert str(landed.url).endswith("/") and current_tab(landed.text) == "team"
    assert 'hx-get="/hot/rows?scope=team"' in landed.text
    assert current_tab(manager.get("/?scope=mine").text) == "mine"  # the tab still works
    _, landed = sign_in(REP)
    assert current_tab(landed.text) == "mine"
    assert 'hx-get="/hot/rows?scope=mine"' in landed.text


def test_an_unowned_hot_lead_is_on_top_for_everyone_until_one_takes_it(
    server: LiveServer, fresh: Leadheat, sign_in: SignIn
) -> None:
    bo = _hot_lead(fresh, "bo@x.com", owner="sam@example.com", demos=3)  # hotter, owned
    ana = _hot_lead(fresh, "ana@x.com")
    rep, landed = sign_in(REP)
    assert rows(landed.text) == [(ana, True)]  # her own view: nothing of hers, the unowned
    assert "Take it" in landed.text and "No other hot leads of yours" in landed.text
    assert rows(rep.get("/?scope=team").text) == [(ana, True), (bo, False)]
    manager, landed = sign_in(MANAGER)
    assert rows(landed.text) == [(ana, True), (bo, False)]  # on top, though less hot
    assert rows(manager.get("/hot/rows?scope=mine").text) == [(ana, True)]
    stale = csrf_in(landed.text)  # the manager's page before Rita takes the lead

    page = rep.get("/")
    taken = rep.post(
        f"/leads/{ana}/take", data={"csrf_token": csrf_in(page.text), "back": "/?scope=mine"}
    )
    assert taken.status_code == 200 and taken.history[0].status_code == 303
    assert "The lead is yours now" in taken.text
    assert rows(taken.text) == [(ana, False)]  # under her Mine, unmarked
    assert fresh.show(ana).lead["owner"] == REP
    (record,) = owner_records(fresh, ana)
    assert (record.actor, record.detail["to"]) == (f"web:{REP}", REP)
    auth = {"Authorization": f"Bearer {server.read_key}"}
    (clock,) = httpx.get(f"{server.url}/api/v1/sla?lead=id:{ana}", headers=auth).json()
    assert (clock["owner"], clock["state"]) == (REP, "running")

    late = manager.post(f"/leads/{ana}/take", data={"csrf_token": stale})
    assert late.status_code == 409
    assert f"{REP} owns lead {ana} already: nothing was changed" in late.text
    assert fresh.show(ana).lead["owner"] == REP and len(owner_records(fresh, ana)) == 1
    assert rows(manager.get("/").text) == [(bo, False), (ana, False)]
    cy = _hot_lead(fresh, "cy@x.com")
    mine = manager.post(f"/leads/{cy}/take", data={"csrf_token": stale, "back": "/?scope=mine"})
    assert "You are a rep now, paused" in mine.text  # a manager takes as a paused rep
    assert rows(mine.text) == [(cy, False)]


def test_take_needs_the_csrf_token(server: LiveServer, fresh: Leadheat, sign_in: SignIn) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    rep, _ = sign_in(REP)
    for data in ({}, {"csrf_token": "forged"}):
        assert rep.post(f"/leads/{ana}/take", data=data).status_code == 403
    assert fresh.show(ana).lead["owner"] is None
    unknown = rep.post("/leads/999/take", data={"csrf_token": csrf_in(rep.get("/").text)})
    assert unknown.status_code == 400 and "no lead with id 999" in unknown.text


def test_a_manager_assigns_on_the_lead_page_and_the_clock_follows(
    server: LiveServer, fresh: Leadheat, sign_in: SignIn
) -> None:
    ana = _hot_lead(fresh, "ana@x.com")
    (waiting,) = fresh.sla_clocks(lead=ana)
    fresh.add_rep(REP)
    fresh.add_rep("sam@example.com")
    rep, _ = sign_in(REP)
    page = rep.get(f"/leads/{ana}")
    assert 'action="/leads/' + str(ana) + '/assign"' not in page.text  # reps take, not assign
    refused = rep.post(f"/leads/{ana}/assign", data={"csrf_token": csrf_in(page.text), "rep": REP})
    assert refused.status_code == 403 and fresh.show(ana).lead["owner"] is None

    manager, _ = sign_in(MANAGER)
    page = manager.get(f"/leads/{ana}")
    assert f'action="/leads/{ana}/assign"' in page.text
    assert re.findall(r'<select id="a-rep" name="rep">(.*?)</select>', page.text) == [
        f"<option>{REP}</option><option>sam@example.com</option>"
    ]
    token = csrf_in(page.text)
    assert manager.post(f"/leads/{ana}/assign", data={"rep": REP}).status_code == 403  # no CSRF
    done = manager.post(f"/leads/{ana}/assign", data={"csrf_token": token, "rep": REP})
    assert done.status_code == 200 and done.history[0].status_code == 303
    assert "Saved: assignment." in done.text
    assert f"<option selected>{REP}</option>" in done.text
    moved = manager.post(
        f"/leads/{ana}/assign", data={"csrf_token": token, "rep": "sam@example.com"}
    )
    assert moved.status_code == 200 and fresh.show(ana).lead["owner"] == "sam@example.com"
    assert [(r.actor, r.detail["from"], r.detail["to"]) for r in owner_records(fresh, ana)] == [
        (f"web:{MANAGER}", REP, "sam@example.com"),  # newest first
        (f"web:{MANAGER}", None, REP),
    ]
    (clock,) = fresh.sla_clocks(lead=ana, open_only=True)
    assert (clock.id, clock.owner, clock.deadline) == (
        waiting.id,
        "sam@example.com",
        waiting.deadline,
    )
    unknown = manager.post(
        f"/leads/{ana}/assign", data={"csrf_token": token, "rep": "nobody@example.com"}
    )
    assert unknown.status_code == 400
    assert "nobody@example.com" in unknown.text and "leadheat reps add" in unknown.text
    assert fresh.show(ana).lead["owner"] == "sam@example.com"
