"""The team's own model: trained on the store's history, kept as numbered versions, used to
give every lead a conversion probability with its reasons.

``train`` builds one example per lead as of its decision time (see :mod:`.asof`), drops the
censored ones, and trains on all of them in time order. The evaluation is separate and
honest: a second model and every baseline are fitted on the earliest 80 % of decisions and
scored on the latest 20 %, the way the model is used (on next quarter's leads).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from leadheat.predict.asof import Example
from leadheat.predict.calibration import Calibrator
from leadheat.predict.drift import Drift, assess, recalibrated
from leadheat.predict.examples import current_examples, training_examples
from leadheat.predict.metrics import brier, paired_difference, roc_auc, score
from leadheat.predict.model import Explanation, TabularModel, train_model
from leadheat.predict.table import Table, TableError
from leadheat.service import LeadheatError
from leadheat.store import training

if TYPE_CHECKING:
    from leadheat.service import Leadheat

TARGET = "converted"
TEST_SHARE = 0.2


class NoModelError(LeadheatError):
    """Asked for a prediction before any model was trained."""


@dataclass(frozen=True)
class ModelInfo:
    version: int
    trained_at: datetime
    horizon: timedelta
    playbook_version: int
    rows: int
    positives: int
    censored: int
    evaluation: dict[str, Any]


def _table(
    examples: Sequence[Example], with_target: bool = True, model: TabularModel | None = None
) -> Table:
    """Examples as a table; for scoring, with every column ``model`` was trained on (an
    attribute no lead has today is an empty column, not an error)."""
    wanted = {name for example in examples for name in example.features}
    if model is not None:
        wanted.update(feature.name for feature in model.encoder.features)
    names = sorted(wanted)
    columns: dict[str, list[str | None]] = {
        name: [example.features.get(name) for example in examples] for name in names
    }
    if with_target:
        columns[TARGET] = [str(example.label) for example in examples]
        names.append(TARGET)
    return Table(
        source="the store's history",
        names=tuple(names),
        columns=columns,
        lines=list(range(2, len(examples) + 2)),
    )


def _evaluate(table: Table, seed: int = 7) -> dict[str, Any]:
    """Every model on the same time-ordered split: earliest 80 % train, latest 20 % test.

    A team's latest fifth is often a few dozen decisions, where a lead of a few points of
    ROC-AUC can be luck: each baseline's entry also holds leadheat's margin over it
    (``leadheat_minus``: ROC-AUC and Brier, each with a paired bootstrap 95 % interval).
    """
    from leadheat.predict.baselines import DefaultLightGBM, Logistic, NaiveBayes, Scorer

    cut = len(table) - max(1, round(TEST_SHARE * len(table)))
    train, test = table.take(range(cut)), table.take(range(cut, len(table)))
    y = np.asarray([int(v == "1") for v in test.column(TARGET)], dtype=np.int_)
    if len(set(y.tolist())) < 2:
        return {"error": "the latest 20% of decisions all have the same outcome: no evaluation"}
    heat_only = [n for n in table.names if n not in (TARGET, "heat_7d", "fit")]
    results: dict[str, Any] = {"train_rows": len(train), "test_rows": len(test)}
    candidates: dict[str, Callable[[], Scorer]] = {
        "leadheat": lambda: train_model(train, TARGET, seed=seed),
        "logistic regression": lambda: Logistic.fit(train, TARGET),
        "LightGBM default": lambda: DefaultLightGBM.fit(train, TARGET, seed=seed),
        "naive Bayes (CRM)": lambda: NaiveBayes.fit(train, TARGET),
        "playbook heat + fit": lambda: Logistic.fit(train, TARGET, drop=heat_only),
    }
    predicted: dict[str, npt.NDArray[np.float64]] = {}
    for name, fit in candidates.items():
        try:
            model = fit()
        except (TableError, ValueError) as error:
            results[name] = {"error": str(error)}
            continue
        predicted[name] = model.predict_proba(test)
        scores = score(predicted[name], y)
        results[name] = {
            "roc_auc": scores.roc_auc,
            "pr_auc": scores.pr_auc,
            "brier": scores.brier,
            "log_loss": scores.log_loss,
            "lift_top_decile": scores.lift_top_decile,
            "calibration_error": scores.calibration_error,
        }
    ours = predicted.pop("leadheat", None)
    if ours is not None:
        for name, theirs in predicted.items():
            results[name]["leadheat_minus"] = {
                measure.__name__: asdict(paired_difference(measure, ours, theirs, y))
                for measure in (roc_auc, brier)
            }
    return results


def train(lh: Leadheat, horizon: timedelta) -> ModelInfo:
    """Train on every lead whose outcome is known within ``horizon`` of its decision, store
    the model as the next version and score every open lead with it."""
    version, book = lh.playbook()
    now = lh.clock()
    with lh.engine.connect() as connection:
        lived = training.load_everything(connection)
    examples, types = training_examples(lived, book, horizon, now)
    known = [e for e in examples if e.label is not None]
    censored = len(examples) - len(known)
    if not known:
        raise TableError(
            f"no lead has a known outcome within {horizon} of its decision yet "
            f"({censored} censored): record outcomes first"
        )
    table = _table(known)
    model = train_model(table, TARGET)
    evaluation = _evaluate(table)
    positives = sum(e.label or 0 for e in known)
    with lh.transaction() as connection:
        number = training.store_model(
            connection,
            trained_at=now,
            horizon=horizon,
            playbook_version=version,
            rows=len(known),
            positives=positives,
            censored=censored,
            event_types=types,
            evaluation=evaluation,
            document=json.dumps(model.to_json()),
        )
    score_leads(lh)
    return ModelInfo(number, now, horizon, version, len(known), positives, censored, evaluation)


def current(lh: Leadheat) -> tuple[ModelInfo, TabularModel, list[str]] | None:
    """The newest model, or ``None`` if none was trained."""
    with lh.engine.connect() as connection:
        row = training.latest_model(connection)
    if row is None:
        return None
    info = ModelInfo(
        row.version,
        row.trained_at,
        timedelta(microseconds=row.horizon_us),
        row.playbook_version,
        row.rows,
        row.positives,
        row.censored,
        dict(row.evaluation),
    )
    return info, TabularModel.from_json(json.loads(row.document)), list(row.event_types)


def score_leads(lh: Leadheat, lead_ids: Sequence[int] | None = None) -> int:
    """Store the current model's probability, as of now, for open leads (all, or these)."""
    found = current(lh)
    if found is None:
        raise NoModelError("no model yet: run `leadheat model train`")
    _, model, types = found
    _, book = lh.playbook()
    now = lh.clock()
    with lh.engine.connect() as connection:
        lived = [
            lead for lead in training.load_everything(connection, lead_ids) if lead.status == "open"
        ]
    if not lived:
        return 0
    examples = current_examples(lived, book, now, types)
    probabilities = model.predict_proba(_table(examples, False, model))
    with lh.transaction() as connection:
        training.store_probabilities(
            connection,
            [(e.lead_id, float(p)) for e, p in zip(examples, probabilities, strict=True)],
            now,
        )
    return len(examples)


def explain(lh: Leadheat, lead: str | int, top: int = 3) -> tuple[int, Explanation] | None:
    """The lead's probability now and the features that raise and lower it most, from the
    model's own per-lead contributions; ``None`` if no model was trained."""
    found = current(lh)
    if found is None:
        return None
    info, model, types = found
    _, book = lh.playbook()
    now = lh.clock()
    lead_id = lh.lead_id(lead)
    with lh.engine.connect() as connection:
        (lived,) = training.load_everything(connection, [lead_id])
    (example,) = current_examples([lived], book, now, types)
    return info.version, model.explain(_table([example], False, model), 0, top)


def recent_outcomes(
    lh: Leadheat, window: timedelta
) -> tuple[ModelInfo, TabularModel, Table, list[int]]:
    """The current model, and the leads whose outcome became known in the last ``window``
    (a recorded win or loss, or the horizon running out), each as of its decision time, when
    the model's prediction for it was made: the features never see anything later (see
    :mod:`.asof`), and their outcomes."""
    found = current(lh)
    if found is None:
        raise NoModelError("no model yet: run `leadheat model train`")
    info, model, types = found
    _, book = lh.playbook()
    now = lh.clock()
    with lh.engine.connect() as connection:
        lived = training.load_everything(connection)
    examples, _ = training_examples(lived, book, info.horizon, now, types)
    histories = {lead.lead_id: lead.history for lead in lived}
    since = now - window
    recent = []
    for example in examples:
        if example.label is None:
            continue
        outcomes = histories[example.lead_id].outcomes
        known_at = min((o.at for o in outcomes), default=example.decided_at + info.horizon)
        if since <= known_at <= now:
            recent.append(example)
    return info, model, _table(recent, False, model), [e.label or 0 for e in recent]


def drift(lh: Leadheat, window: timedelta) -> tuple[ModelInfo, Drift]:
    """How the current model did on the outcomes of the last ``window`` (:mod:`.drift`)."""
    info, model, table, outcomes = recent_outcomes(lh, window)
    return info, assess(model, table, outcomes)


def recalibrate(lh: Leadheat, window: timedelta) -> tuple[int, Calibrator, int]:
    """Refit the current model's calibration on the outcomes of the last ``window``, store it
    as the next model version (same trees and weights, same evaluation) and rescore the open
    leads. Returns the new version, its calibrator and the outcomes it was fitted on."""
    info, model, table, outcomes = recent_outcomes(lh, window)
    fresh = recalibrated(model, table, outcomes)
    found = current(lh)
    assert found is not None, "recent_outcomes found it"
    with lh.transaction() as connection:
        number = training.store_model(
            connection,
            trained_at=lh.clock(),
            horizon=info.horizon,
            playbook_version=info.playbook_version,
            rows=info.rows,
            positives=info.positives,
            censored=info.censored,
            event_types=found[2],
            evaluation=info.evaluation,
            document=json.dumps(fresh.to_json()),
        )
    score_leads(lh)
    return number, fresh.calibrator, len(outcomes)
