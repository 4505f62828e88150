"""Make the README's two charts from the real CDNOW purchase stream (``../shared/data``).

    .venv/bin/python docs/images/make_charts.py

Converts CDNOW_master.txt to an events CSV, imports it into a scratch SQLite database with
the default playbook, and runs the two commands whose charts the README shows:

    leadheat backtest --converts-on purchase --sweep --out DIR
    leadheat report --since 1997-01-01T00:00:00Z --until 1998-07-01T00:00:00Z --out DIR

then copies ``half_life_sweep.png`` and ``temperature_trend.png`` here. CDNOW is an academic
data set redistributed with the MIT-licensed ``lifetimes`` package (see the data README).
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

from leadheat.cli import main

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "cdnow_lifetimes" / "CDNOW_master.txt"


def leadheat(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as done:
        if done.code not in (0, None):
            sys.exit(f"leadheat {' '.join(args)} exited {done.code}")


def main_script() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        events = folder / "cdnow.csv"
        with DATA.open() as source, events.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["lead", "type", "timestamp", "cds", "dollars"])
            for line in source:
                parts = line.split()
                if parts and parts[0].isdigit():
                    customer, day, cds, dollars = parts
                    stamp = f"{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00Z"
                    writer.writerow([customer, "purchase", stamp, cds, dollars])
        db = f"sqlite:///{folder / 'cdnow.db'}"
        leadheat("--db", db, "init")
        leadheat("--db", db, "import", "events", str(events))
        leadheat(
            "--db",
            db,
            "backtest",
            "--converts-on",
            "purchase",
            "--sweep",
            "--out",
            str(folder / "charts"),
        )
        leadheat(
            "--db",
            db,
            "report",
            "--since",
            "1997-01-01T00:00:00Z",
            "--until",
            "1998-07-01T00:00:00Z",
            "--out",
            str(folder / "report"),
        )
        shutil.copy(folder / "charts" / "half_life_sweep.png", HERE / "half_life_sweep.png")
        shutil.copy(folder / "report" / "temperature_trend.png", HERE / "temperature_trend.png")


if __name__ == "__main__":
    main_script()
