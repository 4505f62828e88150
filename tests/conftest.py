"""Fixtures: a fresh real database per test, on SQLite and (when configured) PostgreSQL.

Set ``LEADHEAT_TEST_POSTGRES_URL`` (``.ci/run`` does) and every test that takes ``db_url``
or ``lh`` runs twice, once per backend; each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from leadheat.service import Leadheat

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_URL = os.environ.get("LEADHEAT_TEST_POSTGRES_URL")
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leadheat.db'}"
        return
    assert POSTGRES_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lh(db_url: str, clock: Clock) -> Iterator[Leadheat]:
    """An initialised leadheat with the default playbook and a settable clock."""
    instance = Leadheat(db_url, clock=clock)
    instance.init()
    yield instance
    instance.engine.dispose()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a clear message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA} (CI always has them)")
    return SHARED_DATA
