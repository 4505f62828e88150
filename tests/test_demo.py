"""The synthetic demo population: reproducible, plainly labelled, and hot/warm/cold as designed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from leadheat.demo import (
    DEMO_SOURCE,
    HISTORY_DAYS,
    PERSONAS,
    SLOTS,
    SYNTHETIC_NOTE,
    DemoPopulation,
    generate_demo,
    load_demo,
)
from leadheat.service import Leadheat
from leadheat.store.models import Event, EvidenceRow, Outcome, Touch

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
EXPECTED = {persona.name: persona.expected for persona in PERSONAS}


@pytest.fixture
def lh(tmp_path: Path) -> Leadheat:
    """A fresh, initialised database whose clock stands still at NOW."""
    service = Leadheat("sqlite:///" + str(tmp_path / "demo.db"), clock=lambda: NOW)
    service.init()
    return service


@pytest.fixture
def population() -> DemoPopulation:
    return generate_demo(7, now=NOW, leads=400)


def _persona_by_email(population: DemoPopulation) -> dict[str, str]:
    return {lead.keys[0].value: lead.fields["demo_persona"] for lead in population.leads}


def _row_counts(lh: Leadheat) -> dict[str, int]:
    with lh.engine.connect() as connection:
        return {
            model.__tablename__: connection.execute(
                select(func.count()).select_from(model)
            ).scalar_one()
            for model in (Event, EvidenceRow, Touch, Outcome)
        }


# -- generating -----------------------------------------------------------------------------
def test_same_seed_and_now_give_the_same_population(population: DemoPopulation) -> None:
    assert generate_demo(7, now=NOW, leads=400) == population


def test_a_different_seed_gives_a_different_population(population: DemoPopulation) -> None:
    other = generate_demo(8, now=NOW, leads=400)
    assert other.leads != population.leads
    assert other.events != population.events


def test_a_smaller_population_is_a_prefix_of_a_larger_one(population: DemoPopulation) -> None:
    small = generate_demo(7, now=NOW, leads=50)
    assert small.leads == population.leads[:50]
    assert small.events == population.events[: len(small.events)]


def test_personas_get_their_exact_share(population: DemoPopulation) -> None:
    assert sum(persona.slots for persona in PERSONAS) == SLOTS
    counts = Counter(_persona_by_email(population).values())
    assert counts == {p.name: p.slots * 400 // SLOTS for p in PERSONAS}


def test_every_lead_is_labelled_synthetic(population: DemoPopulation) -> None:
    assert population.synthetic
    assert "SYNTHETIC" in SYNTHETIC_NOTE
    for lead in population.leads:
        assert lead.fields["synthetic"] is True
        assert lead.fields["source"].startswith(DEMO_SOURCE)
        assert lead.keys[0].kind == "email"
        assert lead.keys[0].value.endswith(RESERVED_DOMAINS)


def test_emails_and_event_ids_are_unique(population: DemoPopulation) -> None:
    emails = [lead.keys[0].value for lead in population.leads]
    assert len(set(emails)) == len(emails)
    ids = [event.event_id for event in population.events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("demo-7-") for i in ids)


def test_every_instant_lies_in_the_demo_history(population: DemoPopulation) -> None:
    oldest = NOW - timedelta(days=HISTORY_DAYS)
    instants = [
        *(e.at for e in population.events),
        *(t.at for t in population.touches),
        *(o.at for o in population.outcomes),
        *(e.at for e in population.evidence),
        *(lead.created_at for lead in population.leads if lead.created_at is not None),
    ]
    assert all(oldest <= at <= NOW for at in instants)


def test_every_lead_has_an_event(population: DemoPopulation) -> None:
    """load_demo relies on it: events create the leads and gate reloading."""
    with_events = {event.lead.value for event in population.events}
    assert with_events == set(_persona_by_email(population))


def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        generate_demo(now=datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="zero or more"):
        generate_demo(now=NOW, leads=-1)


# -- loading --------------------------------------------------------------------------------
def test_loaded_demo_is_hot_warm_and_cold_as_designed(
    lh: Leadheat, population: DemoPopulation
) -> None:
    summary = load_demo(lh, seed=7, leads=400)
    assert (summary.leads, summary.events) == (400, len(population.events))
    assert (summary.touches, summary.outcomes, summary.evidence) == (
        len(population.touches),
        len(population.outcomes),
        len(population.evidence),
    )

    hot = lh.hot()
    assert len(hot) >= 10
    assert lh.leads(temperature="warm")
    assert lh.leads(temperature="cold")
    for row in hot[:: max(1, len(hot) // 5)]:
        view = lh.show(row.email or "")
        assert view.score.temperature == "hot"
        assert view.lead["attributes"]["synthetic"] is True

    persona = _persona_by_email(population)
    misplaced = [
        (row.email, persona[row.email or ""], row.temperature.value, row.reason)
        for row in lh.leads()
        if row.temperature.value != EXPECTED[persona[row.email or ""]]
    ]
    assert misplaced == []


def test_students_are_disqualified_and_expired_trials_kept_for_win_back(
    lh: Leadheat, population: DemoPopulation
) -> None:
    load_demo(lh, seed=7, leads=100)
    persona = _persona_by_email(population)
    student = next(email for email, name in persona.items() if name == "student")
    expired = next(email for email, name in persona.items() if name == "expired_trial")
    assert not lh.show(student).score.qualified
    expired_score = lh.show(expired).score
    assert expired_score.temperature == "cold"
    assert expired_score.previously_engaged


def test_loading_twice_adds_nothing(lh: Leadheat) -> None:
    first = load_demo(lh, leads=100)
    counts = _row_counts(lh)
    hot = [row.lead_id for row in lh.hot()]
    again = load_demo(lh, leads=100, now=NOW - timedelta(hours=1))
    assert (again.events, again.touches, again.outcomes, again.evidence) == (0, 0, 0, 0)
    assert again.duplicate_events == first.events
    assert _row_counts(lh) == counts
    assert [row.lead_id for row in lh.hot()] == hot


def test_growing_the_population_loads_only_the_new_leads(lh: Leadheat) -> None:
    load_demo(lh, leads=50)
    grown = load_demo(lh, leads=100)
    small, large = generate_demo(now=NOW, leads=50), generate_demo(now=NOW, leads=100)
    assert grown.events == len(large.events) - len(small.events)
    assert grown.touches == len(large.touches) - len(small.touches)
    assert _row_counts(lh)["events"] == len(large.events)
    assert _row_counts(lh)["touches"] == len(large.touches)
