"""The predictive model's training rows on Spark: each lead as of its decision time.

The same rows as :func:`leadheat.predict.examples.training_examples` over the whole store, built
where the history lives. Spark groups each lead's history (events, evidence, outcomes, touches)
into one row; leadheat's own :func:`~leadheat.predict.asof.decision_time`,
:func:`~leadheat.predict.asof.cut`, :func:`~leadheat.predict.asof.features_as_of` and
:func:`~leadheat.predict.asof.label` run on the executors. The one question across leads,
which event types get a column, is a Spark aggregate over the cut histories, ordered as
``Counter.most_common`` orders them in process (count, then first appearance).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from leadheat.playbook import parse_playbook
from leadheat.predict.asof import cut, decision_time, features_as_of, label
from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.spark.rescore import lead_row_attributes
from leadheat.spark.tables import Source
from leadheat.times import from_micros, to_micros

if TYPE_CHECKING:  # PySpark and pandas are imported where they are used: the extra is optional
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

EXAMPLES = "lead_id long, decided_at long, label int, features string"
"""One training row per lead: ``label`` is null when censored, ``features`` a JSON object."""
MOST_TYPES = 30


def training_features(
    spark: SparkSession,
    source: Source,
    playbook_source: str,
    horizon: timedelta,
    now: datetime,
    most_types: int = MOST_TYPES,
) -> tuple[DataFrame, list[str]]:
    """Every lead of ``source`` (not merged) as a labelled row as of its decision time, and
    the event types given a column each."""
    from pyspark.sql import functions as F  # noqa: N812  (PySpark's own convention)

    parse_playbook(playbook_source)
    leads = (
        source.read(spark, "leads")
        .where("merged_into_id IS NULL")
        .withColumnRenamed("id", "lead_id")
        .drop("merged_into_id")
    )
    touches = (
        source.read(spark, "touches")
        .groupBy("lead_id")
        .agg(F.sort_array(F.collect_list("occurred_at")).alias("touches"))
    )
    outcomes = (
        source.read(spark, "outcomes")
        .groupBy("lead_id")
        .agg(F.collect_list(F.struct("id", "outcome", "occurred_at", "reason")).alias("outcomes"))
    )
    evidence = (
        source.read(spark, "evidence")
        .groupBy("lead_id")
        .agg(
            F.collect_list(F.struct("id", "kind", "value", "stated_at", "source")).alias("evidence")
        )
    )
    events = source.read(spark, "events")
    decided = (
        leads.select("lead_id", "created_at")
        .join(touches, "lead_id", "left")
        .join(outcomes, "lead_id", "left")
        .mapInPandas(_decisions, "lead_id long, decided_at long")
    )
    ranked = (
        events.join(decided, "lead_id")
        .where(F.col("occurred_at") <= F.col("decided_at"))
        .groupBy("type")
        .agg(
            F.count("*").alias("count"),
            F.min(F.struct("lead_id", "occurred_at", "id")).alias("first"),
        )
        .orderBy(F.col("count").desc(), F.col("first"))
        .limit(most_types)
        .collect()
    )
    types = [str(row["type"]) for row in ranked]
    histories = events.groupBy("lead_id").agg(
        F.collect_list(F.struct("id", "type", "occurred_at", "properties")).alias("events")
    )
    rows = (
        leads.join(decided, "lead_id")
        .join(histories, "lead_id", "left")
        .join(evidence, "lead_id", "left")
        .join(outcomes, "lead_id", "left")
        .join(touches, "lead_id", "left")
    )
    job = partial(_examples, playbook_source, horizon // timedelta(microseconds=1), now, types)
    return rows.mapInPandas(job, EXAMPLES), types


def _list(cell: Any) -> list[Any]:
    return [] if cell is None or isinstance(cell, float) else list(cell)


def _by_id(cell: Any) -> list[dict[str, Any]]:
    return sorted((dict(item) for item in _list(cell)), key=lambda item: int(item["id"]))


def _outcomes(cell: Any) -> list[OutcomeRecord]:
    """In time order, as the store's loader reads them (ties in insertion order)."""
    items = sorted(_by_id(cell), key=lambda o: int(o["occurred_at"]))
    return [OutcomeRecord(o["outcome"], from_micros(o["occurred_at"]), o["reason"]) for o in items]


def _decisions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import pandas as pd

    for frame in batches:
        decided = [
            to_micros(
                decision_time(
                    from_micros(lead["created_at"]),
                    from_micros(min(touches)) if (touches := _list(lead["touches"])) else None,
                    _outcomes(lead["outcomes"]),
                )
            )
            for lead in frame.to_dict("records")
        ]
        yield pd.DataFrame({"lead_id": frame["lead_id"], "decided_at": decided})


def _examples(
    playbook_source: str,
    horizon_us: int,
    now: datetime,
    types: Sequence[str],
    batches: Iterator[pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    book = parse_playbook(playbook_source)
    horizon = timedelta(microseconds=horizon_us)
    for frame in batches:
        out: dict[str, list[Any]] = {"lead_id": [], "decided_at": [], "label": [], "features": []}
        for lead in frame.to_dict("records"):
            events = sorted(_by_id(lead["events"]), key=lambda e: int(e["occurred_at"]))
            history = LeadHistory(
                lead_row_attributes(lead),
                [
                    EventRecord(
                        e["type"],
                        from_micros(e["occurred_at"]),
                        json.loads(e["properties"]) if e["properties"] else {},
                    )
                    for e in events
                ],
                [
                    EvidenceItem(e["kind"], e["value"], from_micros(e["stated_at"]), e["source"])
                    for e in _by_id(lead["evidence"])
                ],
                _outcomes(lead["outcomes"]),
            )
            at = from_micros(lead["decided_at"])
            created = from_micros(lead["created_at"])
            touches = [from_micros(t) for t in _list(lead["touches"]) if t <= lead["decided_at"]]
            known = cut(history, at)
            out["lead_id"].append(int(lead["lead_id"]))
            out["decided_at"].append(int(lead["decided_at"]))
            out["label"].append(label(history.outcomes, at, horizon, now))
            out["features"].append(
                json.dumps(features_as_of(known, created, touches, at, book, types))
            )
        yield pd.DataFrame(
            {
                "lead_id": pd.Series(out["lead_id"], dtype="int64"),
                "decided_at": pd.Series(out["decided_at"], dtype="int64"),
                "label": pd.Series(out["label"], dtype="Int32"),
                "features": pd.Series(out["features"], dtype="object"),
            }
        )
