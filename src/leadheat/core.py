"""What every capability of :class:`~leadheat.service.Leadheat` shares: one database, the
clock, the current playbook (cached per process, checked per write), write transactions that
score by it and retry a lost race, and finding a lead by any of its references.

The capability modules (``ingest/``, ``speed/``, ``delivery/``, ``access/``, privacy, reading)
take a :class:`Core` and build on these; ``Leadheat`` is a ``Core`` with one thin method per
capability, so nothing here knows the capabilities.

>>> from datetime import UTC, datetime
>>> core = Core("sqlite://", clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))
>>> core.init()
1
>>> core.playbook()[0]
1
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from leadheat.errors import LeadheatError, NotInitialisedError, UnknownLeadError
from leadheat.identity import LeadKey
from leadheat.lookup import find_lead, require_file
from leadheat.playbook import Playbook, default_playbook_text, parse_playbook
from leadheat.store import playbooks
from leadheat.store.audit import DEFAULT_ACTOR
from leadheat.store.database import (
    DEFAULT_URL,
    MergedMeanwhileError,
    hold_playbook_lock,
    hold_start_lock,
    is_initialised,
    make_engine,
    migrate,
    reader_of,
    write_transaction,
    writer,
)
from leadheat.store.leads import find_leads
from leadheat.times import as_utc, check_range

if TYPE_CHECKING:
    from leadheat.delivery.egress import Egress
    from leadheat.speed.watch import Watch

# What only writing needs (speed to lead's watch, re-scoring, the audit log, the outbox's
# secret) is imported in the methods that write: a command that only reads (``leadheat
# show``) starts without loading them (docs/performance.md, "CLI start").

RACE_RETRIES = 5
PLAYBOOK_RECHECK_SECONDS = 1.0
"""How long a process answers reads by the playbook version it last saw before asking the
database again: a version applied elsewhere (the CLI, another server) shows within this.
Writes that score ask in their own transaction every time."""
REPLANS = 5
T = TypeVar("T")
P = ParamSpec("P")


def utc_now() -> datetime:
    return datetime.now(UTC)


class PlaybookMovedError(Exception):
    """Raised inside a write transaction that meets a newer playbook than the one it was
    planned with; :func:`on_current_playbook` runs the write again by the new one."""


def on_current_playbook(
    write: Callable[Concatenate[Core, P], T],
) -> Callable[Concatenate[Core, P], T]:
    """Run a write that scores again, from the start, when its transaction finds a newer
    playbook than the one it read first (:class:`PlaybookMovedError`): its checks, its scores and
    its alerts then all follow the version the transaction commits under. What runs before
    the transaction only reads, so running it again is safe."""

    @functools.wraps(write)
    def run(core: Core, /, *args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(REPLANS - 1):
            try:
                return write(core, *args, **kwargs)
            except PlaybookMovedError:
                continue
        return write(core, *args, **kwargs)

    return run


def _check_outbound(source: str, egress: Egress | None) -> None:
    """Refuse a playbook whose alerts call where the operator does not allow."""
    # imported here: the delivery modules import the package, which imports this module
    from leadheat.delivery.egress import Egress

    (egress or Egress.from_environment()).check_playbook(parse_playbook(source), source)


class Core:
    """One database (any SQLAlchemy URL; SQLite file by default) and its current playbook.

    Time comes from ``clock`` so that tests and time travel need no sleeping.
    """

    def __init__(self, url: str = DEFAULT_URL, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.url = url
        self.clock = clock
        self.engine: Engine = make_engine(url)
        self._writer = writer(self.engine)
        self._book: tuple[int, Playbook] | None = None
        self._book_checked = -float("inf")
        """When (``time.monotonic``) ``_book`` was last known to be the current version."""
        self.outbox_ready = threading.Event()
        """Set when a write put notifications in the outbox: wakes an in-process worker."""

    def close(self) -> None:
        """Release the database connections (the object is unusable afterwards)."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- set-up and playbook ------------------------------------------------------------
    def init(self, playbook_source: str | None = None) -> int:
        """Create or upgrade the schema; store a first playbook if there is none.

        Returns the current playbook version.
        """
        if playbook_source is not None:
            _check_outbound(playbook_source, None)
        from leadheat.store.outbox import signing_secret

        migrate(self.engine)
        with write_transaction(self._writer) as connection:
            hold_start_lock(connection)  # processes starting together store one first playbook
            current = playbooks.current_playbook(reader_of(connection))
            if current is None:
                source = playbook_source if playbook_source is not None else default_playbook_text()
                version = playbooks.add_version(connection, source, self.clock())
            elif playbook_source is not None:
                raise LeadheatError(
                    "this database already has a playbook; use `leadheat playbook apply FILE`"
                )
            else:
                version = current.version
            signing_secret(connection, self.clock())
        self._book_checked = -float("inf")
        return version

    def playbook(self) -> tuple[int, Playbook]:
        """The current playbook and its version.

        The version is asked of the database at most every :data:`PLAYBOOK_RECHECK_SECONDS`
        (one look at an index), so a playbook applied by another process (``leadheat
        playbook apply``, another server) is the one this process shows and scores by within
        about a second; each version is parsed once.
        """
        book = self._book
        if book is not None and time.monotonic() - self._book_checked < PLAYBOOK_RECHECK_SECONDS:
            return book
        if book is None:
            url = self.engine.url
            if url.get_backend_name() == "sqlite":
                require_file(url.database or "")
            if not is_initialised(self.engine):
                raise NotInitialisedError("the database is not initialised: run `leadheat init`")
        with self.engine.connect() as connection:
            return self._current_book(connection)

    def _current_book(self, connection: Connection) -> tuple[int, Playbook]:
        """The playbook current in ``connection``'s transaction, parsed only if its version
        is not the one this process holds. A transaction whose snapshot predates the version
        another thread already holds gets its own (older) one, and the held one stays."""
        checked = time.monotonic()
        version = playbooks.current_version(connection)
        book = self._book
        if book is not None and book[0] == version:
            self._book_checked = checked
            return book
        current = playbooks.current_playbook(reader_of(connection))
        if current is None:
            raise NotInitialisedError("the database has no playbook: run `leadheat init`")
        found = (current.version, current.playbook)
        if book is None or found[0] > book[0]:
            self._book = found
            self._book_checked = checked
        return found

    def playbook_in(self, connection: Connection) -> tuple[int, Playbook]:
        """The playbook current in this write transaction, for a module that scores in one
        of its own (:meth:`transaction`): it holds the playbook lock (shared), so the version
        cannot change before the transaction ends."""
        hold_playbook_lock(connection, exclusive=False)
        return self._current_book(connection)

    def _hold_playbook(self, connection: Connection, version: int) -> None:
        """In a write transaction that scores by ``version``: hold the playbook lock (shared)
        and raise :class:`PlaybookMovedError` if a newer version was applied since the write read
        it, so that no lead is scored by a version older than the one just applied."""
        hold_playbook_lock(connection, exclusive=False)
        if self._current_book(connection)[0] != version:
            raise PlaybookMovedError(version)

    @contextmanager
    def scoring(self, version: int) -> Iterator[Connection]:
        """A write transaction that scores by ``version`` (see :meth:`_hold_playbook`)."""
        with write_transaction(self._writer) as connection:
            self._hold_playbook(connection, version)
            yield connection

    def playbook_source(self) -> str:
        with self.engine.connect() as connection:
            current = playbooks.current_playbook(reader_of(connection))
        if current is None:
            raise NotInitialisedError("the database has no playbook: run `leadheat init`")
        return current.source

    def playbook_history(self) -> list[tuple[int, str, datetime, str]]:
        with self.engine.connect() as connection:
            return playbooks.history(connection)

    def apply_playbook(
        self, source: str, *, actor: str = DEFAULT_ACTOR, egress: Egress | None = None
    ) -> int:
        """Store ``source`` as the next playbook version and re-score every lead by it.

        Its alerts must call only where the operator allows (``egress``; by default the
        limits the environment sets): see :mod:`leadheat.delivery.egress`.
        """
        from leadheat.store import audit
        from leadheat.store.audit import AuditAction
        from leadheat.store.state import rebuild

        _check_outbound(source, egress)
        book = parse_playbook(source)
        now = self.clock()
        with write_transaction(self._writer) as connection:
            hold_playbook_lock(connection, exclusive=True)
            version = playbooks.add_version(connection, source, now)
            rebuild(connection, book, version)
            audit.record(
                connection,
                now,
                actor,
                AuditAction.PLAYBOOK_APPLY,
                f"playbook:{version}",
                {"version": version},
            )
        self._book = (version, book)
        self._book_checked = time.monotonic()
        return version

    # -- writing ------------------------------------------------------------------------
    def write(self, work: Callable[[Connection], T], version: int | None = None) -> T:
        """Run ``work`` in one write transaction, again if it lost a race; one that scores
        names the playbook ``version`` it scores by (see :meth:`_hold_playbook`).

        Two PostgreSQL transactions creating the same new lead at once both pass the "is it
        known?" check; the second then hits the identity's unique key. Its transaction is
        rolled back whole and retried, and then finds the lead the first one created. A
        deadlock or serialization failure is retried the same way (new leads' identities go
        in in key order, so writers should not deadlock on them), and so is a write that
        found a lead another transaction merged away meanwhile
        (:class:`~leadheat.store.database.MergedMeanwhileError`). (SQLite takes the write
        lock before reading, so it never races.)
        """
        for attempt in range(RACE_RETRIES):
            try:
                with write_transaction(self._writer) as connection:
                    if version is not None:
                        self._hold_playbook(connection, version)
                    return work(connection)
            except (DBAPIError, MergedMeanwhileError) as error:
                if attempt == RACE_RETRIES - 1 or (
                    isinstance(error, DBAPIError) and not _lost_race(error)
                ):
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def write_watched(
        self,
        book: Playbook,
        now: datetime,
        work: Callable[[Connection, Watch], T],
        react: bool = True,
        *,
        version: int,
    ) -> T:
        """:meth:`write` with speed to lead: ``work`` tells the watch which leads it is about
        to change and which it changed; the triggers they fire are handled in the same
        transaction, and an in-process worker is woken once it commits."""
        from leadheat.speed.watch import Watch

        watch: Watch | None = None

        def run(connection: Connection) -> T:
            nonlocal watch
            watch = Watch(connection, book, now, enabled=react)
            result = work(connection, watch)
            watch.react()
            return result

        result = self.write(run, version)
        if watch is not None and watch.queued:
            self.outbox_ready.set()
        return result

    def checked_at(self, at: datetime | None, book: Playbook) -> datetime:
        """When something the caller says happened ``at`` did (now when ``None``): refused
        without a UTC offset, too far ahead of the clock, or older than ``[ingest] max_age``."""
        now = self.clock()
        if at is None:
            return now
        if at.tzinfo is None:
            raise LeadheatError(f"{at.isoformat()} has no UTC offset")
        at = check_range(as_utc(at))
        if at > now + book.ingest.future_tolerance:
            raise LeadheatError(
                f"{at.isoformat()} is in the future (more than "
                f"{book.ingest.future_tolerance} ahead of now, {now.isoformat()})"
            )
        oldest = book.ingest.oldest(now)
        if oldest is not None and at < oldest:
            raise LeadheatError(
                f"{at.isoformat()} is older than the playbook's [ingest] max_age allows "
                f"(before {oldest.isoformat()})"
            )
        return at

    def find_lead(self, connection: Connection, lead: str | int) -> int:
        """The id of the lead named by an email, external id, ``anon:…`` or ``id:N``."""
        return find_lead(reader_of(connection), lead)

    def require_leads(self, connection: Connection, keys: Sequence[LeadKey]) -> dict[LeadKey, int]:
        """The id of each key's lead; :class:`UnknownLeadError` names the first unknown ones."""
        ids = find_leads(connection, keys)
        unknown = [str(k) for k in dict.fromkeys(keys) if k not in ids]
        if unknown:
            raise UnknownLeadError(
                f"no lead known as {', '.join(repr(u) for u in unknown[:5])}"
                + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            )
        return ids

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction, for modules built on the service (the predictive model)."""
        return write_transaction(self._writer)

    def lead_id(self, lead: str | int) -> int:
        """The id of the lead a reference (email, external id, ``anon:…``, ``id:N``) names."""
        with self.engine.connect() as connection:
            return self.find_lead(connection, lead)

    def known_leads(self, keys: Sequence[LeadKey]) -> dict[LeadKey, int]:
        """Which of these keys name a lead already."""
        with self.engine.connect() as connection:
            return find_leads(connection, keys)


def _lost_race(error: DBAPIError) -> bool:
    """A race with another transaction that running again settles (PostgreSQL): a unique key
    it took first (``unique_violation``), or a deadlock or serialization failure, after which
    PostgreSQL has already rolled this transaction back."""
    return getattr(error.orig, "sqlstate", None) in {"23505", "40P01", "40001"}
