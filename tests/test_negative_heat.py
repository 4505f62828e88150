"""Negative signals (issue 20): an ``unsubscribe`` or a ``careers_view`` pulls heat down."""

from __future__ import annotations

import itertools
import math
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW, Cli, Clock, LiveServer
from leadheat.identity import LeadKey
from leadheat.playbook import PlaybookError, parse_playbook
from leadheat.scoring.heat import Engagement, Heat, replay_heat, signed_span_us
from leadheat.scoring.lead import what_it_did
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent
from leadheat.times import from_micros, to_micros
from leadheat.web.auth import add_user
from leadheat.web.leadpage import lead_page

NEGATIVE = """
[signals.pricing_view]
points = 10
half_life = "30d"

[signals.careers_view]
points = -6
half_life = "2d"

[signals.email_click]
points = 2

[[signals.email_click.rules]]
property = "list"
equals = "unsubscribe"
points = -15
"""


def test_the_playbook_accepts_negative_points_and_still_bounds_them() -> None:
    book = parse_playbook(NEGATIVE)
    assert book.points_for("careers_view") == -6
    assert book.points_for("email_click", {"list": "unsubscribe"}) == -15
    assert book.points_for("email_click", {"list": "news"}) == 2
    with pytest.raises(PlaybookError, match=r"signals\.careers_view\.points"):
        parse_playbook("[signals.careers_view]\npoints = -2e6\n")


def test_playbook_check_accepts_a_negative_signal(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(db_url, capsys)
    assert cli("init")[0] == 0
    path = tmp_path / "negative.toml"
    path.write_text(NEGATIVE)
    code, out, err = cli("playbook", "check", str(path))
    assert code == 0 and out.startswith(f"{path}: ok"), err


# -- the heat itself: exact with either sign ----------------------------------------------

instants = st.integers(to_micros(NOW) - 400 * 86_400 * 10**6, to_micros(NOW)).map(from_micros)
half_lives = st.sampled_from([timedelta(hours=3), timedelta(days=1), timedelta(days=30)])
signed_points = st.one_of(
    st.floats(min_value=0.01, max_value=500), st.floats(min_value=-500, max_value=-0.01)
)
engagements = st.lists(st.builds(Engagement, instants, signed_points, half_lives), max_size=30)


def scale_of(history: list[Engagement], now: datetime) -> float:
    """The sum of absolute decayed terms: what float precision is relative to."""
    return replay_heat([Engagement(e.at, abs(e.points), e.half_life) for e in history], now)


@settings(max_examples=200, deadline=None)
@given(engagements, st.randoms(use_true_random=False))
def test_any_arrival_order_of_mixed_signs_equals_the_replay(
    history: list[Engagement], shuffle: random.Random
) -> None:
    heat = Heat()
    for item in shuffle.sample(history, len(history)):
        heat.add(item)
    for now in (NOW, NOW + timedelta(days=3)):
        expected = replay_heat(history, now)
        assert math.isclose(heat.at(now), expected, abs_tol=1e-12 * scale_of(history, now) + 1e-300)
    assert Heat.of_rows(heat.rows()).at(NOW) == heat.at(NOW)
    # one key per half-life and sign, stored under the negated half-life for the negative part
    assert sorted(span for span, *_ in heat.rows()) == sorted(
        {signed_span_us(e.half_life, e.points < 0) for e in history}
    )


def first_crossing(
    history: list[Engagement], theta: float, now: datetime, down: bool
) -> datetime | None:
    """By brute force: the replay on a ten-minute grid over 400 days (past every term's
    fall below θ/n), then bisected to the microsecond."""
    above = replay_heat(history, now) >= theta
    if above != down:
        return None
    grid = np.arange(1, 400 * 144 + 1) * 600.0  # seconds after now
    values = sum(
        e.points * np.exp2(-((now - e.at).total_seconds() + grid) / e.half_life.total_seconds())
        for e in history
    )
    changed = np.flatnonzero((values >= theta) != above)
    if not len(changed):
        return None
    at = int(changed[0])
    low = now + timedelta(seconds=float(grid[at - 1])) if at else now
    high = now + timedelta(seconds=float(grid[at]))
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if (replay_heat(history, middle) >= theta) == above:
            low = middle
        else:
            high = middle
    return high


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.builds(
            Engagement,
            st.integers(0, 10 * 86_400).map(lambda s: NOW - timedelta(seconds=s)),
            signed_points,
            half_lives,
        ),
        min_size=1,
        max_size=6,
    ),
    st.floats(min_value=1, max_value=60),
)
def test_crossings_of_a_non_monotone_heat_are_the_first_ones(
    history: list[Engagement], theta: float
) -> None:
    heat = Heat()
    for item in history:
        heat.add(item)
    tolerance = timedelta(milliseconds=1)
    cools = heat.cools_below(theta, NOW)
    expected = first_crossing(history, theta, NOW, down=True)
    if cools is None or expected is None:
        assert cools is expected or abs(heat.at(NOW) - theta) < 1e-9 * theta
    else:
        assert abs(cools - expected) <= tolerance, (cools, expected)
    rises = heat.warms_to(theta, NOW)
    expected = first_crossing(history, theta, NOW, down=False) if heat.negative else None
    if rises is None or expected is None:
        assert rises is expected, (rises, expected)
    else:
        assert abs(rises - expected) <= tolerance, (rises, expected)


# -- the store: every fold and every list agrees with the replay -------------------------

ONE_POSITIVE_SPAN = """
[decay]
half_life = "7d"
[signals.demo_request]
points = 30
[signals.page_view]
points = 3
[signals.careers_view]
points = -12
half_life = "2d"
[signals.email_click]
points = 2
[[signals.email_click.rules]]
property = "link"
equals = "unsubscribe"
points = -20
[fit]
qualified_at = 5
[[fit.rules]]
field = "title"
matches = "(?i)vp|head"
points = 10
[temperature]
hot_heat = 15
warm_heat = 4
hot_requires = []
"""
SEVERAL_SPANS = ONE_POSITIVE_SPAN.replace(
    "[signals.demo_request]\npoints = 30\n",
    '[signals.demo_request]\npoints = 30\nhalf_life = "30d"\n',
)
KINDS = ["demo_request", "page_view", "page_view", "careers_view", "email_click", "newsletter"]


def populate_mixed(lh: Leadheat, seed: int, leads: int = 30) -> None:
    """Leads with positive and negative signals, recorded one by one and in batches."""
    rng = random.Random(seed)
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("email", f"n{i}@example.com")],
                {"title": rng.choice(["VP Sales", "Head of Ops", "Analyst"])},
                NOW - timedelta(days=200),
            )
            for i in range(leads)
        ],
        react=False,
    )
    events = []
    for n in range(leads * 8):
        kind = rng.choice(KINDS)
        properties = {"link": "unsubscribe"} if kind == "email_click" and rng.random() < 0.4 else {}
        at = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * rng.choice([4, 30, 150])))
        events.append(
            NewEvent(
                LeadKey("email", f"n{rng.randrange(leads)}@example.com"),
                kind,
                at,
                f"m{n}",
                properties,
            )
        )
    half = len(events) // 2
    lh.record_events(events[:half], react=False)  # one batch
    for item in events[half:]:  # then event by event
        lh.record_events([item], react=False)
    # a lead whose only signals pull heat down, and one whose heat is exactly 0
    lh.track("only-neg@example.com", "careers_view", NOW - timedelta(hours=5))
    lh.track("only-neg@example.com", "newsletter", NOW - timedelta(hours=5))


def replayed(lh: Leadheat, now: datetime) -> dict[str, tuple[str, float]]:
    """Every lead scored from its history (the reference), by email."""
    return {
        row.email or "": (
            (score := lh.show(row.lead_id, now).score).temperature.value,
            score.heat,
        )
        for row in lh.leads(limit=None)
    }


def close_heat(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("playbook", [ONE_POSITIVE_SPAN, SEVERAL_SPANS], ids=["one", "several"])
def test_stored_heat_and_every_list_equal_the_replay_with_negative_signals(
    lh: Leadheat, clock: Clock, playbook: str
) -> None:
    lh.apply_playbook(playbook)
    populate_mixed(lh, seed=11)
    stored = {}
    for later in (timedelta(0), timedelta(hours=20), timedelta(days=9)):
        clock.now = NOW + later
        truth = replayed(lh, clock.now)
        listed = lh.leads()
        assert {r.email: (r.temperature.value, r.heat) for r in listed}.keys() == truth.keys()
        for row in listed:
            assert close_heat(row.heat, truth[row.email or ""][1]), row.email
            assert row.temperature.value == truth[row.email or ""][0], row.email
        heats = [r.heat for r in listed]
        assert all(a >= b - 1e-9 for a, b in itertools.pairwise(heats)), "hottest first"
        assert any(h < 0 for h in heats) and any(h > 15 for h in heats)
        hot = [r.email for r in lh.hot()]
        assert sorted(hot) == sorted(e for e, (t, _) in truth.items() if t == "hot")
        for n in (1, 3, len(hot) + 2):
            assert [r.email for r in lh.hot(limit=n)] == hot[:n]
        for wanted in ("warm", "cold"):
            got = sorted(r.email or "" for r in lh.leads(temperature=wanted))
            assert got == sorted(e for e, (t, _) in truth.items() if t == wanted)
        stored[later] = {r.email: r.heat for r in listed}
    # the bulk re-score (a playbook version: the compiled fold over all history) gives the
    # same keys as the event-by-event and batch folds did
    lh.apply_playbook(playbook + "\n# again\n")
    for later, before in stored.items():
        clock.now = NOW + later
        after = {r.email: r.heat for r in lh.leads()}
        assert after.keys() == before.keys()
        assert all(close_heat(after[e], before[e]) for e in before)


def test_time_travel_with_negative_signals(lh: Leadheat, clock: Clock) -> None:
    lh.apply_playbook(ONE_POSITIVE_SPAN)
    lh.upsert_leads([LeadInput([LeadKey("email", "t@example.com")], {"title": "VP Sales"})])
    lh.track("t@example.com", "demo_request", NOW - timedelta(days=1))
    then = NOW - timedelta(hours=1)
    before = lh.show("t@example.com", then).score
    assert before.temperature.value == "hot" and [r.email for r in lh.hot(then)] == [
        "t@example.com"
    ]
    lh.track("t@example.com", "careers_view", NOW - timedelta(minutes=30))
    clock.now = NOW + timedelta(days=1)
    lh.track("t@example.com", "email_click", NOW, {"link": "unsubscribe"})
    after = lh.show("t@example.com", then).score
    assert (after.heat, after.temperature, after.hot_until) == (
        before.heat,
        before.temperature,
        before.hot_until,
    )
    assert [r.email for r in lh.hot(then)] == ["t@example.com"]
    assert lh.hot() == []  # today the careers view and the unsubscribe pull it down
    today = lh.show("t@example.com").score
    expected = 30 * 2 ** (-2 / 7) - 12 * 2 ** (-(24.5 / 48)) - 20 * 2 ** (-1 / 7)
    assert math.isclose(today.heat, expected, rel_tol=1e-12)
    assert [s.type for s in today.pulled_down] == ["email_click", "careers_view"]


DIP_AND_RISE = """
[signals.demo_request]
points = 30
half_life = "30d"
[signals.form_submit]
points = 40
half_life = "1h"
[signals.careers_view]
points = -40
half_life = "1d"
[fit]
qualified_at = 5
[[fit.rules]]
field = "title"
matches = "(?i)vp"
points = 10
[temperature]
hot_heat = 15
warm_heat = 4
hot_requires = []
"""


def test_hot_until_is_the_first_crossing_down_and_after_a_rise_the_later_one(
    lh: Leadheat, clock: Clock, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``30·2^(−t/30d) + 40·2^(−t/1h) − 40·2^(−t/1d)``: hot (30), below 15 within the hour as
    the form submit fades, hot again after about 1.4 days as the careers view fades, cool for
    good after about 30 days."""
    lh.apply_playbook(DIP_AND_RISE)
    lh.upsert_leads([LeadInput([LeadKey("email", "d@example.com")], {"title": "VP Sales"})])
    for kind in ("demo_request", "form_submit", "careers_view"):
        lh.track("d@example.com", kind, NOW)
    book = parse_playbook(DIP_AND_RISE)
    history = [
        Engagement(NOW, book.points_for(k), book.half_life_for(k))
        for k in ("demo_request", "form_submit", "careers_view")
    ]
    tick = timedelta(milliseconds=1)

    dip = first_crossing(history, 15, NOW, down=True)
    assert dip is not None and dip < NOW + timedelta(hours=2)
    now = lh.show("d@example.com", NOW).score
    assert now.temperature.value == "hot" and now.hot_until is not None
    assert abs(now.hot_until - dip) <= tick

    clock.now = dip + timedelta(hours=1)
    rise = first_crossing(history, 15, clock.now, down=False)
    assert rise is not None and timedelta(days=1) < rise - NOW < timedelta(days=2)
    dipped = lh.show("d@example.com").score
    assert dipped.temperature.value == "warm" and dipped.hot_until is None
    assert dipped.hot_from is not None and abs(dipped.hot_from - rise) <= tick
    assert [r.email for r in lh.hot()] == [] and lh.leads(temperature="warm")

    clock.now = rise + timedelta(hours=1)
    fall = first_crossing(history, 15, clock.now, down=True)
    assert fall is not None and timedelta(days=29) < fall - NOW < timedelta(days=31)
    again = lh.show("d@example.com").score
    assert again.temperature.value == "hot" and again.hot_from is None
    assert again.hot_until is not None and abs(again.hot_until - fall) <= tick
    assert [r.email for r in lh.hot()] == ["d@example.com"]
    assert [r.email for r in lh.hot(limit=1)] == ["d@example.com"]

    # every explanation says what pulled heat down
    clock.now = dip + timedelta(hours=1)
    cli = Cli(db_url, capsys)
    shown = cli.json("show", "d@example.com", "--at", clock.now.isoformat())
    pulled = shown["explanation"]["pulled_down"]  # type: ignore[index]
    assert [p["type"] for p in pulled] == ["careers_view"] and pulled[0]["heat"] < -15
    assert shown["hot_from"] is not None  # type: ignore[index]
    assert "pulled down by careers view" in shown["explanation"]["summary"]  # type: ignore[index]
    code, out, _ = cli("show", "d@example.com", "--at", clock.now.isoformat())
    assert code == 0 and "pulled down by careers_view -" in out and "hot from " in out
    assert "pulled down by careers view" in what_it_did(dipped)
    page = lead_page(lh, "d@example.com")
    assert [s.type for s in page.view.score.pulled_down] == ["careers_view"]
    assert min(heat for _, heat in page.series) < 15 < max(heat for _, heat in page.series)


def test_the_lead_page_says_what_pulled_heat_down_and_when_it_is_hot_again(
    lh: Leadheat, clock: Clock
) -> None:
    lh.apply_playbook(DIP_AND_RISE)
    lh.upsert_leads([LeadInput([LeadKey("email", "d@example.com")], {"title": "VP Sales"})])
    for kind in ("demo_request", "form_submit", "careers_view"):
        lh.track("d@example.com", kind, clock.now - timedelta(hours=3))
    add_user(lh, "m@example.com", "manager", "correct horse battery staple")
    lead = lh.show("d@example.com").lead["id"]
    server = LiveServer(lh)
    try:
        with httpx.Client(base_url=server.url) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            signed = client.post(
                "/login",
                data={
                    "email": "m@example.com",
                    "password": "correct horse battery staple",
                    "csrf_token": token.group(1),
                },
            )
            assert signed.status_code == 303
            page = client.get(f"/leads/{lead}").text
    finally:
        server.stop()
    assert "pulled down by careers view -36.7 (3h 0m ago)" in page  # the why line
    assert "Pulled down by careers_view (-36.7, 3h 0m ago)." in page
    assert "Hot from " in page and "as a negative signal fades" in page


@settings(max_examples=100, deadline=None)
@given(engagements, engagements)
def test_the_heat_of_two_histories_is_the_sum_of_their_heats(
    one: list[Engagement], other: list[Engagement]
) -> None:
    """What an account's heat (the sum over its leads) rests on, with either sign."""
    a, b, both = Heat(), Heat(), Heat()
    for item in one:
        a.add(item)
        both.add(item)
    for item in other:
        b.add(item)
        both.add(item)
    scale = scale_of(one + other, NOW)
    assert math.isclose(a.plus(b).at(NOW), both.at(NOW), abs_tol=1e-12 * scale + 1e-300)
    assert math.isclose(a.plus(b).at(NOW), a.at(NOW) + b.at(NOW), abs_tol=1e-12 * scale + 1e-300)
