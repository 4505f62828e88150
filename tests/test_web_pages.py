"""What the dashboard's pages show, called as a library (the browser tests drive the pages)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from conftest import DEMO_MAKES_HOT, Clock
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.web.chart import Threshold, heat_chart
from leadheat.web.leadpage import heat_series, lead_page
from leadheat.web.listing import ListFilter, ListRow, count_of, csv_lines, matching, page_of
from leadheat.web.queue import hot_queue

PEOPLE = [
    # email, title, owner, source, demo requests, page views
    ("ana@acme.example.com", "CTO", "rita@x.com", "webinar", 2, 3),
    ("bo@acme.example.com", "VP Sales", "sam@x.com", "ads", 1, 0),
    ("cy@globex.example.com", "CTO", "Rita@X.com", "ads", 1, 5),  # as a CRM export spells it
    ("di@globex.example.com", "Engineer", "rita@x.com", "webinar", 1, 1),
    ("ed@initech.example.com", "Analyst", "sam@x.com", "referral", 0, 6),
    ("fa@initech.example.com", "Intern", None, "ads", 0, 0),
]


@pytest.fixture
def team(lh: Leadheat, clock: Clock) -> Leadheat:
    lh.apply_playbook(DEMO_MAKES_HOT)
    lh.upsert_leads(
        [
            LeadInput(
                keys=[parse_lead_key(email)],
                fields={
                    "name": email.split("@")[0].title(),
                    "company": email.split("@")[1].split(".")[0].title(),
                    "title": title,
                    "owner": owner,
                    "source": source,
                },
            )
            for email, title, owner, source, _, _ in PEOPLE
        ],
        react=False,
    )
    for hours, (email, *_, demos, views) in enumerate(PEOPLE):
        for n in range(demos):
            lh.track(email, "demo_request", clock.now - timedelta(hours=hours + n))
        for n in range(views):
            lh.track(email, "page_view", clock.now - timedelta(days=n + 1))
    return lh


def test_hot_now_mine_and_team(team: Leadheat) -> None:
    everyone = hot_queue(team)
    assert [i.label for i in everyone] == ["Ana", "Cy", "Bo"]  # hottest first, qualified only
    assert [i.heat for i in everyone] == sorted((i.heat for i in everyone), reverse=True)
    assert [i.label for i in hot_queue(team, "rita@x.com")] == ["Ana", "Cy"]
    assert hot_queue(team, "nobody@x.com") == []
    assert all(i.hot_until is not None and i.grade.endswith("1") for i in everyone)
    team.outcome("cy@globex.example.com", "won")
    assert [i.label for i in hot_queue(team, "rita@x.com")] == ["Ana"]


def test_the_sla_deadline_shows_until_the_first_touch(lh: Leadheat, clock: Clock) -> None:
    lh.apply_playbook(DEMO_MAKES_HOT)
    lh.add_rep("rita@x.com")
    lh.upsert_leads([LeadInput([parse_lead_key("ana@x.com")], {"title": "CTO"})])
    lh.track("ana@x.com", "demo_request")
    (item,) = hot_queue(lh)
    assert item.owner == "rita@x.com" and item.sla_deadline is not None
    assert item.sla_deadline > clock.now
    lh.touch("ana@x.com", "call", rep="rita@x.com")
    assert hot_queue(lh)[0].sla_deadline is None


FILTERS = [
    ListFilter(),
    ListFilter(temperature="hot"),
    ListFilter(temperature="warm"),
    ListFilter(temperature="cold"),
    ListFilter(owner="rita@x.com"),
    ListFilter(source="ads"),
    ListFilter(grade="A"),
    ListFilter(grade="D3"),
    ListFilter(search="GLOBEX"),
    ListFilter(search="bo@"),
    ListFilter(temperature="hot", owner="rita@x.com", grade="a1"),
    ListFilter(temperature="cold", source="ads"),
]


def passes(row: ListRow, wanted: ListFilter) -> bool:
    text = " ".join(v or "" for v in (row.email, row.name, row.company)).lower()
    return (
        (not wanted.temperature or row.temperature == wanted.temperature)
        and (not wanted.owner or (row.owner or "").casefold() == wanted.owner.casefold())
        and (not wanted.source or row.source == wanted.source)
        and (not wanted.grade or row.grade.startswith(wanted.grade.upper()))
        and (not wanted.search or wanted.search.lower() in text)
    )


@pytest.mark.parametrize("wanted", FILTERS, ids=repr)
def test_lists_filter_like_the_obvious_filter_over_every_lead(
    team: Leadheat, wanted: ListFilter
) -> None:
    everyone = list(matching(team, ListFilter()))
    assert len(everyone) == len(PEOPLE)
    expected = [row.lead_id for row in everyone if passes(row, wanted)]
    assert [row.lead_id for row in matching(team, wanted)] == expected
    first, more = page_of(team, wanted, limit=2)
    assert [row.lead_id for row in first] == expected[:2] and more == (len(expected) > 2)
    second, _ = page_of(team, wanted, limit=2, offset=2)
    assert [row.lead_id for row in second] == expected[2:4]


@pytest.mark.parametrize("wanted", FILTERS[3:8], ids=repr)
def test_lists_with_several_half_lives(team: Leadheat, wanted: ListFilter) -> None:
    faster = "[signals.page_view]\npoints = 1\n"
    team.apply_playbook(DEMO_MAKES_HOT.replace(faster, faster + 'half_life = "2d"\n'))
    assert len(team.playbook()[1].half_lives) == 2
    expected = [row.lead_id for row in matching(team, ListFilter()) if passes(row, wanted)]
    assert [row.lead_id for row in matching(team, wanted)] == expected


def test_a_bad_temperature_is_refused() -> None:
    with pytest.raises(ValueError, match="temperature 'tepid' must be hot, warm or cold"):
        ListFilter(temperature="tepid")


def test_csv_export(team: Leadheat) -> None:
    team.upsert_leads([LeadInput([parse_lead_key("x@evil.example.com")], {"name": "=cmd()"})])
    text = "".join(csv_lines(matching(team, ListFilter(search="evil"))))
    header, row = list(csv.reader(io.StringIO(text)))
    assert header[:4] == ["id", "email", "name", "company"]
    assert row[1:3] == ["x@evil.example.com", "'=cmd()"]  # a spreadsheet will not run it


def test_lead_page_and_heat_chart(team: Leadheat, clock: Clock) -> None:
    page = lead_page(team, "ana@acme.example.com")
    assert page.view.score.temperature.value == "hot"
    assert page.hot_heat == 20 and page.warm_heat == 5
    assert [item["kind"] for item in page.timeline].count("event") == 5
    series = heat_series(team, page.lead_id, clock.now)
    instants = [at for at, _ in series]
    assert instants == sorted(instants) and instants[-1] == clock.now
    assert series[-1][1] == pytest.approx(page.view.score.heat, rel=1e-9)
    svg = heat_chart(series, [Threshold("hot", 20, "hot"), Threshold("warm", 5, "warm")], "Heat")
    assert "hot 20" in svg and "warm 5" in svg and svg.count("<path") == 2
    assert "No engagement yet" in heat_chart([], [], "Heat")


def test_a_cold_list_skips_only_the_leads_surely_warm_or_hot(lh: Leadheat, clock: Clock) -> None:
    """The cold list leaves out unjudged the leads recently engaged with no churn since; a
    churned lead engaged as recently, or one engaged long ago, is still listed."""
    lh.apply_playbook(DEMO_MAKES_HOT + 'churn_events = ["trial_expired"]\n')
    days = {"recent": [1], "churned": [2], "old": [60, 61], "hot": [0.1], "never": []}
    lh.upsert_leads(
        [
            LeadInput(keys=[parse_lead_key(f"{n}@x.example.com")], fields={"title": "CTO"})
            for n in days
        ],
        react=False,
    )
    for name, ago in days.items():
        for n in ago:
            kind = "demo_request" if name == "hot" else "page_view"
            lh.track(f"{name}@x.example.com", kind, clock.now - timedelta(days=n))
    lh.track("churned@x.example.com", "trial_expired", clock.now - timedelta(days=1))
    everyone = list(matching(lh, ListFilter()))
    expected = [row.email for row in everyone if row.temperature == "cold"]
    assert sorted(expected) == ["churned@x.example.com", "never@x.example.com", "old@x.example.com"]
    assert [row.email for row in matching(lh, ListFilter(temperature="cold"))] == expected


def test_lists_count_what_sql_can_count_exactly(team: Leadheat) -> None:
    assert count_of(team, ListFilter()) == len(PEOPLE)
    assert count_of(team, ListFilter(owner="RITA@x.com")) == 3
    assert count_of(team, ListFilter(search="acme")) == 2
    assert count_of(team, ListFilter(source="ads", search="initech")) == 1
    # a temperature or a grade is judged lead by lead: the page counts as it goes
    assert count_of(team, ListFilter(temperature="hot")) is None
    assert count_of(team, ListFilter(grade="A")) is None
