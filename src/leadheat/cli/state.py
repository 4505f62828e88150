"""What every command shares: the database it works on (``--db``), the
:class:`~leadheat.service.Leadheat` it opens there, and who the audit log says acted."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from leadheat.lookup import LeadView
    from leadheat.playbook import Playbook
    from leadheat.service import Leadheat

ACTOR = "cli"
"""Who the audit log says acted, for every change made by a command."""
DEFAULT_URL = "sqlite:///leadheat.db"
""":data:`leadheat.store.database.DEFAULT_URL`, written out so that starting a command
imports no database code (a test holds the two equal)."""


def environment_url() -> str:
    """``$LEADHEAT_DATABASE_URL`` (any case), as :class:`~leadheat.settings.Settings` reads
    it, or the default file: read here without pydantic, which a command that only reads
    need not load (a test holds the two equal)."""
    found = {name.lower(): value for name, value in os.environ.items()}
    return found.get("leadheat_database_url", DEFAULT_URL)


class Shows(Protocol):
    """What ``leadheat show`` asks of the database: :class:`~leadheat.service.Leadheat`, or
    on a SQLite file the lighter :class:`~leadheat.lookup.Lookup`."""

    def playbook(self) -> tuple[int, Playbook]: ...

    def show(self, lead: str | int, at: datetime | None = None) -> LeadView: ...

    def close(self) -> None: ...


class _State:
    url: str | None = None
    opened: list[Shows] = []  # noqa: RUF012  (one per command, closed when it ends)


def use_database(url: str) -> None:
    """Work on the database at ``url`` (the app's ``--db``, or the setting)."""
    _State.url = url


def database_url() -> str:
    """The SQLAlchemy URL of the database the commands work on."""
    return _State.url if _State.url is not None else environment_url()


def open_leadheat() -> Leadheat:
    """A :class:`~leadheat.service.Leadheat` on the database, closed when the command ends."""
    from leadheat.service import Leadheat

    lh = Leadheat(database_url())
    _State.opened.append(lh)
    return lh


def sqlite_file(url: str) -> str | None:
    """The file of a plain ``sqlite:///FILE`` URL (as SQLAlchemy reads it), or ``None`` for
    any other URL: another database, an in-memory one, or one with options or escapes,
    which only SQLAlchemy should read."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            plain = path not in ("", ":memory:") and not any(c in path for c in "?%#")
            return path if plain else None
    return None


def open_lookup() -> Shows:
    """What shows a lead, closed when the command ends: on a SQLite file a
    :class:`~leadheat.lookup.Lookup`, which reads it through ``sqlite3`` and starts without
    SQLAlchemy (``leadheat show`` is typed all day: docs/performance.md, "CLI start");
    elsewhere the :class:`~leadheat.service.Leadheat` of :func:`open_leadheat`. Both run
    the one :func:`leadheat.lookup.lead_view`."""
    path = sqlite_file(database_url())
    if path is None:
        return open_leadheat()
    from leadheat.lookup import Lookup

    lookup = Lookup(path)
    _State.opened.append(lookup)
    return lookup


def close_all() -> None:
    """Close what the command opened (the app calls this as each command ends)."""
    while _State.opened:
        _State.opened.pop().close()
