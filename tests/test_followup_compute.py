"""The follow-up state's shortcuts against their references, on random histories: the spells
:func:`leadheat.engage.followup.timeline` finds (one pass of facts, a forecast only where it
can fall before the next instant) against :func:`leadheat.engage.spells.spells` (a full
score at every instant), and the state computed from :func:`leadheat.store.lives.load_lives`
(plain rows, properties only where a rule reads them) against the same from
:func:`leadheat.store.training.load_everything` (the ORM)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW
from leadheat.engage.followup import _calendars, compute, timeline
from leadheat.engage.spells import spells
from leadheat.identity import LeadKey
from leadheat.ingest.records import EvidenceInput, OutcomeInput, TouchInput
from leadheat.playbook import Playbook, parse_playbook
from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.fit import fit_scorer, score_fit
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.scoring.temperature import LeadFacts, classify, heat_free
from leadheat.service import Leadheat, LeadInput
from leadheat.speed.calendar import BusinessCalendar
from leadheat.store.events import NewEvent
from leadheat.store.lives import load_lives
from leadheat.store.training import load_everything
from leadheat.times import MAX_INSTANT

PLAYBOOK = """
[fit]
qualified_at = 5
[[fit.rules]]
field = "title"
matches = "(?i)vp|head"
points = 10
[[fit.rules]]
field = "title"
matches = "(?i)student"
disqualify = true
[signals.demo]
points = 40
[signals.visit]
points = 6
half_life = "2d"
[signals.careers]
points = -30
half_life = "1d"
[signals.page_view]
points = 1
[[signals.page_view.rules]]
property = "url"
matches = "/pricing"
points = 25
[temperature]
hot_requires = %s
churn_events = ["trial_expired"]
[speed]
enabled = false
[speed.teams.emea]
timezone = "Europe/Paris"
[cadence]
business_hours = %s
[cadence.hot]
every = "1d"
[cadence.warm]
every = "2d"
enabled = %s
[cadence.cold]
every = "1 business day"
"""
KINDS = ["demo", "visit", "careers", "page_view", "newsletter", "trial_expired"]
URLS = ["/pricing", "/blog", None]
MINUTE = timedelta(minutes=1)
SPAN = 60 * 24 * 60  # minutes: two months of history


def book_of(requires: str, business_hours: bool, warm_enabled: bool) -> Playbook:
    flags = (requires, str(business_hours).lower(), str(warm_enabled).lower())
    return parse_playbook(PLAYBOOK % flags)


events = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, SPAN), st.sampled_from(URLS)), max_size=12
)
evidence = st.lists(
    st.tuples(
        st.sampled_from(["budget", "need"]), st.sampled_from(["yes", "no"]), st.integers(0, SPAN)
    ),
    max_size=3,
)
outcomes = st.lists(
    st.tuples(st.sampled_from(["won", "lost", "disqualified"]), st.integers(0, SPAN)), max_size=2
)


@settings(max_examples=300, deadline=None)
@given(
    events=events,
    evidence=evidence,
    outcomes=outcomes,
    title=st.sampled_from(["VP Sales", "Analyst", "Student", ""]),
    requires=st.sampled_from(['["budget"]', "[]"]),
    created=st.integers(0, SPAN),
)
def test_timeline_finds_the_spells_a_full_score_at_every_instant_finds(
    events: list[tuple[str, int, str | None]],
    evidence: list[tuple[str, str, int]],
    outcomes: list[tuple[str, int]],
    title: str,
    requires: str,
    created: int,
) -> None:
    book = book_of(requires, False, True)
    base = NOW - SPAN * MINUTE
    history = LeadHistory(
        {"title": title},
        sorted(  # as the store reads them: in time order
            (
                EventRecord(kind, base + at * MINUTE, {"url": url} if url else {})
                for kind, at, url in events
            ),
            key=lambda event: event.at,
        ),
        [EvidenceItem(kind, value, base + at * MINUTE) for kind, value, at in evidence],
        sorted(
            (OutcomeRecord(outcome, base + at * MINUTE) for outcome, at in outcomes),
            key=lambda outcome: outcome.at,
        ),
    )
    instants = [e.at for e in history.events] + [i.stated_at for i in history.evidence]
    start = min([base + created * MINUTE, *instants, *(o.at for o in history.outcomes)])
    fit = score_fit(history.attributes, book.fit.rules, book.fit.qualified_at)
    found = [(run.temperature, run.start, run.end) for run in timeline(history, book, start, fit)]
    truth = [(s.temperature, s.start, s.end) for s in spells(history, book, start, MAX_INSTANT)]
    assert found == truth


QUIET_PLAYBOOK = """
[fit]
qualified_at = 5
[[fit.rules]]
field = "title"
matches = "(?i)vp"
points = 10
[signals.visit]
points = 6
half_life = "2d"
[signals.careers]
points = -30
half_life = "1d"
[signals.trial_expired]
points = 3
[signals.page_view]
points = 1
[[signals.page_view.rules]]
property = "url"
matches = "/pricing"
points = 25
[temperature]
hot_requires = %s
churn_events = ["trial_expired"]
warm_window = "%s"
cold_after = "%s"
%s
"""
HOUR = timedelta(hours=1)


@settings(max_examples=400, deadline=None)
@given(
    bursts=st.lists(
        st.tuples(
            st.integers(0, 20 * 24),  # when the burst starts, in hours
            st.lists(
                st.tuples(
                    st.sampled_from(["visit", "page_view", "careers", "trial_expired", "other"]),
                    st.integers(0, 90),  # minutes into the burst
                    st.sampled_from(URLS),
                ),
                min_size=1,
                max_size=6,
            ),
        ),
        max_size=4,
    ),
    title=st.sampled_from(["VP Sales", "Analyst"]),
    requires=st.sampled_from(['["budget"]', "[]"]),
    windows=st.sampled_from([("2d", "5d"), ("5d", "2d"), ("30d", "180d")]),
    floor=st.sampled_from(["", "hot_min_probability = 0.5"]),
    evidence=st.booleans(),
    created=st.integers(0, 20 * 24),
)
def test_instants_judged_quiet_give_the_spells_a_full_score_gives(
    bursts: list[tuple[int, list[tuple[str, int, str | None]]]],
    title: str,
    requires: str,
    windows: tuple[str, str],
    floor: str,
    evidence: bool,
    created: int,
) -> None:
    """Bursts of events with gaps longer and shorter than the warm window and
    ``cold_after``, negative signals and churns among them, leads that can and cannot be
    hot: the timeline that skips its quiet instants finds every spell a full score finds."""
    book = parse_playbook(QUIET_PLAYBOOK % (requires, *windows, floor))
    base = NOW - 30 * 24 * HOUR
    history = LeadHistory(
        {"title": title},
        sorted(
            (
                EventRecord(kind, base + hour * HOUR + minute * MINUTE, {"url": url} if url else {})
                for hour, burst in bursts
                for kind, minute, url in burst
            ),
            key=lambda event: event.at,
        ),
        [EvidenceItem("budget", "yes", base + created * HOUR)] if evidence else [],
    )
    instants = [e.at for e in history.events] + [i.stated_at for i in history.evidence]
    start = min([base + created * HOUR, *instants])
    fit = score_fit(history.attributes, book.fit.rules, book.fit.qualified_at)
    found = [(run.temperature, run.start, run.end) for run in timeline(history, book, start, fit)]
    truth = [(s.temperature, s.start, s.end) for s in spells(history, book, start, MAX_INSTANT)]
    assert found == truth


instants = st.one_of(st.none(), st.integers(-SPAN, SPAN).map(lambda m: NOW + m * MINUTE))


@settings(max_examples=500, deadline=None)
@given(
    heat=st.floats(-50, 200),
    qualified=st.booleans(),
    evidence_until=instants,
    engaged=instants,
    churned=instants,
    probability=st.one_of(st.none(), st.floats(0, 1)),
    floor=st.sampled_from(["", "hot_min_probability = 0.4"]),
)
def test_a_heat_free_temperature_is_the_one_classify_gives_at_any_heat(
    heat: float,
    qualified: bool,
    evidence_until: datetime | None,
    engaged: datetime | None,
    churned: datetime | None,
    probability: float | None,
    floor: str,
) -> None:
    book = parse_playbook(f'[temperature]\nwarm_window = "3d"\n{floor}')
    facts = LeadFacts(qualified, 10, False, evidence_until, engaged, churned, probability)
    settled = heat_free(facts, NOW, book)
    if settled is not None:
        assert classify(heat, facts, NOW, book).temperature is settled


FIT_RULES = """
[[fit.rules]]
field = "size"
equals = "1"
points = 5
[[fit.rules]]
field = "size"
range = [1, 10]
points = 3
[[fit.rules]]
field = "title"
matches = "(?i)vp|true"
points = 10
[[fit.rules]]
field = "title"
present = false
disqualify = true
"""
sizes = st.sampled_from([1, 1.0, True, "1", "1.0", None, ["1"]])
titles = st.sampled_from([1, True, "True", "VP", "", None])


@given(st.lists(st.tuples(sizes, titles, st.booleans()), min_size=1, max_size=40))
def test_a_shared_fit_score_is_each_leads_own(leads: list[tuple[object, object, bool]]) -> None:
    fit = parse_playbook(FIT_RULES).fit
    fit_of = fit_scorer(fit.rules, 8)
    for size, title, extra in leads:
        attributes = {"size": size, "title": title} | ({"city": "Oslo"} if extra else {})
        assert fit_of(attributes) == score_fit(attributes, fit.rules, 8)


def test_the_state_from_plain_rows_equals_the_state_from_the_orm(lh: Leadheat) -> None:
    """Leads created by their events, events written out of time order, evidence, outcomes
    (a disqualification among them), touches, owners on teams with their calendars, a
    cadence rule disabled, a fit rule that disqualifies: every lead's state is the same from
    either reader, as are the states the kept index stores."""
    rng = random.Random(7)
    lh.apply_playbook(PLAYBOOK % ('["budget"]', "true", "false"))
    lh.add_rep("ann@team.example")
    lh.add_rep("bob@team.example", team="emea")
    owners = ["ann@team.example", "Bob@Team.example", "cy@team.example", None]
    titles = ["VP Sales", "Head of Ops", "Analyst", "Student", ""]
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("email", f"p{i}@example.com")],
                {"title": rng.choice(titles), "owner": rng.choice(owners), "tier": i % 3},
                NOW - timedelta(days=rng.randrange(20, 60)),
            )
            for i in range(30)
        ]
    )
    written = []
    for n in range(400):  # 40 of them new leads, made by their first event
        key = LeadKey("email", f"p{rng.randrange(40)}@example.com")
        at = NOW - rng.randrange(0, SPAN) * MINUTE
        url = rng.choice(URLS)
        written.append(NewEvent(key, rng.choice(KINDS), at, f"e{n}", {"url": url} if url else {}))
    rng.shuffle(written)
    lh.record_events(written[:200])
    lh.record_events(written[200:])
    lh.record_evidence(
        [
            EvidenceInput(
                LeadKey("email", f"p{i}@example.com"),
                "budget",
                rng.choice(["yes", "no"]),
                NOW - rng.randrange(1, 40) * timedelta(days=1),
            )
            for i in range(0, 40, 2)
        ]
    )
    lh.record_outcomes(
        [
            OutcomeInput(LeadKey("email", f"p{i}@example.com"), outcome, NOW - timedelta(days=1))
            for i, outcome in ((1, "won"), (2, "lost"), (3, "disqualified"))
        ]
    )
    lh.record_touches(
        [
            TouchInput(
                LeadKey("email", f"p{rng.randrange(40)}@example.com"),
                "call",
                NOW - rng.randrange(0, SPAN) * MINUTE,
            )
            for _ in range(40)
        ]
    )
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM leads").all()]
        calendars = _calendars(connection, book)
        default = BusinessCalendar.of(book.speed.team(None))
        plain = [
            compute(lead, book, calendars, default) for lead in load_lives(connection, ids, book)
        ]
        orm = [compute(lead, book, calendars, default) for lead in load_everything(connection, ids)]
    assert len(plain) == 40
    assert {state.owner for state in plain} >= {"ann@team.example", "Bob@Team.example", None}
    assert any(not state.is_open for state in plain)
    assert any(state.phases for state in plain) and any(not state.phases for state in plain)
    assert plain == orm
