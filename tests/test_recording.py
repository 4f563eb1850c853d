"""The batch recorder: nothing recorded is lost, nothing waits on the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from structlog.testing import capture_logs

from rasbot import db, migrate
from rasbot.recording import Recorder, _Insert, sqlite_datetime


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[Any]:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def count(engine: Any) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(sa.func.count()).select_from(db.installs))
    return int(found or 0)


def record_installs(recorder: Recorder, n: int) -> None:
    for i in range(n):
        recorder.record("installs", platform="linux", device="RPi2", address=f"a{i}")


async def test_stop_in_the_middle_of_a_write_loses_nothing(engine: Any) -> None:
    recorder = Recorder(engine, max_rows=100_000, flush_seconds=0.01)
    recorder.start()
    record_installs(recorder, 5000)
    await asyncio.sleep(0.02)  # the writer is now busy with the first batches

    await recorder.stop()

    assert await count(engine) == 5000
    assert (recorder.written, recorder.pending, recorder.dropped) == (5000, 0, 0)


async def test_rows_wait_while_the_database_is_away_and_then_land(
    engine: Any, tmp_path: Any
) -> None:
    away = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    recorder = Recorder(away, max_rows=100, flush_seconds=0.01)
    record_installs(recorder, 3)

    assert not await recorder.flush()  # no tables there: the write fails
    assert recorder.pending == 3

    recorder._engine = engine
    assert await recorder.flush()
    assert await count(engine) == 3
    await away.dispose()


async def test_a_flush_lands_whole_or_stays_queued_whole(engine: Any) -> None:
    # Rows of one flush go in one transaction, several INSERT statements long: a
    # row refused in a later statement keeps the earlier statements' rows queued
    # too, so that the next attempt writes none of them twice.
    recorder = Recorder(engine, max_rows=100_000, flush_seconds=60)
    record_installs(recorder, 2200)
    recorder.record("installs", platform=None)  # NOT NULL: the database refuses
    record_installs(recorder, 299)

    with capture_logs() as logged:
        assert not await recorder.flush()

    assert await count(engine) == 0
    assert (recorder.pending, recorder.written, recorder.failures) == (2500, 0, 1)
    # The error is logged without the rows' values: clients' addresses.
    (failed,) = [e for e in logged if e["event"] == "recording.write_failed"]
    assert "installs" in failed["error"]
    assert "a2000" not in failed["error"] and "RPi2" not in failed["error"]


async def test_queue_is_bounded_and_counts_what_it_drops(engine: Any) -> None:
    recorder = Recorder(engine, max_rows=10, flush_seconds=1)

    record_installs(recorder, 25)

    assert (recorder.pending, recorder.dropped) == (10, 15)
    assert await recorder.flush()
    assert await count(engine) == 10


async def test_every_table_reads_back_what_was_recorded(engine: Any) -> None:
    # Rows go to the driver as plain values: the dialect's own conversions (SQLite
    # keeps datetimes as text) must still apply, and unset columns must be NULL.
    # Whole seconds: MySQL's DATETIME keeps no fraction.
    at = datetime(2026, 12, 3, 20, 15, 30, tzinfo=UTC)
    recorded = {
        "update_checks": {
            "serial": "00000000abcdef12",
            "revision": "a02082",
            "device": "RPi2",
            "client_version": "1.6.2.123-e23a7eef",
            "channel": "stable",
            "address": "2001:db8::1",
            "offered": "1.7.3",
        },
        "updates_staged": {"channel": "beta", "from_version": "1.7.1"},
        "installs": {"platform": "osx", "device": "RPi"},
        "downloads": {"release_id": 2**40, "version": "1.7.3", "asset": "a.tar.gz"},
    }
    recorder = Recorder(engine, max_rows=100, flush_seconds=60)
    for table, row in recorded.items():
        recorder.record(table, at=at, **row)
    assert await recorder.flush()

    async with engine.connect() as conn:
        for name, row in recorded.items():
            table = db.metadata.tables[name]
            found = dict((await conn.execute(sa.select(table))).one()._mapping)
            assert found.pop("at").replace(tzinfo=UTC) == at
            found.pop("id")
            assert found == {c: row.get(c) for c in found}
            assert all(found[c] is None for c in found if c not in row)


@given(st.datetimes(timezones=st.just(UTC)) | st.datetimes())
def test_sqlite_datetime_is_sqlalchemys_text(value: datetime) -> None:
    processor = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert processor is not None
    assert sqlite_datetime(value) == processor(value)


def test_only_the_sqlite_text_is_written_faster() -> None:
    def inserts(dialect: Any) -> Any:
        return _Insert.of(db.update_checks, dialect).convert

    assert [f for _, f in inserts(sqlite.dialect())] == [sqlite_datetime]
    assert inserts(asyncpg.dialect()) == ()
