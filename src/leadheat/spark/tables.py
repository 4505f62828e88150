"""Where a Spark job finds the store's tables: a folder of Parquet or CSV files, or a JDBC
database (such as the team's own PostgreSQL).

Every table has the columns of the store's table of the same name, instants as integer
microseconds since the epoch and JSON as text, so an export of the database, a data lake
table written by another tool and the database itself read alike.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PySpark is imported where it is used: the extra is optional
    from pyspark.sql import DataFrame, SparkSession

SCHEMAS = {
    "events": "id long, lead_id long, type string, occurred_at long, properties string",
    "leads": (
        "id long, email string, external_id string, name string, title string, company string, "
        "country string, source string, campaign string, owner string, attributes string, "
        "created_at long, merged_into_id long"
    ),
    "evidence": "id long, lead_id long, kind string, value string, stated_at long, source string",
    "outcomes": "id long, lead_id long, outcome string, occurred_at long, reason string",
    "touches": "id long, lead_id long, occurred_at long",
}
"""The columns each job reads, as Spark DDL; other columns are ignored."""
REQUIRED = ("events", "leads")
"""Tables without which nothing can be scored; the others may be absent (read as empty)."""
FORMATS = ("parquet", "csv")


class SourceError(ValueError):
    """A table is missing or lacks a column."""


@dataclass(frozen=True)
class Source:
    """``location`` is a folder holding ``events.parquet`` (a file or a folder of parts),
    ``leads.parquet`` … (or ``.csv`` with a header row), or a ``jdbc:`` URL whose tables
    have the store's names. ``options`` go to the JDBC reader (``user``, ``password``,
    ``driver``)."""

    location: str
    format: str = "parquet"
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.is_jdbc and self.format not in FORMATS:
            raise SourceError(f"--format must be one of {', '.join(FORMATS)}, not {self.format!r}")

    @property
    def is_jdbc(self) -> bool:
        return self.location.startswith("jdbc:")

    def read(self, spark: SparkSession, table: str) -> DataFrame:
        """The table's columns of :data:`SCHEMAS`, typed; empty if an optional table is
        absent."""
        from pyspark.sql.types import StructType

        schema = StructType.fromDDL(SCHEMAS[table])
        assert isinstance(schema, StructType)  # a list of columns parses to a struct
        names = [column.name for column in schema.fields]
        if self.is_jdbc:
            frame = (
                spark.read.format("jdbc")
                .option("url", self.location)
                .option("dbtable", table)
                .options(**self.options)
                .load()
            )
        else:
            path = Path(self.location) / f"{table}.{self.format}"
            if not path.exists():
                if table in REQUIRED:
                    raise SourceError(f"{path} does not exist: the {table} table is required")
                return spark.createDataFrame([], schema)
            if self.format == "csv":
                # RFC 4180 quoting, as PostgreSQL's COPY … CSV and most tools write it: a quote
                # inside a quoted value is doubled (Spark's default escape is a backslash)
                frame = spark.read.csv(str(path), header=True, schema=schema, escape='"')
            else:
                frame = spark.read.parquet(str(path))
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise SourceError(f"the {table} table at {self.location} lacks {', '.join(missing)}")
        return frame.select(*[frame[f.name].cast(f.dataType).alias(f.name) for f in schema.fields])


def session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session: ``master`` is a cluster URL (``spark://host:7077``, ``yarn``,
    ``k8s://…``) or, by default, ``local[*]``: every core of this machine.

    Executors run leadheat's Python, so they need leadheat installed; in local mode they
    use this interpreter.
    """
    from pyspark.sql import SparkSession

    if master is None or master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("leadheat").master(master or "local[*]")
    settings = {"spark.ui.showConsoleProgress": "false", "spark.sql.session.timeZone": "UTC"}
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
