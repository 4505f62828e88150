"""The latest drift check of each model version, kept where every process can read it.

``leadheat model drift`` measures the model on recent outcomes (:mod:`.drift`); the people
who act on its probabilities read the dashboard and their morning digest, not the CLI. The
check is stored as a view snapshot named ``drift:model:<version>`` (no table of its own:
one small JSON document per model version), and the dashboard and the digest show its alarm
for the current model only: a check of an older version says nothing about the one in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from leadheat.predict.drift import Drift
from leadheat.store.models import PredictionModel
from leadheat.store.snapshots import Snapshot, load_snapshot, save_snapshot
from leadheat.times import isoformat

if TYPE_CHECKING:
    from leadheat.service import Leadheat

PREFIX = "drift:model:"


def snapshot_name(version: int) -> str:
    """Where a model version's latest drift check is kept.

    >>> snapshot_name(3)
    'drift:model:3'
    """
    return f"{PREFIX}{version}"


@dataclass(frozen=True)
class DriftAlarm:
    """The current model's latest check sounded the alarm: when, and its first reason."""

    version: int
    checked_at: datetime
    window: str
    reason: str


def save_check(lh: Leadheat, version: int, report: Drift, window: str) -> None:
    """Keep ``report`` (measured over the last ``window``) as ``version``'s latest check."""
    now = lh.clock()
    body = {"version": version, "window": window, "computed_at": isoformat(now)}
    with lh.transaction() as connection:
        save_snapshot(connection, Snapshot(snapshot_name(version), now, body | report.to_json()))


def current_alarm(lh: Leadheat, version: int | None = None) -> DriftAlarm | None:
    """The alarm of the current model's (or ``version``'s) latest check; ``None`` when no
    model, no check, or a check without an alarm."""
    with lh.engine.connect() as connection:
        if version is None:
            version = connection.execute(select(func.max(PredictionModel.version))).scalar()
            if version is None:
                return None
        found = load_snapshot(connection, snapshot_name(version))
    if found is None or not found.body.get("alarm"):
        return None
    reasons = found.body.get("reasons") or ["no reason recorded"]
    return DriftAlarm(version, found.computed_at, str(found.body.get("window", "")), reasons[0])
