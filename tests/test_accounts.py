"""Accounts: membership from the data teams have, and account heat that is the exact sum of
its members' heat at any instant, through every kind of write."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import Cli, Clock, LiveServer
from leadheat.accounts import account, accounts
from leadheat.identity import parse_lead_key
from leadheat.ingest.segment import parse_batch
from leadheat.playbook import default_playbook_text
from leadheat.service import Leadheat, LeadInput

_examples = itertools.count()

TYPES = ["demo_request", "trial_signup", "page_view", "email_click", "form_submit"]

operation = st.one_of(
    st.tuples(st.just("track"), st.integers(0, 5), st.sampled_from(TYPES), st.integers(0, 40)),
    st.tuples(st.just("import"), st.integers(0, 5), st.sampled_from(["a", "b"]), st.just(0)),
    st.tuples(
        st.just("group"), st.integers(0, 5), st.sampled_from(["g1", "g2"]), st.integers(0, 5)
    ),
    st.tuples(st.just("merge"), st.integers(0, 5), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("erase"), st.integers(0, 5), st.just(""), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 10), st.just(""), st.just(0)),
)


def _member_sum(lh: Leadheat, key: str, at: object) -> tuple[float, float]:
    view = account(lh, key, at)  # type: ignore[arg-type]
    total = math.fsum(lh.show(f"id:{m.lead_id}", at).score.heat for m in view.members)  # type: ignore[arg-type]
    return view.row.heat, total


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=10), st.lists(st.integers(0, 60), max_size=3))
def test_account_heat_is_the_sum_of_its_members_heat_at_any_instant(
    lh: Leadheat, clock: Clock, steps: list[tuple[str, int, object, int]], probes: list[int]
) -> None:
    run = next(_examples)
    start = clock.now
    domains = {"a": f"a{run}.acme.io", "b": f"b{run}.acme.io"}
    people = [f"p{i}-{run}@{domains['a' if i < 3 else 'b']}" for i in range(6)]
    gone: set[int] = set()
    for kind, who, what, extra in steps:
        if kind == "wait":
            clock.now += timedelta(hours=who * 7)
            continue
        if who in gone:
            continue
        if kind == "track":
            lh.track(people[who], str(what), clock.now - timedelta(hours=extra))
        elif kind == "import":
            lh.upsert_leads(
                [LeadInput([parse_lead_key(people[who])], {"company_domain": domains[str(what)]})]
            )
        elif kind == "group":
            messages = parse_batch(
                {
                    "batch": [
                        {
                            "type": "group",
                            "userId": f"u{who}-{run}",
                            "groupId": f"{what}-{run}",
                            "traits": {"name": f"Group {what}"},
                            "context": {"traits": {"email": people[who]}},
                            "messageId": f"m{run}-{who}-{what}-{extra}",
                        }
                    ]
                },
                clock.now,
            )
            lh.collect(messages)
        elif kind == "merge" and what != who and what not in gone:
            try:
                keep, absorb = lh.lead_id(people[who]), lh.lead_id(people[int(str(what))])
            except Exception:
                continue
            if keep != absorb:
                lh.merge(keep, absorb)
        elif kind == "erase":
            try:
                lh.erase(people[who])
            except Exception:
                continue
            gone.add(who)
    keys = [row.key for row in accounts(lh, limit=None)]
    instants = [clock.now, *(start + timedelta(hours=7 * p) for p in probes)]
    for key in keys:
        for at in instants:
            heat, total = _member_sum(lh, key, at)
            assert heat == pytest.approx(total, rel=1e-9, abs=1e-12), (key, at)


def test_free_mail_and_disposable_leads_belong_to_no_account(lh: Leadheat) -> None:
    for email in ("ana@gmail.com", "bo@mailinator.com", "cy@yahoo.com", "di@proton.me"):
        lh.track(email, "demo_request")
    lh.track("ed@initech.io", "demo_request")
    assert [row.key for row in accounts(lh, limit=None)] == ["initech.io"]
    with lh.engine.connect() as connection:
        members = connection.execute(text("SELECT COUNT(*) FROM account_members")).scalar()
    assert members == 1


def test_an_explicit_account_beats_the_group_and_the_email_domain(lh: Leadheat) -> None:
    lh.upsert_leads([LeadInput([parse_lead_key("ana@gmail.com")], {"account": "Globex.com"})])
    assert [m.email for m in account(lh, "globex.com").members] == ["ana@gmail.com"]


def test_three_warm_members_make_a_hot_account(lh: Leadheat, clock: Clock) -> None:
    for who in ("ana", "bo", "cy"):
        lh.track(f"{who}@umbrella.com", "trial_signup")  # 15 points each: warm leads
        assert lh.show(f"{who}@umbrella.com").score.temperature.value == "warm"
    (row,) = accounts(lh, temperature="hot")
    assert (row.key, row.members, row.temperature.value) == ("umbrella.com", 3, "hot")
    assert row.heat == pytest.approx(45, rel=1e-12)
    _, book = lh.playbook()
    assert row.hot_until is not None
    # heat at hot_until equals hot_heat
    at = account(lh, "umbrella.com", row.hot_until)
    assert at.row.heat == pytest.approx(book.accounts.hot_heat, rel=1e-9)
    later = account(lh, "umbrella.com", row.hot_until + timedelta(seconds=1))
    assert later.row.temperature.value == "warm"


def test_a_move_is_audited_and_the_past_keeps_the_members_it_had(
    lh: Leadheat, clock: Clock
) -> None:
    lh.track("ana@acme.com", "demo_request")
    lh.track("bo@acme.com", "demo_request")
    before = clock.now
    clock.now += timedelta(hours=1)
    lh.upsert_leads([LeadInput([parse_lead_key("bo@acme.com")], {"account": "initech.com"})])
    assert [m.email for m in account(lh, "acme.com").members] == ["ana@acme.com"]
    assert [m.email for m in account(lh, "acme.com", before).members] == [
        "ana@acme.com",
        "bo@acme.com",
    ]
    (entry,) = lh.audit_log(action="account.move")
    assert entry.detail == {"from": "acme.com", "to": "initech.com", "source": "account"}


def test_cli_lists_and_shows_accounts_and_sets_an_owner(
    db_url: str, capsys: pytest.CaptureFixture[str], clock: Clock
) -> None:
    cli = Cli(db_url, capsys)
    assert cli("init")[0] == 0
    for who in ("ana", "bo", "cy"):
        assert cli("track", f"{who}@umbrella.com", "demo_request")[0] == 0
    rows = cli.json("accounts", "--temperature", "hot")
    assert isinstance(rows, list)
    (row,) = rows
    assert set(row) >= {"account", "heat", "temperature", "hot_until", "members", "owner", "roles"}
    assert row["account"] == "umbrella.com" and row["members"] == 3
    assert cli("reps", "add", "rita@example.com")[0] == 0
    code, _, err = cli("account", "umbrella.com", "--owner", "rita@example.com")
    assert code == 0, err
    detail = cli.json("account", "umbrella.com")
    assert isinstance(detail, dict)
    assert detail["owner"] == "rita@example.com"
    assert {m["lead"] for m in detail["members"]} == {
        "ana@umbrella.com",
        "bo@umbrella.com",
        "cy@umbrella.com",
    }
    assert {"heat", "temperature", "hot_until", "warm_until", "coverage", "evidence"} <= set(detail)
    assert cli.json("accounts", "--owner", "rita@example.com")[0]["account"] == "umbrella.com"  # type: ignore[index]
    code, _, err = cli("account", "nowhere.example")
    assert code == 1 and "no account known as 'nowhere.example'" in err


def test_merges_erasures_and_moves_keep_the_sum_exact(lh: Leadheat, clock: Clock) -> None:
    start = clock.now
    for index, who in enumerate(("ana", "bo", "cy", "di")):
        lh.track(f"{who}@acme.com", "demo_request", start - timedelta(days=index))
        lh.track(f"{who}@acme.com", "page_view", start - timedelta(hours=index))
    lh.track("ed@initech.com", "trial_signup")
    clock.now += timedelta(days=1)
    lh.merge("ana@acme.com", "bo@acme.com")  # same account: the heat stays, one member less
    lh.merge("ed@initech.com", "cy@acme.com")  # cy's heat goes with it to initech
    clock.now += timedelta(days=1)
    lh.erase("di@acme.com")
    lh.upsert_leads([LeadInput([parse_lead_key("ana@acme.com")], {"account": "initech.com"})])
    for at in (clock.now, start, start + timedelta(hours=30), start - timedelta(hours=12)):
        for key in ("acme.com", "initech.com"):
            heat, total = _member_sum(lh, key, at)
            assert heat == pytest.approx(total, rel=1e-9, abs=1e-12), (key, at)
    assert account(lh, "acme.com").row.heat == 0
    assert [m.email for m in account(lh, "initech.com").members] == [
        "ana@acme.com",
        "ed@initech.com",
    ]
    with lh.engine.connect() as connection:  # stored: no sum over members on read
        stored = connection.execute(text("SELECT COUNT(*) FROM account_heat_keys")).scalar()
    assert stored == 1


ALERTING = """
[signals.trial_signup]
points = 15
[speed.teams.default]
manager = "boss@example.com"
[[speed.alerts]]
channel = "webhook"
url = "https://hooks.example.com/hooks"
"""


def test_an_account_turning_hot_is_announced_once_and_its_owner_gets_its_new_leads(
    db_url: str, clock: Clock
) -> None:
    lh = Leadheat(db_url, clock=clock)
    try:
        lh.init(ALERTING)
        for rep in ("rita@x.com", "sam@x.com", "tom@x.com"):
            lh.add_rep(rep)
        lh.track("ana@umbrella.com", "trial_signup")
        lh.track("bo@umbrella.com", "trial_signup")
        assert not [d for d in lh.deliveries() if d.trigger == "account_hot"]
        lh.set_account_owner("umbrella.com", "rita@x.com")
        lh.track("cy@umbrella.com", "trial_signup")  # 45 >= 40: the account turns hot
        lh.track("cy@umbrella.com", "trial_signup")  # hotter, still hot: no second alert
        (alert,) = [d for d in lh.deliveries() if d.trigger == "account_hot"]
        assert alert.payload["account"]["account"] == "umbrella.com"
        assert alert.payload["account"]["members"] == 3
        assert alert.payload["owner"]["email"] == "rita@x.com"
        (running,) = lh.sla_clocks(lead=alert.payload["lead"]["id"], open_only=True)
        assert running.owner == "rita@x.com"  # the owned account's new lead went to rita
        assert lh.show("cy@umbrella.com").lead["owner"] == "rita@x.com"
        # before any round robin, whatever triggers fire
        lh.track("di@umbrella.com", "page_view")
        assert lh.show("di@umbrella.com").lead["owner"] == "rita@x.com"
        lh.track("ed@initech.com", "trial_signup")
        assert lh.show("ed@initech.com").lead["owner"] in ("sam@x.com", "tom@x.com")
        # cooled down and hot again: a new hot spell, a new alert
        clock.now += timedelta(days=30)
        for who in ("ana", "bo", "cy"):
            lh.track(f"{who}@umbrella.com", "trial_signup")
        assert len([d for d in lh.deliveries() if d.trigger == "account_hot"]) == 2
    finally:
        lh.close()


def test_rest_lists_shows_and_assigns_accounts(live_server: LiveServer) -> None:
    lh = live_server.lh
    for who in ("ana", "bo", "cy"):
        lh.track(f"{who}@umbrella.com", "trial_signup", datetime.now(UTC))
    lh.add_rep("rita@x.com")
    read = {"Authorization": f"Bearer {live_server.read_key}"}
    admin = {"Authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        listed = http.get("/api/v1/accounts", params={"temperature": "hot"}, headers=read)
        assert listed.status_code == 200, listed.text
        (row,) = listed.json()
        assert row["account"] == "umbrella.com" and row["members"] == 3
        assert row["temperature"] == "hot" and row["hot_until"] is not None
        one = http.get("/api/v1/accounts/umbrella.com", headers=read).json()
        assert one["heat"] == pytest.approx(math.fsum(m["heat"] for m in one["members"]))
        assert {m["lead"] for m in one["members"]} == {
            "ana@umbrella.com",
            "bo@umbrella.com",
            "cy@umbrella.com",
        }
        missing = http.get("/api/v1/accounts/nowhere.example", headers=read)
        assert missing.status_code == 404 and missing.json()["field"] == "account"
        denied = http.patch(
            "/api/v1/accounts/umbrella.com", json={"owner": "rita@x.com"}, headers=read
        )
        assert denied.status_code == 403
        patched = http.patch(
            "/api/v1/accounts/umbrella.com", json={"owner": "rita@x.com"}, headers=admin
        )
        assert patched.status_code == 200 and patched.json()["owner"] == "rita@x.com"
        unknown = http.patch(
            "/api/v1/accounts/umbrella.com", json={"owner": "nobody@x.com"}, headers=admin
        )
        assert unknown.status_code == 400 and "nobody@x.com" in unknown.json()["error"]


def test_conversion_by_account_temperature_and_coverage_and_a_backtest(
    lh: Leadheat, clock: Clock
) -> None:
    from leadheat.analytics import team
    from leadheat.analytics.report import build_report
    from leadheat.playbook import default_playbook_text, parse_playbook

    start = clock.now
    for who in ("ana", "bo", "cy"):
        lh.track(f"{who}@umbrella.com", "trial_signup", start)
    lh.track("di@initech.com", "trial_signup", start)
    lh.track("ed@gmail.com", "trial_signup", start)
    clock.now = start + timedelta(hours=1)
    for email in ("ana@umbrella.com", "di@initech.com", "ed@gmail.com"):
        lh.touch(email, "call")  # the decision: ana's account is hot (45), di's warm (15)
    clock.now = start + timedelta(days=2)
    lh.outcome("ana@umbrella.com", "won")
    lh.outcome("di@initech.com", "lost")
    lh.outcome("ed@gmail.com", "lost")
    report = build_report(lh)

    def counts(key: str) -> dict[str, tuple[int, int]]:
        return {r.bucket: (r.won, r.leads) for r in report.breakdowns[key] if r.leads}

    assert counts("by_account_temperature") == {"hot": (1, 1), "warm": (0, 1), "no account": (0, 1)}
    assert counts("by_coverage") == {
        "3+ engaged": (1, 1),
        "1 engaged": (0, 1),
        "no account": (0, 1),
    }
    # a candidate that asks more of an account: umbrella was only warm at the first touch
    stricter = parse_playbook(default_playbook_text().replace("hot_heat = 40", "hot_heat = 60"))
    compared = team.backtest(lh, stricter).as_json()["accounts"]
    assert compared["current"]["converters_at_hot_accounts"]["won"] == 1
    assert compared["candidate"]["converters_at_hot_accounts"]["won"] == 0


def test_a_segment_group_call_names_the_account_with_its_traits(lh: Leadheat) -> None:
    lh.track("ana@acme.com", "demo_request")
    batch = {
        "batch": [
            {
                "type": "group",
                "userId": "u-ana",
                "groupId": "Acme-HQ",
                "traits": {"name": "Acme Inc", "industry": "Anvils", "employees": 120},
                "context": {"traits": {"email": "ana@acme.com"}},
            }
        ]
    }
    lh.collect(parse_batch(batch, lh.clock()))
    view = account(lh, "Acme-HQ")
    assert (view.row.key, view.row.name) == ("Acme-HQ", "Acme Inc")
    assert [m.email for m in view.members] == ["ana@acme.com"]
    assert view.row.heat == pytest.approx(lh.show("ana@acme.com").score.heat, rel=1e-12)
    assert account(lh, "acme.com").members == ()  # moved, audited
    assert [e.detail["to"] for e in lh.audit_log(action="account.move")] == ["Acme-HQ"]


def test_lists_order_accounts_by_heat_with_the_cold_ones_last(lh: Leadheat, clock: Clock) -> None:
    lh.upsert_leads([LeadInput([parse_lead_key("zed@quiet.com")], {"title": "CTO"})])
    lh.track("ana@warm.com", "trial_signup")
    for who in ("ana", "bo", "cy"):
        lh.track(f"{who}@hot.com", "trial_signup")
    assert [row.key for row in accounts(lh)] == ["hot.com", "warm.com", "quiet.com"]
    assert [row.key for row in accounts(lh, temperature="cold")] == ["quiet.com"]
    assert [row.key for row in accounts(lh, limit=1)] == ["hot.com"]


def test_concurrent_writers_to_one_account_lose_no_heat(db_url: str) -> None:
    """Four writers adding to the same accounts at once (PostgreSQL: row locks on the
    accounts keep every log-add; SQLite has one writer anyway)."""
    import random
    import threading

    with Leadheat(db_url) as first:
        first.init()
    now = datetime.now(UTC)
    failed: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        with Leadheat(db_url) as lh:
            try:
                for _ in range(10):
                    who = f"p{rng.randrange(8)}@{rng.choice(['acme.io', 'initech.io'])}"
                    lh.track(who, rng.choice(TYPES), now - timedelta(hours=rng.randrange(90)))
            except Exception as error:  # reported below: a thread's failure is the test's
                failed.append(repr(error))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    with Leadheat(db_url) as lh:
        at = datetime.now(UTC)
        for key in ("acme.io", "initech.io"):
            heat, total = _member_sum(lh, key, at)
            assert heat == pytest.approx(total, rel=1e-9), key


def test_a_members_negative_signal_pulls_the_account_down_exactly(
    lh: Leadheat, clock: Clock
) -> None:
    """Negative points (issue 20) reach the account as they reach the lead: the account's heat
    stays the signed sum of its members', and a careers-page view can take it out of hot."""
    source = default_playbook_text() + '\n[signals.careers_view]\npoints = -12\nhalf_life = "2d"\n'
    lh.apply_playbook(source)
    for who in ("ana", "bo", "cy"):
        lh.track(f"{who}@initech.com", "trial_signup")  # 45 together: a hot account
    assert [r.key for r in accounts(lh, temperature="hot")] == ["initech.com"]
    lh.track("cy@initech.com", "careers_view")
    for hours in (0, 5, 30, 24 * 5):
        at = clock.now + timedelta(hours=hours)
        heat, total = _member_sum(lh, "initech.com", at)
        assert heat == pytest.approx(total, rel=1e-9, abs=1e-9)
    now = account(lh, "initech.com", clock.now).row
    assert now.heat == pytest.approx(33, rel=1e-9)
    assert now.temperature.value == "warm"
    assert accounts(lh, temperature="hot") == []
