"""``leadheat import events FILE``: a file of events stored in one transaction, a block at a
time.

Each block is read column by column (:mod:`leadheat.ingest.columnar`), its unknown leads
created in bulk and its events inserted in bulk (:mod:`leadheat.store.event_import`); the
leads' score states are written once, after the last block. Memory follows the block and the
leads the file names (about a kilobyte each at the end), not its events.

Nothing of a file with a bad row is stored (unless its bad rows are set aside): the whole
file is one transaction, rolled back when a bad row, or an unscored type under
``--strict-types``, is found in any block. A file whose layout only the row reader reads
(quoted fields, blank lines…) is read by it (:func:`~leadheat.ingest.csv_files.parse_events`)
and stored the same way; the stored result is the same either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection

from leadheat.bulk import paused_gc, read_ahead
from leadheat.core import Core, on_current_playbook
from leadheat.ingest.columnar import EventChunk, NotColumnar, event_chunks
from leadheat.ingest.csv_files import BadRow, CsvImportError, Progress, parse_events
from leadheat.speed.watch import Watch
from leadheat.store.event_import import EventColumns, EventImport
from leadheat.store.events import RecordReport


@dataclass
class EventFileReport:
    """What importing a file did."""

    read: int = 0
    """Rows read, good and bad."""
    bad: list[BadRow] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    """Good rows per event type."""
    stored: RecordReport = field(default_factory=RecordReport)
    columnar: bool = True
    """Whether the file was read column by column (else row by row)."""


@on_current_playbook
def import_event_file(
    core: Core,
    path: Path,
    *,
    react: bool = False,
    set_aside: Callable[[list[BadRow]], None] | None = None,
    check_types: Callable[[Counter[str]], None] | None = None,
    progress: Progress | None = None,
    columnar: bool = True,
) -> EventFileReport:
    """Store the events of ``path`` in one transaction (see the module's docstring).

    Bad rows refuse the file (:class:`CsvImportError`, nothing stored) unless ``set_aside``
    takes them; ``check_types`` sees the count of good rows per event type before the
    transaction commits, and refuses the file by raising. ``react``: fire speed-to-lead
    triggers. ``columnar=False`` reads row by row whatever the file.
    """
    version, book = core.playbook()
    now = core.clock()
    oldest = book.ingest.oldest(now)
    tolerance = book.ingest.future_tolerance

    def chunks() -> Iterator[EventChunk]:
        if columnar:  # the next block is read while this one is stored
            yield from read_ahead(event_chunks(path, now, tolerance, oldest))
        else:
            yield _row_chunk(path, now, tolerance, oldest, progress)

    def apply(connection: Connection, watch: Watch) -> EventFileReport:
        report = EventFileReport(columnar=columnar)
        importer = EventImport(
            connection,
            book,
            version,
            now,
            before_fold=watch.look_locked if watch.enabled else None,
            watch_types=book.speed.watched_events if watch.enabled else frozenset(),
        )
        size = path.stat().st_size
        for chunk in chunks():
            if not importer.started and chunk.done:  # the file's rows, guessed from its first block
                importer.expected = chunk.read * size // chunk.done
            report.read += chunk.read
            report.bad.extend(chunk.bad)
            report.types.update(chunk.types)
            if not report.bad or set_aside is not None:
                importer.add(chunk.columns)
            if progress is not None and chunk.done:
                progress(chunk.done)
        if report.bad:
            if set_aside is None:
                raise CsvImportError(path, report.bad)
            set_aside(report.bad)
        if check_types is not None:
            check_types(report.types)
        report.stored = importer.finish()
        watch.changed(report.stored.lead_ids, report.stored.arrived)
        return report

    with paused_gc():
        try:
            return core.write_watched(book, now, apply, react, version=version)
        except NotColumnar:
            columnar = False
            return core.write_watched(book, now, apply, react, version=version)


def _row_chunk(
    path: Path,
    now: datetime,
    tolerance: timedelta,
    oldest: datetime | None,
    progress: Progress | None,
) -> EventChunk:
    """The whole file as one chunk, read row by row."""
    parsed = parse_events(path, now, tolerance, progress, oldest)
    return EventChunk(
        EventColumns.of(parsed.batch),
        parsed.bad,
        parsed.read,
        Counter(parsed.batch.types),
    )
