"""Recording requests for statistics, off the request path.

A handler calls `Recorder.record`, which only appends to an in-memory batch: no I/O
and no await, so recording can neither delay nor change an answer. A background task
writes the batches. When the database is away, rows wait in memory up to a bound;
past the bound the oldest are dropped and counted, never silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db

log = structlog.get_logger(__name__)

TABLES: Mapping[str, sa.Table] = {
    table.name: table
    for table in (db.update_checks, db.updates_staged, db.installs, db.downloads)
}
#: The columns of a recorded row, in the order its values are queued: every
#: column but the generated key. A queued row is a tuple, a third smaller than
#: the dict it was recorded from.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns if not c.primary_key)
    for name, table in TABLES.items()
}


@dataclass(frozen=True)
class _Insert:
    """One table's INSERT, compiled once for the database's driver.

    A batch goes to the driver's ``executemany`` as rows of plain values: the
    statement builder would compile and check every row again, which cost four
    times as much as the driver's own work.
    """

    sql: str
    #: The dialect's conversions of values (SQLite's of datetimes), by position.
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, table: sa.Table, dialect: Dialect) -> _Insert:
        names = COLUMNS[table.name]
        compiled = sa.insert(table).inline().compile(dialect=dialect, column_keys=names)
        # Every supported driver takes positional parameters (?, %s or $n), in
        # the order of the columns, which is the order of a queued row's values.
        columns = tuple(compiled.positiontup or ())
        assert columns == names, compiled.string
        convert = []
        for index, name in enumerate(columns):
            column_type = table.c[name].type.dialect_impl(dialect)
            processor = column_type.bind_processor(dialect)
            if processor is not None:
                convert.append((index, _faster(processor)))
        return cls(compiled.string, tuple(convert))

    def values(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A queued row's values, converted for the driver."""
        if not self.convert:
            return row
        values = list(row)
        for index, convert in self.convert:
            values[index] = convert(values[index])
        return tuple(values)


def sqlite_datetime(value: datetime) -> str:
    """A datetime as SQLite's text, as SQLAlchemy writes it: in a fifth of the time.

    The time zone is left out, as SQLAlchemy does; rasbot records in UTC.
    """
    return value.isoformat(" ", "microseconds")[:26]


_SAMPLES = (
    datetime(2026, 12, 3, 20, 15, 30, 123456, tzinfo=UTC),
    datetime(2027, 1, 1, tzinfo=UTC),
    datetime(2026, 6, 9, 7, 5, 3, 9),
)


def _faster(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`sqlite_datetime` where it writes what ``processor`` does, else ``processor``."""
    try:
        same = all(processor(d) == sqlite_datetime(d) for d in _SAMPLES)
    except (TypeError, ValueError):
        same = False
    return sqlite_datetime if same else processor


# One INSERT carries at most this many rows, well under every database's limits.
_STATEMENT_ROWS = 1000
# One transaction carries at most this many rows, and the writer starts early once
# this many wait. Few commits: on MariaDB and PostgreSQL each is a disk sync. On
# SQLite, with two million rows stored, a row costs the same 2.9 µs of CPU time in
# transactions of 1,000 rows as in ones of 20,000.
_TRANSACTION_ROWS = 20_000


class Recorder:
    """A bounded queue of rows and the task that writes them."""

    def __init__(
        self, engine: AsyncEngine, *, max_rows: int, flush_seconds: float
    ) -> None:
        self._engine = engine
        self._inserts: dict[tuple[Dialect, str], _Insert] = {}
        self._rows: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._max_rows = max_rows
        self._flush_seconds = flush_seconds
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.dropped = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._rows)

    def record(self, table: str, **row: Any) -> None:
        """Queue one row for ``table``; never blocks, never raises for a full queue.

        Columns left out are NULL; ``at`` is now unless given.
        """
        row.setdefault("at", datetime.now(UTC))
        values = tuple(map(row.get, COLUMNS[table]))
        if len(self._rows) >= self._max_rows:
            self._rows.popleft()
            self.dropped += 1
        self._rows.append((table, values))
        if len(self._rows) >= _TRANSACTION_ROWS:
            self._wake.set()

    def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name="rasbot-recorder")

    async def stop(self) -> None:
        """Stop the writer after one last attempt to write what is queued.

        The writer is asked to finish rather than cancelled: a batch cancelled in
        the middle of its INSERT would be neither written nor kept.
        """
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            if not await self.flush() and not self._stopping:
                # The database is away: wait a little longer before the next try.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._flush_seconds)

    async def flush(self) -> bool:
        """Write every queued row; False when the database refused (rows kept).

        A flush waits for one in progress (the writer's), so that when it returns,
        every row recorded before the call is written.
        """
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        while self._rows:
            batch = [
                self._rows.popleft()
                for _ in range(min(_TRANSACTION_ROWS, self.pending))
            ]
            try:
                await self._write(batch)
            except (SQLAlchemyError, OSError) as exc:
                self._rows.extendleft(reversed(batch))
                self._trim()
                self.failures += 1
                log.warning("recording.write_failed", rows=self.pending, error=str(exc))
                return False
            self.written += len(batch)
        return True

    async def _write(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for table, row in batch:
            by_table.setdefault(table, []).append(row)
        async with self._engine.begin() as conn:
            for table, rows in by_table.items():
                insert = self._insert(conn.dialect, table)
                # A statement at a time, so that the event loop goes on answering
                # while the driver works.
                for start in range(0, len(rows), _STATEMENT_ROWS):
                    chunk = rows[start : start + _STATEMENT_ROWS]
                    await conn.exec_driver_sql(
                        insert.sql, [insert.values(r) for r in chunk]
                    )

    def _insert(self, dialect: Dialect, table: str) -> _Insert:
        found = self._inserts.get((dialect, table))
        if found is None:
            found = self._inserts[dialect, table] = _Insert.of(TABLES[table], dialect)
        return found

    def _trim(self) -> None:
        # Rows recorded while a write was failing may have pushed past the bound.
        while len(self._rows) > self._max_rows:
            self._rows.popleft()
            self.dropped += 1
