"""The Spark engine equals the in-process one: re-scoring every lead after a playbook change,
and the predictive model's training rows, on more than 100,000 events derived from CDNOW.

One SQLite store is filled through leadheat (leads with attributes and BANT evidence, real
CDNOW purchases moved to end the day before ``NOW`` and repeated for a second set of leads,
with a mix of event types, some touches and outcomes), a new playbook is applied in process
(the reference), and the store's tables are exported to Parquet and CSV for Spark (local
mode, two cores).
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")
pytest.importorskip("pyarrow")
import pyarrow
import pyarrow.csv
import pyarrow.parquet

from conftest import NOW, SHARED_DATA, Cli, Clock
from leadheat.identity import LeadKey
from leadheat.predict.asof import HALF_LIVES
from leadheat.predict.examples import training_examples
from leadheat.service import Leadheat, LeadInput
from leadheat.spark.features import training_features
from leadheat.spark.rescore import rescore
from leadheat.spark.tables import SCHEMAS, Source, session
from leadheat.store.events import NewEvent
from leadheat.store.training import load_everything
from leadheat.times import to_micros

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

EVENTS = 110_000
NEW_PLAYBOOK = """
[decay]
half_life = "10d"
[signals.purchase]
points = 12
[[signals.purchase.rules]]
property = "cds"
matches = "^([4-9]|[1-9][0-9]+)$"
points = 30
[signals.page_view]
points = 1
half_life = "2d"
[[signals.page_view.rules]]
property = "url"
matches = "/pricing"
points = 6
[signals.demo_request]
points = 25
half_life = "30d"
[fit]
qualified_at = 10
[[fit.rules]]
field = "title"
matches = "(?i)vp|head|founder"
points = 10
[[fit.rules]]
field = "country"
present = true
points = 2
[temperature]
hot_heat = 15
warm_heat = 3
"""
TYPES = ("purchase", "page_view", "email_open", "demo_request", "trial_expired")
HORIZON = timedelta(days=60)


@dataclass(frozen=True)
class Store:
    url: str
    path: Path
    parquet: Path
    csv: Path
    states: dict[int, tuple[object, ...]]
    keys: dict[int, dict[int, tuple[int, float]]]
    listed: dict[int, tuple[str, float]]


def cdnow_events(count: int) -> list[NewEvent]:
    """CDNOW purchases, shifted to end the day before NOW, repeated for a second set of leads;
    every fifth row given another type of the playbook."""
    rows = []
    for line in (SHARED_DATA / "cdnow_lifetimes" / "CDNOW_master.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[1].isdigit():
            rows.append(fields)
    last = max(datetime.strptime(r[1], "%Y%m%d").replace(tzinfo=UTC) for r in rows)
    shift = (NOW - timedelta(days=1)) - last
    events = []
    for index in range(count):
        passes, row = divmod(index, len(rows))
        customer, day, cds, dollars = rows[row]
        at = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC) + shift
        at += timedelta(minutes=index % 1440)
        kind = TYPES[0] if index % 5 else TYPES[(index // 5) % len(TYPES)]
        properties = {"cds": cds, "dollars": dollars}
        if kind == "page_view":
            properties = {"url": "/pricing" if int(cds) % 2 else "/blog"}
        events.append(
            NewEvent(
                LeadKey("external", f"c{customer}-{passes}"),
                kind,
                at,
                f"e{index}",
                properties,
            )
        )
    return events


def export(path: Path, folder: Path, file_format: str) -> None:
    """The store's tables as Spark reads them: the columns of SCHEMAS."""
    folder.mkdir()
    with sqlite3.connect(path) as connection:
        for table, ddl in SCHEMAS.items():
            columns = [part.split()[0] for part in ddl.split(", ")]
            cursor = connection.execute(f"SELECT {', '.join(columns)} FROM {table}")
            data = list(zip(*cursor.fetchall(), strict=True)) or [[] for _ in columns]
            types = {"long": pyarrow.int64(), "string": pyarrow.string()}
            schema = pyarrow.schema(
                [(part.split()[0], types[part.split()[1]]) for part in ddl.split(", ")]
            )
            arrow = pyarrow.table(
                {
                    name: pyarrow.array(values, schema.field(name).type)
                    for name, values in zip(columns, data, strict=True)
                },
                schema=schema,
            )
            if file_format == "csv":
                pyarrow.csv.write_csv(arrow, folder / f"{table}.csv")
            else:
                pyarrow.parquet.write_table(arrow, folder / f"{table}.parquet")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA} (CI always has them)")
    folder = tmp_path_factory.mktemp("spark")
    path = folder / "leadheat.db"
    url = f"sqlite:///{path}"
    lh = Leadheat(url, clock=Clock())
    lh.init()
    events = cdnow_events(EVENTS)
    rng = random.Random(4)
    leads = sorted({e.lead.value for e in events})
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("external", lead)],
                {
                    "title": rng.choice(["VP Sales", "Head of Ops", "Analyst", None]),
                    "country": rng.choice(["DE", None]),
                    "need": "yes" if rng.random() < 0.4 else None,
                    "budget": "yes" if rng.random() < 0.6 else None,
                    "timeline": "Q1" if rng.random() < 0.6 else None,
                },
                NOW - timedelta(days=rng.randrange(1, 80)),
            )
            for lead in leads[::3]
        ],
        react=False,
    )
    for start in range(0, len(events), 25_000):
        lh.record_events(events[start : start + 25_000], react=False)
    for lead in leads[1:400:2]:
        lh.touch(f"{lead}", "call", NOW - timedelta(days=rng.randrange(1, 300)))
    for lead in leads[2:600:3]:
        outcome = rng.choice(["won", "lost", "disqualified"])
        lh.outcome(f"{lead}", outcome, NOW - timedelta(days=rng.randrange(0, 200)))
    lh.apply_playbook(NEW_PLAYBOOK)  # the in-process re-score: the reference
    with sqlite3.connect(path) as connection:
        states = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT lead_id, fit, qualified, disqualified, evidence_until, status, "
                "last_engaged_at, churned_at, events_count, playbook_version FROM lead_states"
            )
        }
        keys: dict[int, dict[int, tuple[int, float]]] = {}
        for lead, span, whole, frac in connection.execute("SELECT * FROM heat_keys"):
            keys.setdefault(lead, {})[span] = (whole, frac)
    listed = {r.lead_id: (r.temperature.value, r.heat) for r in lh.leads()}
    lh.engine.dispose()
    export(path, folder / "parquet", "parquet")
    export(path, folder / "csv", "csv")
    return Store(url, path, folder / "parquet", folder / "csv", states, keys, listed)


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    started = session("local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield started
    started.stop()


def same_key(got: tuple[int, float], expected: tuple[int, float]) -> bool:
    """Equal up to summation order: the same log2 of the heat, to 1e-12."""
    return math.isclose(got[0] + got[1], expected[0] + expected[1], rel_tol=0, abs_tol=1e-9)


def test_spark_rescore_equals_the_in_process_one(store: Store, spark: object) -> None:
    events = sqlite3.connect(store.path).execute("SELECT count(*) FROM events").fetchone()[0]
    assert events >= 100_000
    rows = rescore(spark, Source(str(store.parquet)), NEW_PLAYBOOK, NOW).collect()  # type: ignore[arg-type]
    assert len(rows) == len(store.states)
    temperatures = set()
    for row in rows:
        expected = store.states[row.lead_id]
        fit, qualified, disqualified, until, status, engaged, churned, count, _ = expected
        assert (row.fit, row.qualified, row.disqualified, row.status) == (
            fit,
            bool(qualified),
            bool(disqualified),
            status,
        ), row.lead_id
        assert row.evidence_until == (-1 if until is None else until)
        assert row.last_engaged_at == (-1 if engaged is None else engaged)
        assert row.churned_at == (-1 if churned is None else churned)
        assert row.events_count == count
        got = dict(
            zip(row.key_half_lives, zip(row.key_wholes, row.key_fracs, strict=True), strict=True)
        )
        reference = store.keys.get(row.lead_id, {})
        assert got.keys() == reference.keys()
        assert all(same_key(got[span], reference[span]) for span in got), row.lead_id
        temperature, heat = store.listed[row.lead_id]
        assert row.temperature == temperature
        assert math.isclose(row.heat, heat, rel_tol=1e-9, abs_tol=1e-300)
        temperatures.add(temperature)
    assert temperatures == {"hot", "warm", "cold"}
    # the CSV copy of the same tables gives the same scores
    from_csv = rescore(spark, Source(str(store.csv), "csv"), NEW_PLAYBOOK, NOW)  # type: ignore[arg-type]
    by_lead = {row.lead_id: (row.temperature, row.fit, row.events_count) for row in rows}
    assert {
        r.lead_id: (r.temperature, r.fit, r.events_count) for r in from_csv.collect()
    } == by_lead


def test_spark_training_rows_equal_the_in_process_ones(store: Store, spark: object) -> None:
    frame, types = training_features(
        spark,
        Source(str(store.parquet)),
        NEW_PLAYBOOK,
        HORIZON,
        NOW,  # type: ignore[arg-type]
    )
    lh = Leadheat(store.url, clock=Clock())
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        expected, expected_types = training_examples(
            load_everything(connection), book, HORIZON, NOW
        )
    lh.engine.dispose()
    assert types == expected_types
    got = {row.lead_id: row for row in frame.collect()}
    assert len(got) == len(expected) > 30_000
    labels = set()
    for example in expected:
        row = got[example.lead_id]
        assert row.decided_at == to_micros(example.decided_at)
        assert row.label == example.label
        assert json.loads(row.features) == example.features, example.lead_id
        labels.add(example.label)
    assert labels == {0, 1, None}
    assert f"heat_{HALF_LIVES[0].days}d" in expected[0].features


def test_cli_rescore_on_spark_writes_the_scores_back(
    store: Store, spark: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store.path) as connection:  # forget every score
        connection.execute("DELETE FROM heat_keys")
        connection.execute(
            "UPDATE lead_states SET fit = 0, qualified = 0, evidence_until = NULL, "
            "last_engaged_at = NULL, churned_at = NULL, events_count = 0"
        )
    cli = Cli(store.url, capsys)
    code, out, err = cli(
        "rescore",
        "--engine",
        "spark",
        "--source",
        str(store.parquet),
        "--master",
        "local[2]",
        "--conf",
        "spark.sql.shuffle.partitions=4",
    )
    assert code == 0, err
    assert f"re-scored {len(store.states):,} leads on Spark and written back" in out
    with sqlite3.connect(store.path) as connection:
        states = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT lead_id, fit, qualified, disqualified, evidence_until, status, "
                "last_engaged_at, churned_at, events_count, playbook_version FROM lead_states"
            )
        }
        keys: dict[int, dict[int, tuple[int, float]]] = {}
        for lead, span, whole, frac in connection.execute("SELECT * FROM heat_keys"):
            keys.setdefault(lead, {})[span] = (whole, frac)
    assert states == store.states
    assert keys.keys() == store.keys.keys()
    for lead, spans in keys.items():
        assert spans.keys() == store.keys[lead].keys()
        assert all(same_key(spans[s], store.keys[lead][s]) for s in spans)
    lh = Leadheat(store.url, clock=Clock())
    listed = {r.lead_id: r.temperature.value for r in lh.leads()}
    lh.engine.dispose()
    assert listed == {lead: t for lead, (t, _) in store.listed.items()}
    # and the in-process engine agrees with what Spark wrote
    code, out, err = cli("rescore")
    assert code == 0 and "in process" in out, err
