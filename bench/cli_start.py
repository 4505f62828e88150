"""How long a ``leadheat`` command takes from the shell, start to exit: what a rep feels
typing ``leadheat show ana@example.com``.

Each command runs as a new process (as from a shell), ``--runs`` times (20), interleaved
with the others so that a burst of someone else's load on a shared machine hits all of them
alike; the table gives the median and the fastest wall time of each, what each costs over
a bare ``python -c pass`` measured in the same rounds (the interpreter's own start, which no
change to leadheat can take away), and its median CPU time (user + system), which a busy
machine stretches much less than the wall time.

Bytecode caches are written by a first, unmeasured run of each command (the environment's
``PYTHONDONTWRITEBYTECODE`` is dropped for the commands), as an installed package has them.

The commands, on a small database made here (``init``, then one lead with one event):

- ``show LEAD``, ``hot`` and ``leads`` through ``python -m leadheat``;
- ``show LEAD`` through the installed console script (``leadheat`` beside the interpreter,
  which imports ``leadheat.cli``), or the same two lines through ``python -c`` when there is
  none;
- ``--help``, which imports every command's module to describe it (context: not a goal);
- the libraries ``show`` needs imported alone, with no leadheat code (context: the floor).

Goal: ``leadheat show LEAD`` at most 300 ms wall. ``python -X importtime -m leadheat show
LEAD`` says where a slow start goes.

Run ``.venv/bin/python bench/cli_start.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

GOAL_MS = 300.0
LEAD = "ana@example.com"
ENTRY = "import sys; from leadheat.cli import main; sys.argv[0] = 'leadheat'; sys.exit(main())"
"""What the console script pip writes runs, for an interpreter with no ``leadheat`` beside it."""
LIBRARIES = "import sqlite3, pydantic, typer, typer._adapters, rich.console, rich.table"
"""What ``show`` on a SQLite file cannot start without: ``sqlite3`` (it reads the file through
the standard library, not SQLAlchemy), pydantic (the playbook), Typer (with the pydantic
adapters it builds each option's conversion with, whatever the command) and Rich. Importing
them alone is the floor of the command."""
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Timing:
    command: str
    median_ms: float
    best_ms: float
    reference_ms: float
    cpu_ms: float
    """Median CPU time (user + system): what the wall time would be on an idle machine,
    roughly; a busy one stretches the wall time, much less the CPU time."""

    @property
    def over_ms(self) -> float:
        """What the command costs over the interpreter's own start (medians)."""
        return self.median_ms - self.reference_ms


def entry_point() -> list[str]:
    """The ``leadheat`` console script beside this interpreter, or its equivalent."""
    script = Path(sys.executable).with_name("leadheat")
    return [str(script)] if script.is_file() else [sys.executable, "-c", ENTRY]


def small_database(folder: Path) -> str:
    """A SQLite file with the default playbook and one lead with one event."""
    url = f"sqlite:///{folder / 'small.db'}"
    for argv in (["init"], ["track", LEAD, "form_submit"]):
        subprocess.run(
            [sys.executable, "-m", "leadheat", "--db", url, *argv],
            check=True,
            capture_output=True,
            env=ENVIRONMENT,
        )
    return url


def run_ms(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run of ``argv`` as a new process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENVIRONMENT
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {errors.decode()[-500:]}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000


def measure(runs: int, folder: Path) -> list[Timing]:
    """Each command's wall times over ``runs`` interleaved rounds, the reference's among them."""
    url = small_database(folder)
    module = [sys.executable, "-m", "leadheat", "--db", url]
    commands = {
        "python -c pass (reference)": [sys.executable, "-c", "pass"],
        f"python -m leadheat show {LEAD}": [*module, "show", LEAD],
        f"leadheat show {LEAD} (console script)": [*entry_point(), "--db", url, "show", LEAD],
        "python -m leadheat hot": [*module, "hot"],
        "python -m leadheat leads": [*module, "leads"],
        "python -m leadheat tasks --limit 50": [*module, "tasks", "--limit", "50"],
        "python -m leadheat recover --limit 50": [*module, "recover", "--limit", "50"],
        "python -m leadheat --help (context)": [*module, "--help"],
        "libraries show needs, alone (context)": [sys.executable, "-c", LIBRARIES],
    }
    for argv in commands.values():  # once each unmeasured: bytecode caches written, files read
        run_ms(argv)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu = run_ms(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    reference = statistics.median(walls["python -c pass (reference)"])
    return [
        Timing(name, statistics.median(found), min(found), reference, statistics.median(cpus[name]))
        for name, found in walls.items()
    ]


def show_ms(timings: list[Timing]) -> Timing:
    """The goal's row: ``show`` through the console script."""
    return next(t for t in timings if "console script" in t.command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="rounds of every command (20)")
    args = parser.parse_args(argv)
    out = Console(highlight=False, width=160)
    out.print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    out.print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="leadheat-cli-start-") as folder:
        timings = measure(args.runs, Path(folder))
    table = Table(
        title=f"leadheat CLI start: wall time of a new process, {args.runs} interleaved runs",
        title_justify="left",
    )
    for name in ("command", "median ms", "best ms", "over python -c pass (ms)", "CPU ms"):
        table.add_column(name, justify="left" if name == "command" else "right")
    for t in timings:
        table.add_row(
            t.command,
            f"{t.median_ms:,.0f}",
            f"{t.best_ms:,.0f}",
            f"{t.over_ms:,.0f}",
            f"{t.cpu_ms:,.0f}",
        )
    out.print(table)
    goal = show_ms(timings)
    met = "met" if goal.median_ms <= GOAL_MS else "NOT met"
    out.print(
        f"goal: leadheat show <= {GOAL_MS:.0f} ms wall: {goal.median_ms:,.0f} ms median, {met}; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
