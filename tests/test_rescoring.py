"""The compiled re-scoring fold equals folding each lead's events one by one."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadheat.playbook import parse_playbook
from leadheat.scoring.heat import Engagement, Heat, HeatKey
from leadheat.scoring.rescoring import SignalTable, fold_activity
from leadheat.times import from_micros, to_micros

SPANS = (timedelta(hours=1), timedelta(days=7), timedelta(days=30))
event = st.tuples(
    st.sampled_from([3, 4, 10**12, -7]),  # dense, then sparse and negative ids
    st.sampled_from([0.0, 0.5, 1.0, 20.0, -0.25, -6.0]),  # negative: pulls heat down
    st.integers(0, 2),
    st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC)),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, min_size=1, max_size=40))
def test_fold_activity_equals_the_event_by_event_fold(
    rows: list[tuple[int, float, int, datetime, bool]],
) -> None:
    activity = fold_activity(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([to_micros(r[3]) for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.float64),
        np.array([SPANS[r[2]] // timedelta(microseconds=1) for r in rows], dtype=np.int64),
        np.array([r[4] for r in rows], dtype=np.bool_),
    )
    assert activity.leads.tolist() == sorted({r[0] for r in rows})
    now = max(r[3] for r in rows)
    for position, lead in enumerate(activity.leads.tolist()):
        mine = [r for r in rows if r[0] == lead]
        heat = Heat()
        for _, points, span, at, _ in mine:
            heat.add(Engagement(at, points, SPANS[span]))
        folded = Heat()
        for span_us, (leads, whole, frac) in activity.keys.items():
            found = np.flatnonzero(leads == lead)
            if len(found):
                at = int(found[0])
                folded.set_row(span_us, int(whole[at]), float(frac[at]))
        assert folded.positive.keys() == heat.positive.keys()
        assert folded.negative.keys() == heat.negative.keys()
        assert math.isclose(folded.raised_at(now), heat.raised_at(now), rel_tol=1e-12)
        assert math.isclose(folded.pulled_down_at(now), heat.pulled_down_at(now), rel_tol=1e-12)
        scale = folded.raised_at(now) + folded.pulled_down_at(now)
        assert math.isclose(folded.at(now), heat.at(now), rel_tol=1e-12, abs_tol=1e-12 * scale)
        engaged = [to_micros(r[3]) for r in mine if r[1] > 0]
        churned = [to_micros(r[3]) for r in mine if r[4]]
        assert activity.events[position] == len(mine)
        assert activity.first_at[position] == min(to_micros(r[3]) for r in mine)
        assert activity.last_engaged_at[position] == max(engaged, default=-1)
        assert activity.churned_at[position] == max(churned, default=-1)


def test_the_fold_by_type_code_equals_the_event_by_event_fold() -> None:
    rng = np.random.default_rng(5)
    lead_ids = rng.integers(1, 60, 1_000)
    at_us = rng.integers(1_700_000_000_000_000, 1_705_000_000_000_000, 1_000)  # 58 days
    codes = rng.integers(0, 2, 1_000)
    table = SignalTable.of(parse_playbook(PLAYBOOK), ["a", "b"])
    fast = table.fold(lead_ids, codes, at_us)
    ((span_us, (leads, whole, frac)),) = fast.keys.items()
    span = timedelta(microseconds=span_us)
    assert leads.tolist() == fast.leads.tolist() == sorted(set(lead_ids.tolist()))
    now = from_micros(int(at_us.max()))
    for position, lead in enumerate(fast.leads.tolist()):
        mine = np.flatnonzero(lead_ids == lead)
        heat = Heat()
        for event in mine.tolist():
            heat.add(Engagement(from_micros(int(at_us[event])), table.points[codes[event]], span))
        key = HeatKey(int(whole[position]), float(frac[position]))
        assert math.isclose(key.heat_at(now, span), heat.at(now), rel_tol=1e-12)
        assert fast.events[position] == len(mine)
        assert fast.first_at[position] == at_us[mine].min()
        assert fast.last_engaged_at[position] == at_us[mine].max()
        assert fast.churned_at[position] == -1


def test_a_type_code_outside_the_table_is_refused_not_read() -> None:
    table = SignalTable.of(parse_playbook(PLAYBOOK), ["a", "b"])
    ids, at_us = np.array([1, 2], dtype=np.int64), np.array([0, 1], dtype=np.int64)
    with pytest.raises(IndexError, match="type code"):
        table.fold(ids, np.array([0, 2], dtype=np.intp), at_us)
    with pytest.raises(ValueError, match="2 lead ids, 1 type codes and 2 instants"):
        table.fold(ids, np.array([0], dtype=np.intp), at_us)


def test_the_fold_runs_where_numba_has_nowhere_to_cache_it() -> None:
    """A read-only install run by a user without a home: numba finds no cache directory
    (simulated by allowing it only the IPython locator) and the fold compiles in memory."""
    fold = (
        "import numpy as np; from leadheat.scoring.rescoring import fold_activity; "
        "a = fold_activity(np.array([4, 4]), np.array([0, 10]), np.array([1.0, 1.0]), "
        "np.array([10, 10]), np.array([False, False])); print(a.keys[10][1].tolist())"
    )
    done = subprocess.run(
        [sys.executable, "-c", fold],
        env={**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[1]"  # 2^0 + 2^1 = 2^(1 + log2 1.5)
    assert "NUMBA_CACHE_DIR" in done.stderr


PLAYBOOK = """
[signals.a]
points = 3
[signals.b]
points = 20
"""
