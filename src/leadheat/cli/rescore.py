"""``leadheat rescore``: re-score every lead from history, in process or on Spark.

A thin shell over :mod:`leadheat.rescore`. PySpark is imported only for ``--engine spark``,
so the command exists (and says what to install) without the ``spark`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from leadheat.cli.output import err, out
from leadheat.cli.state import open_leadheat

ENGINES = ("local", "spark")


def rescore_command(
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local: fold the database's own events in this process; spark: read the "
            "history from --source and fold it on Apache Spark.",
        ),
    ] = "local",
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="With --engine spark: a folder of tables named as the store's (events, "
            "leads, evidence, outcomes, touches; .parquet or .csv) or a jdbc: URL.",
        ),
    ] = None,
    source_format: Annotated[
        str, typer.Option("--format", help="parquet or csv: the files in the --source folder.")
    ] = "parquet",
    master: Annotated[
        str | None,
        typer.Option(
            "--master",
            help="Spark master URL: spark://host:7077, yarn, k8s://https://host:443 "
            "(default local[*], every core here).",
        ),
    ] = None,
    conf: Annotated[
        list[str] | None,
        typer.Option(
            "--conf",
            help="A Spark setting KEY=VALUE (e.g. spark.executor.memory=8g, spark.jars=… for "
            "a JDBC driver; jdbc.user / jdbc.password go to the JDBC reader); repeatable.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Also write every lead's scores here as Parquet."),
    ] = None,
    write_back: Annotated[
        bool,
        typer.Option(
            "--write-back/--no-write-back",
            help="Write the scores into the database (one transaction); on by default.",
        ),
    ] = True,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions", min=1, help="Groups of leads the events are split into on Spark."
        ),
    ] = None,
) -> None:
    """Re-score every lead from its history by the current playbook.

    Needed after a change made outside leadheat (a history loaded into the tables directly)
    or, with --engine spark, when the history is too large for one machine.
    """
    from leadheat.rescore import rescore_in_process, rescore_on_spark

    if engine not in ENGINES:
        _fail(f"--engine must be local or spark, not {engine!r}")
    if engine == "local":
        if source is not None or master is not None or output is not None:
            _fail("--source, --master and --output need --engine spark")
        report = rescore_in_process(open_leadheat())
        out.print(f"re-scored {report.leads:,} leads from {report.events:,} events in process")
        return
    if source is None:
        _fail("--engine spark needs --source (a folder of tables or a jdbc: URL)")
    settings = {}
    for item in conf or []:
        key, equals, value = item.partition("=")
        if not equals or not key:
            _fail(f"--conf {item!r}: use KEY=VALUE")
        settings[key] = value
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _fail("--engine spark needs PySpark: pip install 'leadheat[spark]' (and a Java runtime)")
    from leadheat.spark.tables import SourceError

    try:
        report = rescore_on_spark(
            open_leadheat(), source, source_format, master, settings, output, write_back, partitions
        )
    except SourceError as error:
        _fail(str(error))
    where = " and written back" if write_back else ""
    saved = f"; scores in {output}" if output else ""
    out.print(f"re-scored {report.leads:,} leads on Spark{where}{saved}")


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)
