"""Re-scoring every lead from its history by the current playbook, in process or on Spark.

In process, the database's own events are folded on this machine (what ``playbook apply``
does). On Spark, the history is read from a Parquet/CSV folder or a JDBC database and folded on
a cluster; the scores are written back to the database in one transaction and, if asked,
to Parquet files as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadheat.service import Leadheat
from leadheat.store import accounts, playbooks
from leadheat.store.database import reader_of
from leadheat.store.scores import ScoredLead, write_scores
from leadheat.store.state import rebuild

WRITE_BATCH = 5_000
"""Scores written per ``executemany``: bounded memory on the driver, however many leads."""


@dataclass(frozen=True)
class RescoreReport:
    engine: str
    leads: int
    """Leads whose state was written."""
    events: int | None
    """Events read (``None`` when the engine does not count them)."""


def rescore_in_process(lh: Leadheat) -> RescoreReport:
    """Re-score every lead from the database's history, in one transaction."""
    lh.playbook()  # the usual "run leadheat init" errors
    with lh.transaction() as connection:
        version, book = lh.playbook_in(connection)
        events = rebuild(connection, book, version)
        leads = connection.exec_driver_sql("SELECT count(*) FROM lead_states").scalar_one()
    return RescoreReport("local", int(leads), events)


def rescore_on_spark(
    lh: Leadheat,
    source: str,
    source_format: str = "parquet",
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    output: Path | None = None,
    write_back: bool = True,
    partitions: int | None = None,
) -> RescoreReport:
    """Re-score every lead of ``source`` on Spark by the database's current playbook.

    ``conf`` holds Spark settings (``spark.jars`` for a JDBC driver, executor memory…); a
    ``jdbc.user`` / ``jdbc.password`` / ``jdbc.driver`` entry goes to the JDBC reader.
    """
    from leadheat.spark.rescore import rescore
    from leadheat.spark.tables import Source, session

    lh.playbook()  # the usual "run leadheat init" errors
    with lh.engine.connect() as connection:  # version and text read together: one playbook
        current = playbooks.current_playbook(reader_of(connection))
    assert current is not None
    version = current.version
    settings = dict(conf or {})
    jdbc = {key[5:]: settings.pop(key) for key in list(settings) if key.startswith("jdbc.")}
    spark = session(master, settings)
    try:
        scores = rescore(
            spark, Source(source, source_format, jdbc), current.source, lh.clock(), partitions
        )
        if output is not None:
            scores.write.mode("overwrite").parquet(str(output))
            scores = spark.read.parquet(str(output))
        written = 0
        if write_back:
            with lh.transaction() as connection:
                for batch in _batches(row.asDict() for row in scores.toLocalIterator()):
                    written += write_scores(connection, version, batch)
                accounts.recompute(connection, current.playbook.accounts)
        else:
            written = scores.count()
    finally:
        spark.stop()
    return RescoreReport("spark", written, None)


def scored_lead(row: Mapping[str, Any]) -> ScoredLead:
    """A row of :data:`leadheat.spark.rescore.SCORES` as the store writes it."""

    def instant(name: str) -> int | None:
        value = int(row[name])
        return None if value < 0 else value

    return ScoredLead(
        lead_id=int(row["lead_id"]),
        fit=float(row["fit"]),
        qualified=bool(row["qualified"]),
        disqualified=bool(row["disqualified"]),
        evidence_until=instant("evidence_until"),
        status=str(row["status"]),
        events_count=int(row["events_count"]),
        first_at=instant("first_at"),
        last_engaged_at=instant("last_engaged_at"),
        churned_at=instant("churned_at"),
        keys=list(zip(row["key_half_lives"], row["key_wholes"], row["key_fracs"], strict=True)),
    )


def _batches(rows: Iterator[Mapping[str, Any]]) -> Iterator[list[ScoredLead]]:
    batch: list[ScoredLead] = []
    for row in rows:
        batch.append(scored_lead(row))
        if len(batch) == WRITE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
