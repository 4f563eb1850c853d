"""The poller lease: one holder at a time, taken over when the holder dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rasbot import db, migrate
from rasbot.lease import Lease


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[Any]:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def test_first_process_takes_it_and_keeps_renewing(engine: Any) -> None:
    first, second = Lease(engine, "poller", 30), Lease(engine, "poller", 30)

    assert await first.acquire()
    assert not await second.acquire()
    assert await first.acquire()
    assert first.held and not second.held


async def test_expired_lease_is_taken_over(engine: Any) -> None:
    dying, other = Lease(engine, "poller", 0.2), Lease(engine, "poller", 0.2)
    assert await dying.acquire()

    await asyncio.sleep(0.3)

    assert await other.acquire()
    assert not await dying.acquire()


async def test_released_lease_is_free_at_once(engine: Any) -> None:
    first, second = Lease(engine, "poller", 30), Lease(engine, "poller", 30)
    await first.acquire()

    await first.release()

    assert await second.acquire()


async def test_many_contenders_one_winner(engine: Any) -> None:
    contenders = [Lease(engine, "poller", 30) for _ in range(10)]

    won = await asyncio.gather(*(lease.acquire() for lease in contenders))

    assert sum(won) == 1


async def test_leases_of_different_names_are_independent(engine: Any) -> None:
    assert await Lease(engine, "poller", 30).acquire()
    assert await Lease(engine, "janitor", 30).acquire()
