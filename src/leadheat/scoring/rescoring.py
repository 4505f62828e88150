"""Re-scoring every lead from its whole event history at once, column by column.

A playbook change gives every event new points or a new half-life, so every lead's state is
derived again from history: its heat key per half-life, its last engagement and churn, its
event count. Events arrive as columns (one array per field, as a database cursor, a Parquet
file or a Spark partition hands them over), and the fold is a handful of linear array passes:
no sort, no Python loop over events. The result equals folding the events one by one with
:class:`~leadheat.scoring.heat.Heat` (tested), so a re-score never changes a lead's heat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from leadheat.playbook import Playbook
from leadheat.scoring.heat import LeadSlots, fold_keys, fold_slots

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
    """Heat keys by half-life in microseconds, for the leads with events worth points."""


def fold_activity(
    lead_ids: npt.NDArray[np.int64],
    at_us: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    half_life_us: npt.NDArray[np.int64],
    churned: npt.NDArray[np.bool_],
) -> Activity:
    """Fold events, one entry per event in each array, into per-lead :class:`Activity`.

    Events worth no points carry no heat and are no engagement, but count as events.

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
    engaged = points > 0
    everything = bool(engaged.all())
    if len(at_us) and everything and not churned.any() and half_life_us.min() == half_life_us.max():
        return fold_one_half_life(lead_ids, at_us, np.log2(points), int(half_life_us[0]))
    index = LeadSlots.of(lead_ids)
    counts = np.bincount(index.slots, minlength=index.size)
    seen = np.flatnonzero(counts)
    first = -index.maximum(-at_us)[seen]
    latest = index.maximum(at_us if everything else np.where(engaged, at_us, -1))
    last_engaged = latest[seen]
    churned_at = index.maximum(np.where(churned, at_us, -1))[seen] if churned.any() else None
    keys: dict[int, Keys] = {}
    for span in np.unique(half_life_us[engaged]).tolist():
        mask = engaged & (half_life_us == span)
        keys[span] = fold_keys(lead_ids[mask], at_us[mask], points[mask], span)
    return Activity(
        leads=index.lead_ids(seen),
        events=counts[seen].astype(np.int64),
        first_at=first,
        last_engaged_at=last_engaged,
        churned_at=np.full(len(seen), -1, dtype=np.int64) if churned_at is None else churned_at,
        keys=keys,
    )


def fold_one_half_life(
    lead_ids: npt.NDArray[np.int64],
    at_us: npt.NDArray[np.int64],
    log2_points: npt.NDArray[np.float64],
    half_life_us: int,
) -> Activity:
    """:func:`fold_activity` of the usual case: one half-life, every event worth points,
    no churn. The latest engagement is then the latest event, so one scatter-max serves it
    and the heat keys, and nothing is masked or gathered per event."""
    index = LeadSlots.of(lead_ids)
    counts = np.bincount(index.slots, minlength=index.size)
    seen = np.flatnonzero(counts)
    latest = index.maximum(at_us)
    return Activity(
        leads=index.lead_ids(seen),
        events=counts[seen].astype(np.int64),
        first_at=-index.maximum(-at_us)[seen],
        last_engaged_at=latest[seen],
        churned_at=np.full(len(seen), -1, dtype=np.int64),
        keys={half_life_us: fold_slots(index, at_us, log2_points, half_life_us, latest)},
    )


@dataclass(frozen=True)
class SignalTable:
    """What a playbook makes of each event type, one entry per type code: the points
    (without property rules), the half-life in microseconds and whether it is churn.

    Looked up once per type, then gathered per event with the type codes.

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
        """:func:`fold_activity` of events given by type code (no property rules).

        When every type is worth points, none is churn and all share one half-life, the
        per-event columns are never built: one gather of each type's ``log2`` points.
        """
        spans = self.half_life_us
        if (
            len(spans)
            and (self.points > 0).all()
            and not self.churn.any()
            and (spans == spans[0]).all()
        ):
            return fold_one_half_life(
                lead_ids, at_us, np.log2(self.points)[type_codes], int(spans[0])
            )
        return fold_activity(
            lead_ids,
            at_us,
            self.points[type_codes],
            self.half_life_us[type_codes],
            self.churn[type_codes],
        )
