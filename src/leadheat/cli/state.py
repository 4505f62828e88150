"""What every command shares: the database it works on (``--db``), the
:class:`~leadheat.service.Leadheat` it opens there, and who the audit log says acted."""

from __future__ import annotations

from leadheat.service import Leadheat
from leadheat.settings import Settings

ACTOR = "cli"
"""Who the audit log says acted, for every change made by a command."""


class _State:
    url: str = Settings().database_url
    opened: list[Leadheat] = []  # noqa: RUF012  (one per command, closed when it ends)


def use_database(url: str) -> None:
    """Work on the database at ``url`` (the app's ``--db``, or the setting)."""
    _State.url = url


def database_url() -> str:
    """The SQLAlchemy URL of the database the commands work on."""
    return _State.url


def open_leadheat() -> Leadheat:
    """A :class:`~leadheat.service.Leadheat` on the database, closed when the command ends."""
    lh = Leadheat(_State.url)
    _State.opened.append(lh)
    return lh


def close_all() -> None:
    """Close what the command opened (the app calls this as each command ends)."""
    while _State.opened:
        _State.opened.pop().close()
