"""CPU seconds of issue 21's import against its ``executemany`` limit, round after round.

``bench/import_events.py --new-leads`` times wall-clock seconds, which a shared machine's
load distorts by a third from one run to the next. This times the same two things with
``time.process_time`` in one process (the limit's ``executemany`` of pre-built rows, then
``Leadheat.import_event_file`` of the same file into a fresh database), so that two versions
of the code can be compared by running it with each on the path, rounds interleaved.

Run ``.venv/bin/python bench/import_cpu.py [--events N] [--rounds R]``; without
``../shared/data`` it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from import_events import (
    DATA,
    NEW_LEAD_VARIANTS,
    derive,
    initialised,
    insert_events,
    read_cdnow,
    with_leads,
    write_csv,
)
from leadheat.service import Leadheat
from leadheat.times import to_micros


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="how many events")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of limit then import")
    args = parser.parse_args(argv)
    out = Console(highlight=False, width=120)
    if not DATA.is_file():
        out.print(f"no CDNOW data at {DATA}: nothing measured")
        return
    events = list(derive(read_cdnow(DATA), args.events, datetime.now(UTC), NEW_LEAD_VARIANTS))
    table = Table(title=f"{args.events:,} events of new leads: CPU seconds (time.process_time)")
    for column in ("round", "limit CPU s", "import CPU s", "ratio (CPU)", "ratio (wall)"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="leadheat-bench-") as folder:
        root = Path(folder)
        csv_path = root / "new-leads.csv"
        write_csv(csv_path, events)
        for n in range(args.rounds):
            connection, lead_ids = with_leads(root / f"limit{n}.db", events)
            rows = [
                (e.event_id, lead_ids[e.lead], "purchase", to_micros(e.at), e.properties_json())
                for e in events
            ]
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            insert_events(connection, rows)
            limit_wall, limit_cpu = time.perf_counter() - wall, time.process_time() - cpu
            connection.close()
            del rows
            url = f"sqlite:///{root / f'import{n}.db'}"
            initialised(url)
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            lh = Leadheat(url)
            report = lh.import_event_file(csv_path)
            import_wall, import_cpu = time.perf_counter() - wall, time.process_time() - cpu
            lh.engine.dispose()
            if report.stored.stored != len(events):
                raise SystemExit(f"stored {report.stored.stored} events, expected {len(events)}")
            table.add_row(
                str(n + 1),
                f"{limit_cpu:.2f}",
                f"{import_cpu:.2f}",
                f"{limit_cpu / import_cpu:.2f}",
                f"{limit_wall / import_wall:.2f}",
            )
    out.print(f"command: {' '.join([sys.executable, *sys.argv])}")
    out.print(table)


if __name__ == "__main__":
    main()
