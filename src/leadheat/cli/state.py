"""What every command shares: the database it works on (``--db``), the
:class:`~leadheat.service.Leadheat` it opens there, and who the audit log says acted."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


class _State:
    url: str | None = None
    opened: list[Leadheat] = []  # noqa: RUF012  (one per command, closed when it ends)


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


def close_all() -> None:
    """Close what the command opened (the app calls this as each command ends)."""
    while _State.opened:
        _State.opened.pop().close()
