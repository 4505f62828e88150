"""Re-scoring every lead from its whole event history at once, in one compiled pass.

A playbook change gives every event new points or a new half-life, so every lead's state is
derived again from history: its heat key per half-life, its last engagement and churn, its
event count. Events arrive as columns (one array per field, as a database cursor, a Parquet
file or a Spark partition hands them over), and one loop compiled by numba folds each event
into its lead's slot: no sort, no per-event temporary array, each event visited once. The
result equals folding the events one by one with :class:`~leadheat.scoring.heat.Heat`
(tested), so a re-score never changes a lead's heat.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from leadheat.playbook import Playbook
from leadheat.scoring.heat_arrays import NONE, LeadSlots, fold_keys, normalised_arrays

MICRO = timedelta(microseconds=1)
Keys = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""``(leads, whole, frac)``: one heat key per lead, leads ascending."""


@dataclass(frozen=True)
class Activity:
    """Per lead with at least one event, leads ascending: what its history gives its state.

    Instants are microseconds since the epoch; ``-1`` stands for "never".
    """

    leads: npt.NDArray[np.int64]
    events: npt.NDArray[np.int64]
    first_at: npt.NDArray[np.int64]
    last_engaged_at: npt.NDArray[np.int64]
    churned_at: npt.NDArray[np.int64]
    keys: dict[int, Keys]
    """Heat keys by signed half-life in microseconds
    (:func:`~leadheat.scoring.heat.signed_span_us`: negative for the part that pulls heat
    down), for the leads with events worth points."""


def fold_activity(
    lead_ids: npt.NDArray[np.int64],
    at_us: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    half_life_us: npt.NDArray[np.int64],
    churned: npt.NDArray[np.bool_],
) -> Activity:
    """Fold events, one entry per event in each array, into per-lead :class:`Activity`.

    Events worth no points carry no heat and are no engagement, but count as events; events
    worth less than 0 points fold into the negative keys and are no engagement either. (This
    is :meth:`SignalTable.fold` with every event its own type.)

    >>> day = 86_400_000_000
    >>> activity = fold_activity(
    ...     np.array([2, 2, 5]), np.array([0, day, day]), np.array([8.0, 0.0, 1.0]),
    ...     np.array([day, day, day]), np.array([False, True, False]),
    ... )
    >>> activity.leads.tolist(), activity.events.tolist(), activity.churned_at.tolist()
    ([2, 5], [2, 1], [86400000000, -1])
    >>> activity.last_engaged_at.tolist(), sorted(activity.keys)
    ([0, 86400000000], [86400000000])
    """
    table = SignalTable(points, half_life_us, churned)
    return table.fold(lead_ids, np.arange(len(points), dtype=np.intp), at_us)


def merge_activities(parts: Sequence[Activity]) -> Activity:
    """One :class:`Activity` from several over disjoint sets of events (a file's chunks): counts
    add up, first and last instants are the extremes, and heat keys of one lead and half-life
    add as :meth:`~leadheat.scoring.heat.HeatKey.plus` does (to a few ulps).

    A key ``whole + frac`` is ``log2`` of a decayed sum, which is the key of one event at
    ``whole`` half-lives worth ``2^frac`` points: re-folding the keys as such events adds
    them with :func:`~leadheat.scoring.heat.fold_keys`'s care for overflow.

    >>> day = 86_400_000_000
    >>> one = fold_activity(np.array([4]), np.array([0]), np.array([8.0]),
    ...                     np.array([day]), np.array([False]))
    >>> two = fold_activity(np.array([4, 6]), np.array([day, day]), np.array([8.0, 1.0]),
    ...                     np.array([day, day]), np.array([False, False]))
    >>> both = fold_activity(np.array([4, 4, 6]), np.array([0, day, day]),
    ...                      np.array([8.0, 8.0, 1.0]), np.array([day] * 3), np.array([False] * 3))
    >>> merged = merge_activities([one, two])
    >>> merged.leads.tolist(), merged.events.tolist(), merged.first_at.tolist()
    ([4, 6], [2, 1], [0, 86400000000])
    >>> bool(np.allclose(merged.keys[day][2], both.keys[day][2], rtol=1e-12))
    True
    """
    if len(parts) == 1:
        return parts[0]
    leads = np.concatenate([part.leads for part in parts])
    order = np.argsort(leads, kind="stable")
    merged, starts = np.unique(leads[order], return_index=True)

    def reduce(name: str, how: np.ufunc) -> npt.NDArray[np.int64]:
        values = np.concatenate([getattr(part, name) for part in parts])[order]
        return np.asarray(how.reduceat(values, starts), dtype=np.int64)

    keys: dict[int, Keys] = {}
    for span in sorted({span for part in parts for span in part.keys}):
        held = [part.keys[span] for part in parts if span in part.keys]
        key_leads = np.concatenate([item[0] for item in held])
        whole = np.concatenate([item[1] for item in held])
        frac = np.concatenate([item[2] for item in held])
        keys[span] = fold_keys(key_leads, whole * abs(span), np.exp2(frac), abs(span))
    return Activity(
        leads=merged,
        events=reduce("events", np.add),
        first_at=reduce("first_at", np.minimum),
        last_engaged_at=reduce("last_engaged_at", np.maximum),
        churned_at=reduce("churned_at", np.maximum),
        keys=keys,
    )


@dataclass(frozen=True)
class SignalTable:
    """What a playbook makes of each event type, one entry per type code: the points
    (without property rules), the half-life in microseconds and whether it is churn.

    Looked up once per type, then by type code inside the fold.

    >>> from leadheat.playbook import parse_playbook
    >>> book = parse_playbook('[signals.demo_request]\\npoints = 20')
    >>> table = SignalTable.of(book, ["demo_request", "no_such_event"])
    >>> table.points.tolist(), table.half_life_us.tolist()[0] // 86_400_000_000
    ([20.0, 0.0], 7)
    """

    points: npt.NDArray[np.float64]
    half_life_us: npt.NDArray[np.int64]
    churn: npt.NDArray[np.bool_]

    @staticmethod
    def of(book: Playbook, types: Sequence[str]) -> SignalTable:
        churn_types = set(book.temperature.churn_events)
        return SignalTable(
            np.array([book.points_for(name) for name in types], dtype=np.float64),
            np.array([book.half_life_for(name) // MICRO for name in types], dtype=np.int64),
            np.array([name in churn_types for name in types], dtype=np.bool_),
        )

    def fold(
        self,
        lead_ids: npt.NDArray[np.int64],
        type_codes: npt.NDArray[np.intp],
        at_us: npt.NDArray[np.int64],
    ) -> Activity:
        """:func:`fold_activity` of events given by type code (no property rules)."""
        if not len(lead_ids) == len(type_codes) == len(at_us):
            raise ValueError(
                f"one lead, type code and instant per event, got {len(lead_ids)} lead ids, "
                f"{len(type_codes)} type codes and {len(at_us)} instants"
            )
        heated = self.points != 0
        # heat keys per signed half-life (negative: the part that pulls heat down,
        # signed_span_us); one entry per event in fold_activity: most playbooks have one
        # half-life and no negative signal, found without copying or sorting the column
        signed = np.where(self.points < 0, -self.half_life_us, self.half_life_us)
        low = signed.min(where=heated, initial=np.iinfo(np.int64).max)
        high = signed.max(where=heated, initial=np.iinfo(np.int64).min)
        if low == high:
            spans = np.array([low], dtype=np.int64)
            span_slot = np.where(heated, 0, -1)
        else:
            spans = np.unique(signed[heated])
            span_slot = np.where(heated, np.searchsorted(spans, signed), -1)
        index = LeadSlots.of(lead_ids)
        counts, first, last_engaged, churned_at, top, total = compiled_fold()(
            index.slots,
            np.asarray(at_us, dtype=np.int64),
            np.asarray(type_codes, dtype=np.intp),
            np.log2(np.abs(self.points), out=np.zeros(len(self.points)), where=heated),
            span_slot,
            self.churn,
            spans,
            index.size,
        )
        keys: dict[int, Keys] = {}
        for row, span in enumerate(spans.tolist()):
            slots = np.flatnonzero(top[row] != NONE)
            whole, frac = normalised_arrays(top[row, slots], np.log2(total[row, slots]))
            keys[span] = (index.lead_ids(slots), whole, frac)
        seen = np.flatnonzero(counts)
        return Activity(
            leads=index.lead_ids(seen),
            events=counts[seen],
            first_at=first[seen],
            last_engaged_at=last_engaged[seen],
            churned_at=churned_at[seen],
            keys=keys,
        )


PerSlot = npt.NDArray[np.int64]
FoldEvents = Callable[
    [
        npt.NDArray[np.intp],
        npt.NDArray[np.int64],
        npt.NDArray[np.intp],
        npt.NDArray[np.float64],
        npt.NDArray[np.intp],
        npt.NDArray[np.bool_],
        npt.NDArray[np.int64],
        int,
    ],
    tuple[PerSlot, PerSlot, PerSlot, PerSlot, npt.NDArray[np.int64], npt.NDArray[np.float64]],
]


def _fold_events(
    slots: npt.NDArray[np.intp],
    at_us: npt.NDArray[np.int64],
    codes: npt.NDArray[np.intp],
    log2_points: npt.NDArray[np.float64],
    span_of: npt.NDArray[np.intp],
    churn: npt.NDArray[np.bool_],
    spans: npt.NDArray[np.int64],
    size: int,
) -> tuple[PerSlot, PerSlot, PerSlot, PerSlot, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per slot: event count, first event, last engagement, last churn (``-1``: never);
    per signed half-life row (negative: a negative signal's part) and slot: the heat key as
    a half-life count ``top`` (:data:`NONE`: no such event) and the sum of terms
    ``2^((t − top·h)/h + log2 |p|)``.

    Every array is read once, in order: each lead's ``top`` is its latest event's half-life
    count so far, and when a later event raises it the sum is rescaled by ``2^−Δ``, an exact
    power of two. So each term is computed from an exact integer offset and loses at most an
    ulp of its exponent, and the sum rounds like
    :func:`~leadheat.scoring.heat.fold_keys`'s, to a few ulps; only terms a thousand
    half-lives older than the lead's latest event, which add nothing, lose more. The integer
    division is taken only when ``top`` changes.
    """
    rows = len(spans)
    counts = np.zeros(size, np.int64)
    first = np.full(size, np.iinfo(np.int64).max, np.int64)
    last_engaged = np.full(size, -1, np.int64)
    churned_at = np.full(size, -1, np.int64)
    top = np.full((rows, size), NONE, np.int64)
    base = np.zeros((rows, size), np.int64)
    total = np.zeros((rows, size), np.float64)
    for event in range(len(slots)):
        slot, at, code = slots[event], at_us[event], codes[event]
        if code < 0 or code >= len(span_of):
            raise IndexError("a type code is not in the signal table")
        counts[slot] += 1
        first[slot] = min(first[slot], at)
        if churn[code]:
            churned_at[slot] = max(churned_at[slot], at)
        row = span_of[code]
        if row < 0:
            continue
        span = spans[row]
        if span > 0:  # only what adds heat is interest
            last_engaged[slot] = max(last_engaged[slot], at)
        else:
            span = -span
        if top[row, slot] == NONE or at - base[row, slot] >= span:
            turns = at // span
            if top[row, slot] != NONE:
                total[row, slot] = math.ldexp(total[row, slot], max(top[row, slot] - turns, -1100))
            top[row, slot] = turns
            base[row, slot] = turns * span
        total[row, slot] += np.exp2((at - base[row, slot]) / span + log2_points[code])
    return counts, first, last_engaged, churned_at, top, total


@functools.cache
def compiled_fold() -> FoldEvents:
    """The fold compiled to machine code by numba, which caches it on disk: the first use
    after an install or an edit compiles it (about 2 s), later processes load it (about
    0.4 s). numba is imported here, not with the module, so commands that never re-score
    do not pay its import (about 0.3 s).

    numba caches next to this file or in the user's cache directory, and refuses to cache
    when neither is writable (a read-only install run by a user without a home, as the
    deployment recipes do): then each process compiles its own copy, and says how to give it
    a cache directory."""
    import numba

    try:
        kernel: FoldEvents = numba.njit(cache=True, nogil=True)(_fold_events)
    except RuntimeError as error:  # "cannot cache function ...: no locator available ..."
        logging.getLogger(__name__).warning(
            "re-scoring compiles its kernel in every process (about 2 s): %s; set "
            "NUMBA_CACHE_DIR to a writable directory to compile it once",
            error,
        )
        kernel = numba.njit(nogil=True)(_fold_events)
    return kernel
