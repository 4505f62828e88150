"""Heat meets DESIGN §2: exact, order-free, idempotent, index keys that order by heat."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from leadheat.scoring.heat import Engagement, Heat, HeatKey, replay_heat
from leadheat.scoring.heat_arrays import add_keys, fold_keys
from leadheat.times import EPOCH, MAX_INSTANT, from_micros, to_micros

instants = st.integers(min_value=0, max_value=to_micros(MAX_INSTANT)).map(from_micros)
near_edges = st.one_of(
    instants,
    st.integers(0, 10**12).map(from_micros),  # the first days of 1970
    st.integers(to_micros(MAX_INSTANT) - 10**12, to_micros(MAX_INSTANT)).map(from_micros),
)
half_lives = st.integers(60, 365 * 86400).map(lambda s: timedelta(seconds=s))
points = st.floats(min_value=0.01, max_value=1000, allow_nan=False)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-300)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Engagement], datetime]:
    spans = draw(st.lists(half_lives, min_size=1, max_size=3))
    start = draw(near_edges)
    width = draw(st.sampled_from([60, 3600, 86400 * 30, 86400 * 3650]))
    events = draw(
        st.lists(
            st.builds(
                Engagement,
                st.integers(0, width * 10**6).map(
                    lambda d: min(start + timedelta(microseconds=d), MAX_INSTANT)
                ),
                points,
                st.sampled_from(spans),
            ),
            min_size=1,
            max_size=40,
        )
    )
    latest = max(e.at for e in events)
    now = min(
        latest + draw(st.integers(0, 20 * 86400).map(lambda s: timedelta(seconds=s))), MAX_INSTANT
    )
    return events, now


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.integers(0, 5))
def test_any_arrival_order_with_duplicates_equals_sorted_replay(
    case: tuple[list[Engagement], datetime], shuffle: random.Random, repeats: int
) -> None:
    events, now = case
    deliveries = list(enumerate(events)) + [
        (i, events[i]) for i in shuffle.choices(range(len(events)), k=repeats)
    ]
    shuffle.shuffle(deliveries)
    heat, seen = Heat(), set()
    for event_id, event in deliveries:  # the store's unique event id makes this a set
        if event_id not in seen:
            seen.add(event_id)
            heat.add(event)
    reference = replay_heat(sorted(events, key=lambda e: e.at), now)
    assert close(heat.at(now), reference), (heat.at(now), reference)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(points, instants), min_size=2, max_size=8), half_lives, instants)
def test_key_orders_leads_as_their_heat_at_any_now(
    leads: list[tuple[float, datetime]], span: timedelta, now: datetime
) -> None:
    keys = [HeatKey.of_event(p, at, span) for p, at in leads]
    heats = [k.heat_at(now, span) for k in keys]
    for a in range(len(keys)):
        for b in range(len(keys)):
            if keys[a] > keys[b]:
                assert heats[a] >= heats[b] * (1 - 1e-12)
            if heats[a] > heats[b] * (1 + 1e-12):
                assert keys[a] > keys[b]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), points, instants), min_size=1, max_size=60), half_lives
)
def test_vectorised_fold_equals_scalar_fold(
    rows: list[tuple[int, float, datetime]], span: timedelta
) -> None:
    lead_ids = np.array([r[0] for r in rows], dtype=np.int64)
    at_us = np.array([to_micros(r[2]) for r in rows], dtype=np.int64)
    worth = np.array([r[1] for r in rows], dtype=np.float64)
    span_us = span // timedelta(microseconds=1)
    leads, whole, frac = fold_keys(lead_ids, at_us, worth, span_us)
    now = max(r[2] for r in rows)
    for lead, w, f in zip(leads.tolist(), whole.tolist(), frac.tolist(), strict=True):
        scalar = Heat()
        for r in rows:
            if r[0] == lead:
                scalar.add(Engagement(r[2], r[1], span))
        assert 0.0 <= f < 1.0
        assert close(HeatKey(w, f).heat_at(now, span), scalar.at(now))
    half = len(rows) // 2
    if half and len(set(lead_ids.tolist())) == 1:
        _, w1, f1 = fold_keys(lead_ids[:half], at_us[:half], worth[:half], span_us)
        _, w2, f2 = fold_keys(lead_ids[half:], at_us[half:], worth[half:], span_us)
        w, f = add_keys(w1, f1, w2, f2)
        assert close(
            HeatKey(int(w[0]), float(f[0])).heat_at(now, span),
            HeatKey(int(whole[0]), float(frac[0])).heat_at(now, span),
        )


@settings(max_examples=300, deadline=None)
@given(histories(), st.lists(st.floats(-1000, -0.01), max_size=5), st.lists(st.integers(0, 40)))
def test_folding_events_in_gives_the_keys_of_their_own_keys_summed_to_the_bit(
    case: tuple[list[Engagement], datetime], pulls: list[float], cuts: list[int]
) -> None:
    """``Heat.fold`` (and ``Heat.add``, one event) works the sums out on plain numbers: the
    same keys, bit for bit, as ``HeatKey.of_event`` and ``HeatKey.plus`` one event at a
    time (what the stored keys were made by), whatever runs of events it is given."""
    events, _ = case
    pulling = zip(events, pulls, strict=False)  # some events again, worth less than 0
    events = events + [Engagement(e.at, p, e.half_life) for e, p in pulling]
    heat, one_by_one = Heat(), Heat()
    bounds = [0, *sorted(cut for cut in cuts if cut < len(events)), len(events)]
    for start, end in itertools.pairwise(bounds):
        heat.fold((e.at, e.points, e.half_life) for e in events[start:end])
    keys: dict[tuple[bool, timedelta], HeatKey] = {}
    for event in events:
        one_by_one.add(event)
        own = HeatKey.of_event(abs(event.points), event.at, event.half_life)
        kept = keys.get((event.points < 0, event.half_life))
        keys[event.points < 0, event.half_life] = own if kept is None else kept.plus(own)
    for folded in (heat, one_by_one):
        assert folded.positive == {span: key for (down, span), key in keys.items() if not down}
        assert folded.negative == {span: key for (down, span), key in keys.items() if down}


def test_half_life_halves_heat() -> None:
    week = timedelta(days=7)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    heat = Heat()
    heat.add(Engagement(t0, 10, week))
    assert math.isclose(heat.at(t0), 10, rel_tol=1e-15)
    assert math.isclose(heat.at(t0 + week), 5, rel_tol=1e-15)
    assert math.isclose(heat.at(t0 + 2 * week), 2.5, rel_tol=1e-15)


def test_extremes_of_the_range_keep_full_precision() -> None:
    minute = timedelta(minutes=1)
    late = MAX_INSTANT - timedelta(seconds=30)
    key = HeatKey.of_event(3.0, late, minute)
    assert math.isclose(key.heat_at(late + minute, minute), 1.5, rel_tol=1e-14)
    early = EPOCH + timedelta(seconds=1)
    key = HeatKey.of_event(7.0, early, minute)
    assert math.isclose(key.heat_at(early + 3 * minute, minute), 7 / 8, rel_tol=1e-14)


@settings(max_examples=200, deadline=None)
@given(histories(), st.floats(min_value=0.5, max_value=50))
def test_cool_down_forecast_is_when_heat_crosses_the_threshold(
    case: tuple[list[Engagement], datetime], theta: float
) -> None:
    events, now = case
    heat = Heat()
    for event in events:
        heat.add(event)
    crossing = heat.cools_below(theta, now)
    if heat.at(now) < theta:
        assert crossing is None
        return
    assert crossing is not None and crossing >= now
    if crossing < MAX_INSTANT - timedelta(days=1):
        tick = timedelta(milliseconds=1)
        assert heat.at(crossing - tick) >= theta * (1 - 1e-9)
        assert heat.at(crossing + tick) <= theta * (1 + 1e-9)


def test_zero_point_events_carry_no_heat() -> None:
    heat = Heat()
    heat.add(Engagement(datetime(2024, 1, 1, tzinfo=UTC), 0, timedelta(days=7)))
    assert heat.at(datetime(2024, 1, 2, tzinfo=UTC)) == 0
    assert heat.rows() == []
