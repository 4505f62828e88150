"""A command starts with what it needs (issue 21): ``import leadheat.cli`` and the commands a
rep types all day (``show``, ``hot``, ``leads``) load neither the web dashboard and its HTTP
stack, nor plotting, nor the model trainers, nor the migration tool.

Each check runs in a new interpreter, as a shell would start the command, and reads that
process's ``sys.modules`` when it exits. How fast that makes a command is measured by
``bench/cli_start.py``, not here.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer.main
from sqlalchemy.engine import make_url
from typer.core import TyperGroup

import leadheat
from leadheat.cli import app
from leadheat.cli.app import COMMANDS, GROUPS, expected
from leadheat.cli.state import DEFAULT_URL, environment_url, sqlite_file
from leadheat.service import Leadheat
from leadheat.settings import Settings
from leadheat.store import database
from leadheat.views import view_json

HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "matplotlib",
    "lightgbm",
    "numba",
    "sklearn",
    "scipy",
    "pandas",
    "pyarrow",
    "alembic",
    "pydantic_settings",
    "leadheat.web",
    "leadheat.api",
    "leadheat.predict",
    "leadheat.analytics",
)
"""Packages no reading command needs: a module in any of them is a regression."""
LEAD = "ana@example.com"
PROBE = """
import atexit, json, sys
report = sys.argv[1]
def _write():
    with open(report, "w") as file:
        json.dump(sorted(sys.modules), file)
atexit.register(_write)
sys.argv = ["leadheat", *sys.argv[2:]]
if sys.argv[1:]:
    from leadheat.cli import main
    main()
else:
    import leadheat.cli
"""
"""Runs ``leadheat ARGS`` (or only imports the CLI, without ARGS) and writes the names of the
modules loaded by the time the process exits into the file named first."""


def within(modules: list[str], *packages: str) -> list[str]:
    """The modules that are one of ``packages`` or inside one."""
    return [m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages)]


def heavy(modules: list[str]) -> list[str]:
    return within(modules, *HEAVY)


def loaded(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the probe in a new interpreter; its result and the modules it had loaded."""
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    return done, json.loads(report.read_text())


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('start') / 'small.db'}"
    with Leadheat(url) as lh:
        lh.init()
        lh.track(LEAD, "demo_request")
    return url


def test_importing_the_cli_loads_no_heavy_module(tmp_path: Path) -> None:
    done, modules = loaded(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "leadheat.cli" in modules and "typer" in modules  # the probe saw the import
    assert heavy(modules) == []
    # nor the database layer or the package's public API: only a command needs them
    assert [m for m in modules if m.startswith(("sqlalchemy", "leadheat.service"))] == []


@pytest.mark.parametrize(
    "argv",
    [
        ["show", LEAD],
        ["show", LEAD, "--json"],
        ["hot"],
        ["leads", "--limit", "5"],
        ["tasks", "--limit", "5"],
        ["recover", "--limit", "5"],
    ],
    ids=" ".join,
)
def test_reading_commands_load_no_heavy_module(
    tmp_path: Path, small_db: str, argv: list[str]
) -> None:
    done, modules = loaded(tmp_path, "--db", small_db, *argv)
    assert done.returncode == 0, done.stderr
    assert LEAD in done.stdout or argv[0] in ("hot", "recover")
    assert heavy(modules) == []
    if argv[0] == "show":  # one lead, read from a SQLite file through sqlite3: no SQLAlchemy
        assert "leadheat.lookup" in modules and "sqlite3" in modules
        assert within(modules, "numpy", "sqlalchemy", "leadheat.service", "leadheat.core") == []
    elif argv[0] in ("hot", "leads"):
        assert "leadheat.reading" in modules


def test_an_error_from_a_reading_command_is_still_one_line(tmp_path: Path, small_db: str) -> None:
    done, modules = loaded(tmp_path, "--db", small_db, "show", "nobody@example.com")
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["error: no lead known as 'nobody@example.com'"]
    assert heavy(modules) == []


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("missing.db", "error: no database at {file}: run `leadheat init` first"),
        ("empty.db", "error: the database is not initialised: run `leadheat init`"),
    ],
)
def test_show_on_a_sqlite_file_that_is_not_set_up_says_so_and_creates_nothing(
    tmp_path: Path, name: str, error: str
) -> None:
    file = tmp_path / name
    if name == "empty.db":
        sqlite3.connect(file).close()
    done, modules = loaded(tmp_path, "--db", f"sqlite:///{file}", "show", LEAD)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [error.format(file=file)]
    assert file.exists() == (name == "empty.db")
    assert within(modules, "sqlalchemy") == []


def test_show_reads_a_sqlite_file_as_the_service_does(small_db: str, tmp_path: Path) -> None:
    """``leadheat show`` on a SQLite file (sqlite3 alone) and the service (SQLAlchemy) give
    one view, as of one instant."""
    at = "2030-01-01T00:00:00Z"
    done = subprocess.run(
        [sys.executable, "-m", "leadheat", "--db", small_db, "show", LEAD, "--at", at, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    with Leadheat(small_db) as lh:
        _, book = lh.playbook()
        view = lh.show(LEAD, datetime(2030, 1, 1, tzinfo=UTC))
        expected_view = json.loads(json.dumps(view_json(view, book.fit.qualified_at)))
    assert json.loads(done.stdout) == expected_view
    assert expected_view["heat"] > 0 and expected_view["lead"]["email"] == LEAD


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///leadheat.db",
        "sqlite:////tmp/a b/leadheat.db",
        "sqlite+pysqlite:///relative/x.db",
        "sqlite:///x.db?timeout=5",
        "sqlite:///a%20b.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://u@h/db",
    ],
)
def test_show_reads_through_sqlite3_only_the_files_sqlalchemy_would_open_alike(url: str) -> None:
    parsed = make_url(url)
    assert sqlite_file(url) in (None, parsed.database)
    plain = parsed.get_backend_name() == "sqlite" and not parsed.query and "%" not in url
    assert (sqlite_file(url) is not None) == (plain and parsed.database not in (None, ":memory:"))


def test_every_command_is_registered_by_name_and_loads() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    assert list(group.commands) == [name for name, _, _ in (*COMMANDS, *GROUPS)]
    for name in group.commands:
        command = group.commands[name]
        assert command.name == name
        assert command.help, name
    help_text = subprocess.run(
        [sys.executable, "-m", "leadheat", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    for name in group.commands:
        assert re.search(rf"^\W*{re.escape(name)}\s", help_text, re.MULTILINE), name


def test_expected_errors_are_recognised_without_importing_their_modules() -> None:
    from leadheat.errors import UnknownLeadError
    from leadheat.predict.model import ModelFileError

    assert expected(UnknownLeadError("x")) and expected(ModelFileError("x"))
    assert expected(FileNotFoundError("x"))
    assert not expected(KeyError("x")) and not expected(ValueError("x"))


@pytest.mark.parametrize(
    "environment",
    [{}, {"LEADHEAT_DATABASE_URL": "sqlite:///a.db"}, {"leadheat_database_url": "sqlite:///b.db"}],
    ids=["unset", "upper", "lower"],
)
def test_the_cli_reads_the_database_setting_as_settings_does(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    for name in [n for n in os.environ if n.lower() == "leadheat_database_url"]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert environment_url() == Settings().database_url
    assert DEFAULT_URL == database.DEFAULT_URL


def test_the_package_exports_load_on_first_use(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, leadheat; before = 'leadheat.service' in sys.modules; "
            "from leadheat import Leadheat, Temperature; "
            "print(before, Leadheat.__module__, Temperature.__module__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False", "leadheat.service", "leadheat.scoring.temperature"]
    assert set(leadheat.__all__) <= set(dir(leadheat))
    with pytest.raises(AttributeError):
        _ = leadheat.NoSuchThing  # type: ignore[attr-defined]
