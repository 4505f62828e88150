"""Re-scoring every lead on Spark: what a playbook change does in process, distributed.

Events are hash-partitioned by lead, so each lead's whole history lies in one partition, and
each partition's events are valued by :func:`leadheat.store.state.coded_engagements` and
folded by :func:`~leadheat.scoring.rescoring.fold_activity`, as the in-process rebuild
values and folds them. Fit, evidence, status and temperature are then judged per
lead by the same functions as :func:`leadheat.store.state.refresh_facts` and
:func:`leadheat.scoring.temperature.classify`. One row per lead comes out (:data:`SCORES`);
:func:`leadheat.store.scores.write_scores` stores them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from leadheat.playbook import parse_playbook
from leadheat.scoring.evidence import EvidenceItem, required_fresh_until
from leadheat.scoring.fit import fit_summary
from leadheat.scoring.heat import Heat
from leadheat.scoring.lead import OutcomeRecord, status_at
from leadheat.scoring.rescoring import fold_activity
from leadheat.scoring.temperature import LeadFacts, classify
from leadheat.spark.tables import Source
from leadheat.store.fields import COMMON_FIELDS, lead_attributes
from leadheat.store.state import coded_engagements
from leadheat.times import MAX_INSTANT, from_micros, to_micros

if TYPE_CHECKING:  # PySpark and pandas are imported where they are used: the extra is optional
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

ACTIVITY = (
    "lead_id long, half_life_us long, whole long, frac double, events long, first_at long, "
    "last_engaged_at long, churned_at long"
)
"""The fold's output: a row with ``half_life_us = 0`` holds a lead's activity, the others one
heat key each."""
SCORES = (
    "lead_id long, fit double, qualified boolean, disqualified boolean, evidence_until long, "
    "status string, events_count long, first_at long, last_engaged_at long, churned_at long, "
    "heat double, temperature string, key_half_lives array<long>, key_wholes array<long>, "
    "key_fracs array<double>"
)
"""One row per lead: its stored state, its heat and temperature at ``now``, and its heat keys.
Instants are microseconds; ``-1`` stands for none."""


def rescore(
    spark: SparkSession,
    source: Source,
    playbook_source: str,
    now: datetime,
    partitions: int | None = None,
) -> DataFrame:
    """Every lead of ``source`` (not merged into another) scored by the playbook.

    ``partitions`` is how many groups of leads the events are split into (default: Spark's
    ``spark.sql.shuffle.partitions``); each must fit one executor's memory.
    """
    from pyspark.sql import functions as F  # noqa: N812  (PySpark's own convention)

    parse_playbook(playbook_source)  # a bad playbook fails here, not on an executor
    events = source.read(spark, "events").select("lead_id", "type", "occurred_at", "properties")
    events = (
        events.repartition(partitions, "lead_id") if partitions else events.repartition("lead_id")
    )
    folded = events.mapInPandas(partial(fold_partition, playbook_source), ACTIVITY)
    activity = folded.where("half_life_us = 0").select(
        "lead_id", "events", "first_at", "last_engaged_at", "churned_at"
    )
    keys = (
        folded.where("half_life_us > 0")
        .groupBy("lead_id")
        .agg(F.collect_list(F.struct("half_life_us", "whole", "frac")).alias("keys"))
    )
    evidence = (
        source.read(spark, "evidence")
        .groupBy("lead_id")
        .agg(
            F.collect_list(F.struct("id", "kind", "value", "stated_at", "source")).alias("evidence")
        )
    )
    outcomes = (
        source.read(spark, "outcomes")
        .groupBy("lead_id")
        .agg(F.collect_list(F.struct("id", "outcome", "occurred_at", "reason")).alias("outcomes"))
    )
    leads = (
        source.read(spark, "leads")
        .where("merged_into_id IS NULL")
        .withColumnRenamed("id", "lead_id")
        .drop("merged_into_id")
    )
    joined = (
        leads.join(evidence, "lead_id", "left")
        .join(outcomes, "lead_id", "left")
        .join(activity, "lead_id", "left")
        .join(keys, "lead_id", "left")
        .fillna(-1, ["first_at", "last_engaged_at", "churned_at"])
        .fillna(0, ["events"])
    )
    return joined.mapInPandas(partial(score_partition, playbook_source, to_micros(now)), SCORES)


def fold_partition(playbook_source: str, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Fold one partition's events (all of each of its leads' events) into :data:`ACTIVITY`
    rows. Properties are decoded only for event types whose points depend on them."""
    import pandas as pd

    frames = [frame for frame in batches if len(frame)]
    if not frames:
        return
    events = pd.concat(frames, ignore_index=True)
    book = parse_playbook(playbook_source)
    codes, names = pd.factorize(events["type"])
    properties = events["properties"]

    def decoded(index: int) -> Any:
        said = properties.iat[index]
        return json.loads(said) if said else None

    batch = coded_engagements(
        book,
        events["lead_id"].to_numpy(dtype=np.int64),
        codes,
        [str(name) for name in names],
        events["occurred_at"].to_numpy(dtype=np.int64),
        decoded,
    )
    activity = fold_activity(
        batch.lead_ids, batch.at_us, batch.points, batch.half_life_us, batch.churned
    )
    count = len(activity.leads)
    yield pd.DataFrame(
        {
            "lead_id": activity.leads,
            "half_life_us": np.zeros(count, dtype=np.int64),
            "whole": np.zeros(count, dtype=np.int64),
            "frac": np.zeros(count),
            "events": activity.events,
            "first_at": activity.first_at,
            "last_engaged_at": activity.last_engaged_at,
            "churned_at": activity.churned_at,
        }
    )
    for span, (leads, whole, frac) in activity.keys.items():
        none = np.full(len(leads), -1, dtype=np.int64)
        yield pd.DataFrame(
            {
                "lead_id": leads,
                "half_life_us": np.full(len(leads), span, dtype=np.int64),
                "whole": whole,
                "frac": frac,
                "events": none,
                "first_at": none,
                "last_engaged_at": none,
                "churned_at": none,
            }
        )


def _instant(micros: Any) -> datetime | None:
    return None if micros is None or micros < 0 else from_micros(int(micros))


def _items(cell: Any) -> list[dict[str, Any]]:
    """An ``array<struct>`` cell as dicts in id order (the store's order of insertion)."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return []
    return sorted((dict(item) for item in cell), key=lambda item: int(item.get("id", 0)))


def lead_row_attributes(lead: dict[str, Any]) -> dict[str, Any]:
    """The attributes fit rules see, from a lead row of the ``leads`` table."""
    said = lead.get("attributes")
    row = {name: lead.get(name) for name in COMMON_FIELDS}
    row["attributes"] = json.loads(said) if isinstance(said, str) and said else None
    return lead_attributes(row)


def score_partition(
    playbook_source: str, now_us: int, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """Judge each lead: fit, evidence, status as the in-process ``refresh_facts`` does, then
    heat and temperature at ``now``."""
    import pandas as pd

    book = parse_playbook(playbook_source)
    now = from_micros(now_us)
    for frame in batches:
        out: dict[str, list[Any]] = {name: [] for name in _SCORE_COLUMNS}
        for lead in frame.to_dict("records"):
            evidence = [
                EvidenceItem(e["kind"], e["value"], from_micros(e["stated_at"]), e["source"])
                for e in _items(lead["evidence"])
            ]
            outcomes = [
                OutcomeRecord(o["outcome"], from_micros(o["occurred_at"]), o["reason"])
                for o in _items(lead["outcomes"])
            ]
            points, qualified, disqualified = fit_summary(
                lead_row_attributes(lead), book.fit.rules, book.fit.qualified_at
            )
            status = status_at(outcomes, MAX_INSTANT)
            until = required_fresh_until(evidence, book.temperature.hot_requires, book.evidence.ttl)
            heat = Heat()
            spans, wholes, fracs = [], [], []
            for key in sorted(_items(lead["keys"]), key=lambda k: int(k["half_life_us"])):
                span = int(key["half_life_us"])
                heat.set_row(span, int(key["whole"]), float(key["frac"]))
                spans.append(span)
                wholes.append(int(key["whole"]))
                fracs.append(float(key["frac"]))
            facts = LeadFacts(
                qualified=qualified and status != "disqualified",
                fit=points,
                disqualified=disqualified or status == "disqualified",
                evidence_until=until,
                last_engaged_at=_instant(lead["last_engaged_at"]),
                churned_at=_instant(lead["churned_at"]),
            )
            value = heat.at(now)
            for name, item in (
                ("lead_id", int(lead["lead_id"])),
                ("fit", float(points)),
                ("qualified", facts.qualified),
                ("disqualified", facts.disqualified),
                ("evidence_until", -1 if until is None else to_micros(until)),
                ("status", status),
                ("events_count", int(lead["events"])),
                ("first_at", int(lead["first_at"])),
                ("last_engaged_at", int(lead["last_engaged_at"])),
                ("churned_at", int(lead["churned_at"])),
                ("heat", value),
                ("temperature", classify(value, facts, now, book).temperature.value),
                ("key_half_lives", spans),
                ("key_wholes", wholes),
                ("key_fracs", fracs),
            ):
                out[name].append(item)
        yield pd.DataFrame(out)


_SCORE_COLUMNS = [part.split()[0] for part in SCORES.split(", ")]
