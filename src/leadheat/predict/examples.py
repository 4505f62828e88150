"""Training rows: every stored lead cut at its decision time, and each open lead as it
stands now.

Each lead's history is cut at its decision time *before* the feature builder sees it, so the
builder's refusal of anything later (:class:`~leadheat.predict.asof.LeakageError`) is a
second line of defence, not the first. The histories come from
:func:`leadheat.store.training.load_everything`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadheat.playbook import Playbook
from leadheat.predict.asof import (
    Example,
    common_types,
    cut,
    decision_time,
    features_as_of,
    label,
)
from leadheat.store.training import Lived


def training_examples(
    lived: Sequence[Lived],
    book: Playbook,
    horizon: timedelta,
    now: datetime,
    types: Sequence[str] | None = None,
) -> tuple[list[Example], list[str]]:
    """Each lead as of its decision time, labelled; oldest decision first (the model's time
    order). Returns the examples and the event types given a column each: ``types`` (a
    trained model's, to score these rows with it), or the most common ones."""
    decided = []
    for lead in lived:
        at = decision_time(
            lead.created_at, lead.touches[0] if lead.touches else None, lead.history.outcomes
        )
        decided.append((lead, at, cut(lead.history, at)))
    if types is None:
        types = common_types(history for _, _, history in decided)
    examples = [
        Example(
            lead.lead_id,
            at,
            label(lead.history.outcomes, at, horizon, now),
            features_as_of(
                history, lead.created_at, [t for t in lead.touches if t <= at], at, book, types
            ),
        )
        for lead, at, history in decided
    ]
    examples.sort(key=lambda e: (e.decided_at, e.lead_id))
    return examples, list(types)


def current_examples(
    lived: Sequence[Lived], book: Playbook, now: datetime, types: Sequence[str]
) -> list[Example]:
    """Each lead as it stands now: the rows a model scores."""
    return [
        Example(
            lead.lead_id,
            now,
            None,
            features_as_of(
                cut(lead.history, now),
                lead.created_at,
                [t for t in lead.touches if t <= now],
                now,
                book,
                types,
            ),
        )
        for lead in lived
    ]
