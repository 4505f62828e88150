"""The report's fast path (:mod:`leadheat.analytics.columns`) against the replay of every
lead's history it replaced: on seeded, generated histories with everything that moves a
number (two half-lives, a negative signal, a property rule, churn, BANT evidence going stale,
outcomes before and after the first touch, SLA clocks, accounts, a lead merged away), the
decisions, the heat trend and the account breakdowns are equal, heat to the bit."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conftest import Clock
from leadheat.analytics.accounts import Members, account_decisions, folded_account_decisions
from leadheat.analytics.columns import decision_rows, load_columns, snapshots_at
from leadheat.analytics.decisions import DEFAULT_HORIZON, load_story
from leadheat.analytics.pipeline import snapshots, trend_instants
from leadheat.analytics.report import build_report
from leadheat.identity import parse_lead_key
from leadheat.ingest.records import EvidenceInput, OutcomeInput, TouchInput
from leadheat.playbook import default_playbook_text
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
PLAYBOOK = (
    default_playbook_text()
    + '\n[signals.careers_view]\npoints = -12\nhalf_life = "2d"\n'
    + '[signals.webinar]\npoints = 25\nhalf_life = "30d"\n'
    + "[speed.triggers.hot]\nbusiness_hours = false\n"
)
TYPES = (
    "page_view", "email_click", "demo_request", "careers_view", "webinar", "trial_expired",
    "email_open", "unknown_thing",
)  # fmt: skip
SAID = ("yes", "yes", "no", "2026-09-01")
"""BANT answers: most affirm, one denies, one is a timeline that passes."""
DOMAINS = ("acme.io", "initech.io", "globex.io", "gmail.com")


def history(lh: Leadheat, clock: Clock, seed: int, leads: int = 60) -> None:
    """Leads arriving over 140 days with events out of order, then touches, outcomes,
    evidence and one merge."""
    rng = random.Random(seed)
    emails = [f"p{i}@{rng.choice(DOMAINS)}" for i in range(leads)]
    titles = ("VP Sales", "intern", "Engineer", None, "CTO")
    for batch in range(5):  # leads arrive over 140 days
        clock.now = T0 + batch * 35 * DAY
        lh.upsert_leads(
            [
                LeadInput(
                    [parse_lead_key(email)],
                    {"title": rng.choice(titles), "source": rng.choice(("ads", "web", ""))},
                )
                for email in emails[batch::5]
            ],
            react=False,
        )
    events = []
    for n in range(leads * 15):
        kind = rng.choice((*TYPES, "demo_request", "webinar"))
        at = T0 + timedelta(seconds=rng.randrange(200 * 86_400))
        properties = {"url": rng.choice(("/pricing", "/blog"))} if kind == "page_view" else {}
        events.append(NewEvent(parse_lead_key(rng.choice(emails)), kind, at, f"e{n}", properties))
    rng.shuffle(events)
    clock.now = T0 + 210 * DAY
    lh.record_events(events)
    lh.record_touches(
        [
            TouchInput(parse_lead_key(email), "call", T0 + timedelta(hours=rng.randrange(4800)),
                       rep=rng.choice(("anna@x.com", "ben@x.com", None)))
            for email in rng.sample(emails, leads // 2)
            for _ in range(rng.randrange(1, 3))
        ]
    )  # fmt: skip
    lh.record_outcomes(
        [
            OutcomeInput(parse_lead_key(email), rng.choice(("won", "lost", "disqualified")),
                         T0 + timedelta(hours=rng.randrange(4800)))
            for email in rng.sample(emails, leads // 3)
        ]
    )  # fmt: skip
    lh.record_evidence(
        [
            EvidenceInput(parse_lead_key(email), kind, rng.choice(SAID),
                          T0 + timedelta(hours=rng.randrange(4800)))
            for email in rng.sample(emails, leads * 2 // 3)
            for kind in ("need", "budget", "timeline")
        ]
    )  # fmt: skip
    lh.merge(emails[1], emails[2])


@pytest.fixture
def generated(db_url: str, clock: Clock, request: pytest.FixtureRequest) -> Iterator[Leadheat]:
    clock.now = T0
    lh = Leadheat(db_url, clock=clock)
    lh.init(PLAYBOOK)
    history(lh, clock, request.param)
    yield lh
    lh.close()


@pytest.mark.parametrize("generated", [1, 2, 3], indirect=True)
@pytest.mark.parametrize(
    ("since", "until"),
    [(None, T0 + 210 * DAY), (T0 + 40 * DAY, T0 + 150 * DAY), (None, T0 + 20 * DAY)],
)
def test_the_columns_give_what_the_replay_gives(
    generated: Leadheat, since: datetime | None, until: datetime
) -> None:
    _, book = generated.playbook()
    with generated.engine.connect() as connection:
        story = load_story(connection, until, since=since)
        replayed = story.decisions(book, DEFAULT_HORIZON)
        columns = load_columns(connection, book, until)
        fast = decision_rows(columns, book, DEFAULT_HORIZON, since)
        assert fast == replayed  # heat included, to the bit
        assert folded_account_decisions(connection, columns, book, fast) == account_decisions(
            Members(connection), book, replayed
        )
    instants = trend_instants(since or T0, until, 8)
    trend = snapshots_at(columns, book, since, instants)
    assert trend == snapshots(story.leads, book, instants)
    if since is None and until == T0 + 210 * DAY:  # the history holds every case
        assert {r.temperature for r in fast} >= {"warm", "cold"}
        assert {r.label for r in fast} >= {0, 1} and any(r.response for r in fast)
        assert sum(s.hot for s in trend) > 0 and sum(s.warm for s in trend) > 0


@pytest.mark.parametrize("generated", [4], indirect=True)
def test_the_report_counts_every_lead_once(generated: Leadheat) -> None:
    data = build_report(generated, until=T0 + 210 * DAY).as_json()
    assert data["leads"] == 59  # sixty, one merged away
    assert sum(r["leads"] for r in data["by_temperature"]) == data["leads"] - data["censored"]
