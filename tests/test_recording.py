"""The batch recorder: nothing recorded is lost, nothing waits on the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from rasbot import db, migrate
from rasbot.recording import Recorder


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


async def test_queue_is_bounded_and_counts_what_it_drops(engine: Any) -> None:
    recorder = Recorder(engine, max_rows=10, flush_seconds=1)

    record_installs(recorder, 25)

    assert (recorder.pending, recorder.dropped) == (10, 15)
    assert await recorder.flush()
    assert await count(engine) == 10
