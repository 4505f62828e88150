"""Lost hot leads and win-back lists on real histories: the Olist marketing funnel's 8,000
MQLs, each arriving on its first-contact date with a landing-page sign-up (a strong signal),
and its 842 won deals as outcomes — real lead ages and real outcomes. Every number leadheat
reports is recomputed here straight from the CSV files.

The playbook makes the sign-up worth 40 points with a 7-day half-life and hot at 20, so a
lead is hot for exactly its first seven days, warm until day 30, then cold.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import NOW, Cli, Clock, LiveServer
from leadheat.analytics.rates import wilson
from leadheat.engage.lists import recover, winback
from leadheat.identity import LeadKey
from leadheat.ingest.records import OutcomeInput
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent

PLAYBOOK = """
[fit]
qualified_at = 0
[signals.sign_up]
points = 40
[temperature]
hot_requires = []
[speed]
enabled = false
"""
D = timedelta(days=1)
RECOVER_AT = datetime(2018, 5, 15, 12, tzinfo=UTC)
WINBACK_AT = datetime(2018, 9, 1, 12, tzinfo=UTC)


def _olist(folder: Path) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """First contact and won date per MQL."""
    with (folder / "olist_marketing_qualified_leads_dataset.csv").open() as file:
        first = {
            row["mql_id"]: datetime.fromisoformat(row["first_contact_date"]).replace(tzinfo=UTC)
            for row in csv.DictReader(file)
        }
    with (folder / "olist_closed_deals_dataset.csv").open() as file:
        won = {
            row["mql_id"]: datetime.fromisoformat(row["won_date"]).replace(tzinfo=UTC)
            for row in csv.DictReader(file)
        }
    return first, won


@pytest.fixture
def olist(shared_data: Path) -> tuple[dict[str, datetime], dict[str, datetime]]:
    return _olist(shared_data / "olist_marketing_funnel")


def _load(
    db_url: str,
    clock: Clock,
    olist: tuple[dict[str, datetime], dict[str, datetime]],
    as_of: datetime,
) -> Leadheat:
    first, won = olist
    clock.now = as_of
    lh = Leadheat(db_url, clock=clock)
    lh.init(PLAYBOOK)
    keys = {mql: LeadKey("external", mql) for mql in first}
    lh.upsert_leads(
        [LeadInput([keys[mql]], {}, at) for mql, at in first.items() if at <= as_of], react=False
    )
    lh.record_events(
        [
            NewEvent(keys[mql], "sign_up", at, f"olist-{mql}")
            for mql, at in first.items()
            if at <= as_of
        ],
        react=False,
    )
    lh.record_outcomes(
        [
            OutcomeInput(keys[mql], "won", at)
            for mql, at in won.items()
            if at <= as_of and mql in first and first[mql] <= as_of
        ]
    )
    return lh


@pytest.fixture
def at_recovery(
    db_url: str, clock: Clock, olist: tuple[dict[str, datetime], dict[str, datetime]]
) -> Iterator[Leadheat]:
    lh = _load(db_url, clock, olist, RECOVER_AT)
    yield lh
    lh.close()


def test_recovery_lists_the_leads_hot_in_the_last_30_days_that_nobody_closed(
    at_recovery: Leadheat, olist: tuple[dict[str, datetime], dict[str, datetime]]
) -> None:
    first, won = olist
    expected = {
        mql
        for mql, at in first.items()
        if RECOVER_AT - 37 * D < at <= RECOVER_AT - 7 * D
        and not (mql in won and won[mql] <= RECOVER_AT)
    }
    assert 500 < len(expected) < 3000  # a real list, not an edge case
    found = recover(at_recovery)
    assert {lost.lead for lost in found} == expected
    hot_until = [lost.hot_until for lost in found]
    assert hot_until == sorted(hot_until, reverse=True)  # most recently hot first
    for lost in found[:50]:
        assert lost.hot_until == first[lost.lead] + 7 * D
        assert lost.hot_from == max(first[lost.lead], RECOVER_AT - 30 * D)
        assert lost.temperature.value == "warm" and "heat" in lost.reason and "< 20" in lost.reason
    # a touch after a lead turned hot takes it off the list; one before does not
    called, ignored = found[0].lead, found[1].lead
    at_recovery.touch(called, "call", first[called] + D)
    at_recovery.touch(ignored, "call", first[ignored] - D)
    again = {lost.lead for lost in recover(at_recovery)}
    assert again == expected - {called}
    narrower = {lost.lead for lost in recover(at_recovery, within=timedelta(days=10))}
    assert narrower == {mql for mql in expected - {called} if first[mql] > RECOVER_AT - 17 * D}


@pytest.fixture
def at_winback(
    db_url: str, clock: Clock, olist: tuple[dict[str, datetime], dict[str, datetime]]
) -> Iterator[Leadheat]:
    lh = _load(db_url, clock, olist, WINBACK_AT)
    yield lh
    lh.close()


def test_winback_states_the_rate_history_gives_leads_of_that_age_not_the_hot_rate(
    at_winback: Leadheat,
    olist: tuple[dict[str, datetime], dict[str, datetime]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, won = olist
    horizon = 90 * D
    members = {
        mql
        for mql, at in first.items()
        if at <= WINBACK_AT - 180 * D and not (mql in won and won[mql] <= WINBACK_AT)
    }

    def rate_at(age: int) -> tuple[int, int]:
        """Leads still open at this age, with the horizon behind them; and how many won."""
        open_then = [
            mql
            for mql, at in first.items()
            if at + age * D + horizon <= WINBACK_AT
            and not (mql in won and won[mql] <= at + age * D)
        ]
        converted = sum(
            mql in won and first[mql] + age * D < won[mql] <= first[mql] + age * D + horizon
            for mql in open_then
        )
        return len(open_then), converted

    data = Cli(at_winback.url, capsys).json(
        "winback", "--older-than", "180d", "--at", WINBACK_AT.isoformat()
    )
    assert {lead["lead"] for lead in data["leads"]} == members
    assert all(lead["previously_engaged"] for lead in data["leads"])
    assert data["marked"] == len(members)
    groups = {(g["temperature"], g["bucket"]): g for g in data["expected"]["groups"]}
    old = groups[("cold", "180-365d")]
    assert (old["leads"], old["won"]) == rate_at(180)
    low, high = wilson(old["won"], old["leads"])
    assert (old["low"], old["high"]) == pytest.approx((low, high))
    older = groups.get(("cold", "1-2y"))
    assert older is None or (older["leads"] == 0 and older["small"] is True)
    in_old = sum(1 for mql in members if 180 * D <= WINBACK_AT - first[mql] < 365 * D)
    assert old["members"] == in_old
    expected = in_old * old["rate"]
    assert data["expected"]["expected_conversions"] == pytest.approx(expected, abs=1e-3)
    hot = data["expected"]["hot_rate"]
    # hot at the 0-day mark, and at the 7-day mark too: a week after the sign-up its heat is
    # exactly 20, still hot (heat >= hot_heat), and Olist's dates fall on midnights
    (n0, won0), (n7, won7) = rate_at(0), rate_at(7)
    assert (hot["leads"], hot["won"]) == (n0 + n7, won0 + won7)
    # the point of the list: old leads convert far below what hot leads did
    assert data["expected"]["expected_rate"] < hot["rate"] / 3
    # marked leads carry the flag
    some = next(iter(members))
    shown = Cli(at_winback.url, capsys).json("show", some)
    assert shown["lead"]["attributes"]["previously_engaged"] is True


def test_expired_trials_and_cancellations_are_winback_leads_whatever_their_age(
    lh: Leadheat, clock: Clock
) -> None:
    lh.apply_playbook(PLAYBOOK + "[signals.trial_signup]\npoints = 15\n")
    lh.track("tia@example.com", "trial_signup", NOW - 40 * D)
    lh.track("tia@example.com", "trial_expired", NOW - 26 * D)
    lh.track("cal@example.com", "sign_up", NOW - 50 * D)
    lh.track("cal@example.com", "subscription_cancelled", NOW - 20 * D)
    lh.track("new@example.com", "sign_up", NOW - 50 * D)  # cold, young, never churned
    found = winback(lh)
    assert {(lead.lead, lead.why) for lead in found.leads} == {
        ("tia@example.com", "trial expired"),
        ("cal@example.com", "cancelled"),
    }
    assert {lead.lead for lead in winback(lh, churned=False, older_than=45 * D).leads} == {
        "cal@example.com",
        "new@example.com",
    }


def test_the_api_gives_the_cli_lists_and_names_bad_parameters(
    lh: Leadheat, capsys: pytest.CaptureFixture[str]
) -> None:
    lh.apply_playbook(PLAYBOOK)
    lh.track("lost@example.com", "sign_up", NOW - 10 * D)
    lh.track("hot@example.com", "sign_up", NOW - D)
    lh.upsert_leads([LeadInput([LeadKey("email", "old@example.com")], {}, NOW - 400 * D)])
    lh.track("old@example.com", "sign_up", NOW - 300 * D)
    server = LiveServer(lh)
    cli = Cli(lh.url, capsys)
    at = NOW.isoformat()
    try:
        read = {"Authorization": f"Bearer {server.read_key}"}
        lost = httpx.get(f"{server.url}/api/v1/recover", params={"at": at}, headers=read)
        assert lost.status_code == 200
        assert lost.json() == cli.json("recover", "--at", at)
        assert [item["lead"] for item in lost.json()] == ["lost@example.com"]
        listed = httpx.get(f"{server.url}/api/v1/winback", params={"at": at}, headers=read)
        assert listed.status_code == 200
        assert [item["lead"] for item in listed.json()["leads"]] == ["old@example.com"]
        assert listed.json()["expected"]["leads"] == 1
        bad = httpx.get(f"{server.url}/api/v1/recover", params={"within": "soon"}, headers=read)
        assert bad.status_code == 400 and bad.json()["field"] == "within"
        refused = httpx.post(f"{server.url}/api/v1/winback", params={"at": at}, headers=read)
        assert refused.status_code == 403
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        marked = httpx.post(f"{server.url}/api/v1/winback", params={"at": at}, headers=admin)
        assert marked.status_code == 200 and marked.json()["marked"] == 1
    finally:
        server.stop()
    assert cli.json("show", "old@example.com")["lead"]["attributes"]["previously_engaged"]


def test_winback_dry_run_marks_nothing_and_a_mistyped_sequence_changes_nothing(
    lh: Leadheat, capsys: pytest.CaptureFixture[str]
) -> None:
    lh.apply_playbook(
        PLAYBOOK + '[sequences.back]\n[[sequences.back.steps]]\nsubject = "Hi"\nbody = "Hello"\n'
    )
    lh.upsert_leads([LeadInput([LeadKey("email", "old@example.com")], {}, NOW - 400 * D)])
    lh.track("old@example.com", "sign_up", NOW - 300 * D)
    cli = Cli(lh.url, capsys)
    at = NOW.isoformat()

    def marked() -> bool:
        shown = cli.json("show", "old@example.com")
        return "previously_engaged" in shown["lead"]["attributes"]  # type: ignore[index]

    dry = cli.json("winback", "--at", at, "--dry-run", "--enroll", "back")
    assert [item["lead"] for item in dry["leads"]] == ["old@example.com"]  # type: ignore[index]
    assert (dry["marked"], dry["enrolled"]) == (0, 0) and not marked()  # type: ignore[index]
    code, _, err = cli("winback", "--at", at, "--enroll", "bak")
    assert code == 1 and "no sequence 'bak'" in err and not marked()
    done = cli.json("winback", "--at", at, "--enroll", "back")
    assert (done["marked"], done["enrolled"]) == (1, 1) and marked()  # type: ignore[index]
    again = cli.json("winback", "--at", at, "--enroll", "back")
    assert (again["marked"], again["enrolled"]) == (1, 0)  # type: ignore[index]
    (enrolment,) = cli.json("sequences", "enrollments", "--lead", "old@example.com")  # type: ignore[misc]
    assert enrolment["sequence"] == "back"
