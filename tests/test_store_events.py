"""The stored state equals a replay of history, on a real database, whatever the order."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conftest import NOW, Clock
from leadheat.identity import LeadKey
from leadheat.scoring.heat import Engagement, replay_heat
from leadheat.service import Leadheat, LeadheatError
from leadheat.store.events import NewEvent
from leadheat.store.models import Event, Lead, LeadState

TYPES = ["page_view", "product_view", "form_submit", "trial_signup", "add_to_cart", "webinar"]


def random_history(rng: random.Random, leads: int, events: int) -> list[NewEvent]:
    history = []
    for n in range(events):
        lead = LeadKey("email", f"lead{rng.randrange(leads)}@example.com")
        at = NOW - timedelta(seconds=rng.randrange(0, 200 * 86400))
        props = {"url": "/pricing"} if rng.random() < 0.2 else None
        history.append(NewEvent(lead, rng.choice(TYPES), at, f"e{n}", props))
    return history


def replay(lh: Leadheat, history: list[NewEvent], email: str, now: object) -> float:
    _, book = lh.playbook()
    return replay_heat(
        [
            Engagement(e.at, book.points_for(e.type, e.properties), book.half_life_for(e.type))
            for e in sorted(history, key=lambda e: e.at)
            if e.lead.value == email
        ],
        now,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_out_of_order_batches_and_redeliveries_equal_a_sorted_replay(
    lh: Leadheat, seed: int
) -> None:
    rng = random.Random(seed)
    history = random_history(rng, leads=25, events=600)
    deliveries = history + rng.sample(history, 150)  # SDK retries
    rng.shuffle(deliveries)
    for start in range(0, len(deliveries), 97):
        lh.record_events(deliveries[start : start + 97])
    with lh.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == 600
    for row in lh.leads():
        assert row.email is not None
        expected = replay(lh, history, row.email, NOW)
        assert math.isclose(row.heat, expected, rel_tol=1e-9), row.email
        assert math.isclose(lh.show(row.email).score.heat, expected, rel_tol=1e-9)


def test_redelivering_a_batch_stores_nothing_new(lh: Leadheat) -> None:
    history = random_history(random.Random(3), leads=5, events=50)
    first = lh.record_events(history)
    again = lh.record_events(history)
    assert (first.stored, first.duplicates) == (50, 0)
    assert (again.stored, again.duplicates) == (0, 50)
    assert [r.heat for r in lh.leads()] == pytest.approx([r.heat for r in lh.leads()])


def test_created_at_is_the_first_event_even_when_it_arrives_late(lh: Leadheat) -> None:
    lh.track("late@example.com", "page_view", NOW - timedelta(days=1))
    lh.track("late@example.com", "page_view", NOW - timedelta(days=30))
    with lh.engine.connect() as connection:
        created = connection.execute(select(Lead.created_at)).scalar_one()
    assert created == NOW - timedelta(days=30)


def test_future_events_are_rejected(lh: Leadheat) -> None:
    with pytest.raises(LeadheatError, match="future"):
        lh.track("a@example.com", "page_view", NOW + timedelta(minutes=6))
    lh.track("a@example.com", "page_view", NOW + timedelta(minutes=4))


def test_merging_identities_merges_histories(lh: Leadheat) -> None:
    lh.track("anon:visitor-1", "product_view", NOW - timedelta(hours=3))
    lh.track("anon:visitor-1", "add_to_cart", NOW - timedelta(hours=2))
    lh.track("ana@example.com", "form_submit", NOW - timedelta(hours=1))
    lh.merge("ana@example.com", "anon:visitor-1")
    view = lh.show("ana@example.com")
    assert view.score.events_seen == 3
    expected = sum(p * 2 ** (-(h / 24) / 7) for p, h in [(3, 3), (8, 2), (10, 1)])
    assert math.isclose(view.score.heat, expected, rel_tol=1e-9)
    assert [r.email for r in lh.leads()] == ["ana@example.com"]
    assert lh.show("anon:visitor-1").lead["id"] == view.lead["id"]


def test_state_follows_a_playbook_change(lh: Leadheat, clock: Clock) -> None:
    lh.track("a@example.com", "webinar", NOW - timedelta(days=1))
    assert lh.leads()[0].heat == 0
    version = lh.apply_playbook('[signals.webinar]\npoints = 16\nhalf_life = "1d"\n')
    assert version == 2
    assert math.isclose(lh.leads()[0].heat, 8, rel_tol=1e-12)
    assert lh.show("a@example.com").playbook_version == 2


def test_a_new_lead_whose_only_event_was_a_redelivery_still_has_a_state(lh: Leadheat) -> None:
    lh.record_events([NewEvent(LeadKey("email", "a@example.com"), "form_submit", NOW, "same")])
    report = lh.record_events(
        [NewEvent(LeadKey("email", "b@example.com"), "form_submit", NOW, "same")]
    )
    assert (report.stored, report.leads_created) == (0, 1)
    listed = {row.email: row for row in lh.leads()}
    assert listed["b@example.com"].heat == 0
    assert listed["b@example.com"].temperature.value == "cold"


def test_a_write_scores_by_the_playbook_another_process_applied_a_moment_before(
    lh: Leadheat, db_url: str, clock: Clock
) -> None:
    lh.track("ana@example.com", "webinar_joined", at=NOW)
    assert lh.playbook()[0] == 1  # this process has just read version 1
    other = Leadheat(db_url, clock=clock)
    try:
        other.apply_playbook("[signals.webinar_joined]\npoints = 40\n")
    finally:
        other.close()
    lh.track("bob@example.com", "webinar_joined", at=NOW)  # within the second it trusts v1
    with lh.engine.connect() as connection:
        versions = connection.execute(select(LeadState.playbook_version)).scalars().all()
    assert versions == [2, 2]
    assert [row.heat for row in lh.leads()] == [pytest.approx(40), pytest.approx(40)]
    assert lh.playbook()[0] == 2
