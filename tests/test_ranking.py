"""Lists answer from the forward-decay index, and agree exactly with scoring from history."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from sqlalchemy import event

from conftest import NOW, Clock
from leadheat.identity import LeadKey
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent

PLAYBOOK_TWO_HALF_LIVES = """
[decay]
half_life = "7d"
[signals.page_view]
points = 2
[signals.form_submit]
points = 12
half_life = "1d"
[signals.trial_signup]
points = 15
half_life = "30d"
[fit]
qualified_at = 5
[[fit.rules]]
field = "title"
matches = "(?i)vp|head"
points = 10
[temperature]
hot_heat = 15
warm_heat = 4
"""


def populate(lh: Leadheat, seed: int, leads: int = 60) -> None:
    rng = random.Random(seed)
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("email", f"p{i}@example.com")],
                {"title": rng.choice(["VP Sales", "Head of Ops", "Analyst", ""])},
                NOW - timedelta(days=300),
            )
            for i in range(leads)
        ]
    )
    events = []
    for n in range(leads * 12):
        lead = LeadKey("email", f"p{rng.randrange(leads)}@example.com")
        days = 20 if rng.random() < 0.6 else 250
        at = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * days))
        kind = rng.choice(["page_view", "form_submit", "trial_signup", "newsletter_signup"])
        events.append(NewEvent(lead, kind, at, f"r{n}"))
    lh.record_events(events)
    for i in range(0, leads, 3):
        for kind in ("need", "budget", "timeline"):
            lh.evidence(
                f"p{i}@example.com",
                kind,
                "yes, stated",
                NOW - timedelta(days=rng.randrange(1, 120)),
            )


def from_history(lh: Leadheat, now: object) -> list[tuple[str, str, float]]:
    """Every lead scored from scratch, hottest first: the slow, obviously correct answer."""
    rows = []
    for row in lh.leads(limit=None):
        score = lh.show(row.lead_id, now).score  # type: ignore[arg-type]
        rows.append((row.email or "", score.temperature.value, score.heat))
    rows.sort(key=lambda r: (-r[2], r[0]))
    return rows


@pytest.mark.parametrize(
    "playbook", [None, PLAYBOOK_TWO_HALF_LIVES], ids=["one", "three-half-lives"]
)
def test_index_lists_equal_scoring_every_lead_from_history(
    lh: Leadheat, clock: Clock, playbook: str | None
) -> None:
    if playbook:
        lh.apply_playbook(playbook)
    populate(lh, seed=5)
    seen: set[str] = set()
    for later in (timedelta(0), timedelta(hours=5), timedelta(days=3), timedelta(days=40)):
        clock.now = NOW + later
        truth = from_history(lh, clock.now)
        seen.update(t for _, t, _ in truth)
        listed = [(r.email, r.temperature.value, r.heat) for r in lh.leads()]
        for (email, _, heat), (email2, _, heat2) in zip(listed, truth, strict=True):
            # same order; ties may list equal heats in either order
            assert math.isclose(heat, heat2, rel_tol=1e-9, abs_tol=1e-12), (email, email2)
        truth_by_email = {e: t for e, t, _ in truth}
        assert {e: t for e, t, _ in listed} == truth_by_email
        for wanted in ("hot", "warm", "cold"):
            got = [r.email for r in lh.leads(temperature=wanted)]
            expected = [e for e, t, _ in truth if t == wanted]
            assert sorted(got) == sorted(expected)
            assert [r.email for r in lh.leads(temperature=wanted, limit=3)] == got[:3]
        hot = lh.hot()
        assert [r.email for r in hot] == [e for e, t, _ in truth if t == "hot"]
        assert [r.heat for r in hot] == sorted((r.heat for r in hot), reverse=True)
    assert seen == {"hot", "warm", "cold"}


def test_time_travel_gives_the_values_the_lead_had_then(lh: Leadheat, clock: Clock) -> None:
    lh.upsert_leads([LeadInput([LeadKey("email", "t@example.com")], {"title": "VP Sales"})])
    for kind in ("need", "budget", "timeline"):
        lh.evidence("t@example.com", kind, "yes", NOW - timedelta(days=2))
    lh.track("t@example.com", "trial_signup", NOW - timedelta(days=1))
    lh.track("t@example.com", "form_submit", NOW - timedelta(hours=1))
    then = NOW - timedelta(minutes=30)
    before = lh.show("t@example.com", then).score
    assert before.temperature.value == "hot"
    assert [r.email for r in lh.hot(then)] == ["t@example.com"]

    clock.now = NOW + timedelta(days=10)
    lh.track("t@example.com", "demo_request", NOW + timedelta(days=9))
    lh.outcome("t@example.com", "won", NOW + timedelta(days=9))
    after = lh.show("t@example.com", then).score
    assert after.heat == before.heat
    assert (after.temperature, after.status, after.hot_until) == (
        before.temperature,
        "open",
        before.hot_until,
    )
    listed = lh.hot(then)
    assert [r.email for r in listed] == ["t@example.com"]
    assert math.isclose(listed[0].heat, before.heat, rel_tol=1e-12)
    assert lh.hot() == []  # won since: not on today's call list


def captured_heat_key_queries(lh: Leadheat) -> list[tuple[str, object]]:
    """The SELECTs on ``heat_keys`` that ``hot`` and ``leads`` send, with their parameters."""
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "heat_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(lh.engine, "before_cursor_execute", capture)
    assert lh.hot()
    assert lh.leads(limit=5)
    assert lh.leads(temperature="warm", limit=5)
    event.remove(lh.engine, "before_cursor_execute", capture)
    assert statements
    return statements


def test_hot_and_leads_use_the_index_not_a_scan(lh: Leadheat) -> None:
    populate(lh, seed=2, leads=30)
    statements = captured_heat_key_queries(lh)
    with lh.engine.connect() as connection:
        if lh.engine.dialect.name == "postgresql":
            # A table this small is cheaper to scan; forbid that to see the plan at scale.
            connection.exec_driver_sql("SET enable_seqscan = off")
            for statement, parameters in statements:
                rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)  # type: ignore[arg-type]
                plan = " | ".join(row[0] for row in rows)
                assert "Seq Scan on heat_keys" not in plan, plan
                assert "heat_keys_rank" in plan or "heat_keys_pkey" in plan, plan
            return
        for statement, parameters in statements:
            plan = " | ".join(
                row[-1]
                for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)  # type: ignore[arg-type]
            )
            assert "SCAN heat_keys" not in plan, plan
            assert "TEMP B-TREE FOR" not in plan, plan  # no sort of the whole index
            assert (
                "INDEX ix_heat_keys_rank" in plan
                or "USING PRIMARY KEY" in plan
                or ("sqlite_autoindex_heat_keys" in plan)
            ), plan
