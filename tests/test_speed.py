"""Speed to lead with a fixed clock: triggers, assignment, business-hours SLA clocks,
escalation. Real databases (SQLite and PostgreSQL); alerts land in the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DEMO_MAKES_HOT, Clock
from leadheat.identity import parse_lead_key
from leadheat.playbook import Team, parse_playbook
from leadheat.service import Leadheat, LeadheatError, LeadInput
from leadheat.speed.calendar import BusinessCalendar

MONDAY_10 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 11:00 in Berlin

PLAYBOOK = (
    DEMO_MAKES_HOT
    + """
[signals.trial_signup]
points = 2
[signals.form_submit]
points = 2
[speed.teams.default]
timezone = "Europe/Berlin"
hours = "09:00-17:00"
holidays = [2026-12-24]
manager = "boss@example.com"
[speed.teams.dach]
timezone = "Europe/Berlin"
manager = "dach-lead@example.com"
[[speed.owners]]
field = "country"
one_of = ["DE", "AT", "CH"]
team = "dach"
[[speed.owners]]
field = "segment"
equals = "enterprise"
reps = ["erin@x.com"]
[[speed.alerts]]
channel = "webhook"
url = "https://hooks.example.com/hooks"
[[speed.alerts]]
channel = "email"
to = ["owner"]
triggers = ["hot", "sla_breach"]
[[speed.alerts]]
channel = "email"
to = ["manager"]
triggers = ["sla_breach"]
"""
)


@pytest.fixture
def team(db_url: str, clock: Clock) -> Iterator[Leadheat]:
    clock.now = MONDAY_10
    lh = Leadheat(db_url, clock=clock)
    lh.init(PLAYBOOK)
    for email in ("anna@x.com", "ben@x.com", "cleo@x.com"):
        lh.add_rep(email)
    yield lh
    lh.close()


def _lead(lh: Leadheat, email: str, **fields: object) -> int:
    report = lh.upsert_leads([LeadInput([parse_lead_key(email)], {"title": "CTO", **fields})])
    return report.lead_ids[0]


def _owner(lh: Leadheat, email: str) -> str | None:
    return lh.show(email).lead["owner"]


# -- business calendars ---------------------------------------------------------------------
def test_business_time_pauses_at_night_weekends_and_holidays() -> None:
    berlin = BusinessCalendar.of(Team(timezone="Europe/Berlin", holidays=[date(2026, 12, 24)]))
    friday_late = datetime(2026, 11, 6, 15, 58, tzinfo=UTC)  # 16:58 in Berlin
    assert berlin.add(friday_late, timedelta(minutes=5)) == datetime(2026, 11, 9, 8, 3, tzinfo=UTC)
    night = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    assert berlin.add(night, timedelta(minutes=5)) == datetime(2026, 11, 3, 8, 5, tzinfo=UTC)
    # the holiday (a Thursday) is skipped: 16:00 Wednesday + 2 h of work = Friday 10:00
    wednesday = datetime(2026, 12, 23, 15, 0, tzinfo=UTC)
    assert berlin.add(wednesday, timedelta(hours=2)) == datetime(2026, 12, 25, 9, 0, tzinfo=UTC)
    # daylight saving ends on 2026-10-25: 09:00 Berlin is 07:00 UTC before, 08:00 after
    assert berlin.add(datetime(2026, 10, 23, 0, 0, tzinfo=UTC), timedelta(0)) == datetime(
        2026, 10, 23, 7, 0, tzinfo=UTC
    )
    assert berlin.add(datetime(2026, 10, 26, 0, 0, tzinfo=UTC), timedelta(0)) == datetime(
        2026, 10, 26, 8, 0, tzinfo=UTC
    )


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 20),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    hours=st.sampled_from(["09:00-17:00", "08:30-12:00", "00:00-24:00", "22:00-24:00"]),
)
def test_adding_business_time_and_measuring_it_agree(
    start: datetime, minutes: int, zone: str, hours: str
) -> None:
    calendar = BusinessCalendar.of(Team(timezone=zone, hours=hours, holidays=[date(2026, 1, 1)]))
    span = timedelta(minutes=minutes)
    end = calendar.add(start, span)
    assert end >= start + span
    assert calendar.between(start, end) == span


_SHARED = {
    zone: BusinessCalendar.of(Team(timezone=zone, holidays=[date(2026, 1, 1)]))
    for zone in ("UTC", "Europe/Berlin", "America/New_York")
}
"""Calendars kept across examples, as a follow-up refresh keeps one for a thousand leads."""


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 20),
    zone=st.sampled_from(sorted(_SHARED)),
)
def test_a_calendar_that_has_answered_before_answers_as_a_fresh_one(
    start: datetime, minutes: int, zone: str
) -> None:
    """A calendar remembers the working span of each day it has met: whatever it was asked
    before, in any order, its answers are a fresh calendar's."""
    shared = _SHARED[zone]
    fresh = BusinessCalendar.of(Team(timezone=zone, holidays=[date(2026, 1, 1)]))
    span = timedelta(minutes=minutes)
    assert shared.add(start, span) == fresh.add(start, span)
    assert shared.between(start, start + span) == fresh.between(start, start + span)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    days=st.floats(min_value=0, max_value=800),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Santiago", "Asia/Kolkata"]),
    hours=st.sampled_from(["09:00-17:00", "00:00-24:00", "22:00-24:00"]),
    days_off=st.sampled_from([["sat", "sun"], [], ["fri"]]),
)
def test_long_spans_measured_from_running_totals_equal_a_walk_day_by_day(
    start: datetime, days: float, zone: str, hours: str, days_off: list[str]
) -> None:
    """Overdue follow-ups measure months of working time; the per-year running totals must
    give exactly what walking every span gives, across DST changes, holidays and new years."""
    workdays = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d not in days_off]
    calendar = BusinessCalendar.of(
        Team(timezone=zone, hours=hours, days=workdays, holidays=[date(2026, 1, 1)])
    )
    end = start + timedelta(days=days)
    assert calendar.between(start, end) == calendar._walk(start, end)


# -- triggers, assignment, clocks -------------------------------------------------------------
def test_a_lead_turning_hot_gets_an_owner_a_clock_and_one_alert_per_channel(
    team: Leadheat,
) -> None:
    _lead(team, "ana@example.com")
    team.track("ana@example.com", "page_view")
    before = {d.trigger for d in team.deliveries()}
    assert "hot" not in before
    team.track("ana@example.com", "demo_request")
    hot = [d for d in team.deliveries() if d.trigger == "hot"]
    assert sorted(d.channel for d in hot) == ["email", "webhook"]
    owner = _owner(team, "ana@example.com")
    assert owner == "anna@x.com"
    webhook = next(d for d in hot if d.channel == "webhook")
    payload = webhook.payload
    assert payload["lead"]["email"] == "ana@example.com"
    assert payload["owner"]["email"] == owner
    assert payload["deadline"] == "2026-11-02T10:05:00Z"
    assert "demo request" in payload["why"] and payload["action"]
    assert next(d for d in hot if d.channel == "email").target == owner
    # still hot after more interest: no second alert
    team.track("ana@example.com", "page_view")
    assert len([d for d in team.deliveries() if d.trigger == "hot"]) == 2
    (clock,) = team.sla_clocks(lead="ana@example.com")
    assert (clock.trigger, clock.owner, clock.deadline) == (
        "hot",
        owner,
        datetime(2026, 11, 2, 10, 5, tzinfo=UTC),
    )


def test_a_rolled_back_write_leaves_no_alert(team: Leadheat) -> None:
    _lead(team, "ana@example.com")
    with pytest.raises(LeadheatError):
        team.record_events(
            [
                *_events("ana@example.com", "demo_request"),
                *_events("ana@example.com", "page_view", at=MONDAY_10 + timedelta(days=3)),
            ]
        )
    assert not [d for d in team.deliveries() if d.trigger == "hot"]


def _events(lead: str, kind: str, at: datetime = MONDAY_10) -> list:
    from leadheat.store.events import NewEvent

    return [NewEvent(parse_lead_key(lead), kind, at, f"{lead}-{kind}-{at.isoformat()}")]


def test_round_robin_pause_capacity_and_weights(team: Leadheat, clock: Clock) -> None:
    owners = []
    for number in range(6):
        _lead(team, f"lead{number}@example.com")
        team.track(f"lead{number}@example.com", "demo_request")
        owners.append(_owner(team, f"lead{number}@example.com"))
    assert owners == ["anna@x.com", "ben@x.com", "cleo@x.com"] * 2
    owned = team.audit_log(limit=50, action="lead.owner")
    assert len(owned) == 6 and {e.actor for e in owned} == {"speed-to-lead"}
    team.set_rep_active("ben@x.com", False)
    team.add_rep("cleo@x.com", capacity=2)  # cleo owns 2 hot leads already: full
    _lead(team, "lead6@example.com")
    team.track("lead6@example.com", "demo_request")
    assert _owner(team, "lead6@example.com") == "anna@x.com"
    counts = {rep.email: hot for rep, hot in team.reps()}
    assert counts == {"anna@x.com": 3, "ben@x.com": 2, "cleo@x.com": 2}
    # a resumed rep rejoins level: no burst of every next lead to them
    team.set_rep_active("ben@x.com", True)
    team.add_rep("cleo@x.com", capacity=None, weight=2)
    got = []
    for number in range(7, 15):
        _lead(team, f"lead{number}@example.com")
        team.track(f"lead{number}@example.com", "demo_request")
        got.append(_owner(team, f"lead{number}@example.com"))
    assert got.count("cleo@x.com") >= 2 * got.count("anna@x.com") - 1
    assert got.count("ben@x.com") <= 4


def test_nobody_free_leaves_the_lead_unassigned_and_tells_the_manager(team: Leadheat) -> None:
    for email in ("anna@x.com", "ben@x.com", "cleo@x.com"):
        team.set_rep_active(email, False)
    _lead(team, "ana@example.com")
    team.track("ana@example.com", "demo_request")
    assert _owner(team, "ana@example.com") is None
    (alert,) = [d for d in team.deliveries() if d.trigger == "hot" and d.channel == "email"]
    assert alert.target == "boss@example.com"  # "owner" falls back to the manager
    assert "no active rep" in alert.payload["assignment"]


def test_territory_and_list_rules_and_known_owners(team: Leadheat) -> None:
    team.add_rep("dieter@x.com", team="dach")
    team.add_rep("erin@x.com")
    _lead(team, "hans@example.de", country="DE")
    team.track("hans@example.de", "demo_request")
    assert _owner(team, "hans@example.de") == "dieter@x.com"
    _lead(team, "big@corp.com", segment="enterprise")
    team.track("big@corp.com", "demo_request")
    assert _owner(team, "big@corp.com") == "erin@x.com"
    _lead(team, "mine@example.com", owner="ben@x.com")
    team.track("mine@example.com", "demo_request")
    assert _owner(team, "mine@example.com") == "ben@x.com"
    (clock,) = team.sla_clocks(lead="hans@example.de")
    assert clock.team == "dach"


def test_business_hours_sla_and_the_first_touch_stop_the_clock(
    team: Leadheat, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 6, 15, 58, tzinfo=UTC)  # Friday 16:58 in Berlin
    _lead(team, "ana@example.com")
    team.track("ana@example.com", "demo_request")
    (running,) = team.sla_clocks(lead="ana@example.com")
    assert running.deadline == datetime(2026, 11, 9, 8, 3, tzinfo=UTC)  # Monday 09:03
    assert running.state(clock.now) == "running"
    clock.now = datetime(2026, 11, 9, 8, 1, tzinfo=UTC)  # Monday 09:01
    assert team.escalate() == 0
    team.touch("ana@example.com", "call", rep="anna@x.com")
    (stopped,) = team.sla_clocks(lead="ana@example.com")
    assert stopped.response == timedelta(minutes=3)  # 2 min on Friday + 1 min on Monday
    assert stopped.state(clock.now) == "met" and stopped.touched_by == "anna@x.com"
    clock.now += timedelta(days=1)
    assert team.escalate() == 0
    _lead(team, "bo@example.com")
    team.track("bo@example.com", "demo_request")
    clock.now += timedelta(hours=1)
    assert team.escalate() == 1
    timings = {t.owner: t for t in team.sla_by_rep()}
    assert (timings["anna@x.com"].met, timings["anna@x.com"].median_response) == (
        1,
        timedelta(minutes=3),
    )
    assert timings["ben@x.com"].breached == 1 and timings["ben@x.com"].median_response is None


def test_a_breach_tells_the_manager_and_can_reassign(db_url: str, clock: Clock) -> None:
    clock.now = MONDAY_10
    lh = Leadheat(db_url, clock=clock)
    lh.init(
        PLAYBOOK.replace(
            "[speed.teams.default]", "[speed]\nreassign_on_breach = true\n[speed.teams.default]"
        )
    )
    lh.add_rep("anna@x.com")
    lh.add_rep("ben@x.com")
    _lead(lh, "ana@example.com")
    lh.track("ana@example.com", "demo_request")
    clock.now += timedelta(minutes=4)
    assert lh.escalate() == 0
    clock.now += timedelta(minutes=2)
    assert lh.escalate() == 1
    assert lh.escalate() == 0  # escalated once
    breach = [d for d in lh.deliveries() if d.trigger == "sla_breach"]
    assert sorted(d.target for d in breach if d.channel == "email") == [
        "anna@x.com",
        "boss@example.com",
    ] or sorted(d.target for d in breach if d.channel == "email") == [
        "ben@x.com",
        "boss@example.com",
    ]
    payload = breach[0].payload
    assert payload["breach"]["reassigned_to"] == "ben@x.com"
    assert _owner(lh, "ana@example.com") == "ben@x.com"
    states = sorted(c.state(clock.now) for c in lh.sla_clocks(lead="ana@example.com"))
    assert states == ["breached", "running"]
    lh.close()


def test_other_triggers(team: Leadheat, clock: Clock) -> None:
    # new qualified lead: 1 business hour
    _lead(team, "q@example.com")
    (clock_q,) = team.sla_clocks(lead="q@example.com")
    assert (clock_q.trigger, clock_q.deadline) == ("new_qualified", MONDAY_10 + timedelta(hours=1))
    # unqualified lead signing up for a trial: trial_signup, 15 min
    team.track("student@example.com", "trial_signup")
    (clock_t,) = team.sla_clocks(lead="student@example.com")
    assert clock_t.trigger == "trial_signup"
    assert clock_t.deadline == MONDAY_10 + timedelta(minutes=15)
    # warm (1 business day = 8 working hours), then a form from the lead now owned
    team.upsert_leads([LeadInput([parse_lead_key("w@example.com")], {"title": "intern"})])
    team.track("w@example.com", "page_view")
    (clock_w,) = team.sla_clocks(lead="w@example.com")
    assert clock_w.trigger == "warm"
    assert clock_w.deadline == datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    team.touch("w@example.com", "email", rep=clock_w.owner)
    clock.now += timedelta(minutes=10)
    team.track("w@example.com", "form_submit")
    clock_f, _ = team.sla_clocks(lead="w@example.com")
    assert (clock_f.trigger, clock_f.owner) == ("form_submit", clock_w.owner)
    assert clock_f.deadline == clock.now + timedelta(hours=1)
    # old history does not page anyone
    team.track("old@example.com", "trial_signup", at=MONDAY_10 - timedelta(days=30))
    assert not team.sla_clocks(lead="old@example.com")


def test_imports_and_the_demo_do_not_fire_triggers(team: Leadheat) -> None:
    team.upsert_leads(
        [LeadInput([parse_lead_key("quiet@example.com")], {"title": "CTO"})], react=False
    )
    team.record_events(_events("quiet@example.com", "demo_request"), react=False)
    assert not team.sla_clocks(lead="quiet@example.com")
    assert not team.deliveries(lead="quiet@example.com")


def test_a_playbook_can_turn_speed_off_and_validates_it() -> None:
    assert not parse_playbook("[speed]\nenabled = false").speed.trigger("hot").enabled
    for text, where in (
        ('[speed.triggers.hto]\nsla = "5m"', "speed.triggers.hto"),
        ('[speed.triggers.hot]\nsla = "soon"', "speed.triggers.hot.sla"),
        ('[speed.teams.x]\ntimezone = "Mars/Base"', "speed.teams.x.timezone"),
        ('[[speed.alerts]]\nchannel = "slack"', "speed.alerts.0"),
        ('[[speed.owners]]\nfield = "country"\nequals = "DE"\nteam = "nope"', "speed"),
    ):
        with pytest.raises(ValueError, match=where.replace(".", r"\.")):
            parse_playbook(text)
