"""Roll-ups and retention: old days read the same after their raw rows are gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db, retention
from rasbot.stats import BY_DEVICE, BY_PLATFORM, Period, Stats
from tests.statsdata import MON, PERIOD, TUE, WED, at, migrated, record_all


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The migrated test database."""
    async with migrated(database_url) as found:
        yield found


@pytest.fixture
async def recorded(engine: AsyncEngine) -> Stats:
    """Statistics over the rows of tests.statsdata."""
    return await record_all(engine)


async def everything(stats: Stats, period: Period) -> dict[str, Any]:
    """Every day-by-day answer for ``period``, in a comparable form."""
    return {
        "groups": sorted(await stats.day_groups(period), key=repr),
        "active": await stats.active_daily(period),
        "weekly": await stats.active_weekly(period),
        "hourly": await stats.checks_hourly(period),
        "staged": sorted(await stats.staged_daily(period), key=repr),
        "platforms": sorted(await stats.installs_daily(period, BY_PLATFORM), key=repr),
        "devices": sorted(await stats.installs_daily(period, BY_DEVICE), key=repr),
        "downloads": sorted(await stats.downloads_daily(period), key=repr),
    }


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        found: int = await conn.scalar(sa.select(sa.func.count()).select_from(table))
        return found


LATER = at(WED + timedelta(days=30), 12)


async def test_compacted_days_read_as_before(
    engine: AsyncEngine, recorded: Stats
) -> None:
    before = await everything(recorded, PERIOD)

    result = await retention.compact(engine, keep_days=8, now=LATER)

    assert result.rows_deleted == 9 + 6 + 3 + 4
    assert result.kept_from == date(2024, 3, 25)
    for table in retention.RAW_TABLES:
        assert await count(engine, table) == 0
    assert await everything(recorded, PERIOD) == before


async def test_roll_up_waits_until_a_day_is_over_and_its_grace_passed(
    engine: AsyncEngine, recorded: Stats
) -> None:
    before = await everything(recorded, PERIOD)
    two_hours_into_wednesday = at(WED, 1.99)

    rolled = await retention.roll_up(engine, two_hours_into_wednesday)

    assert rolled == 2  # Sunday and Monday; Tuesday is within its grace period
    async with engine.connect() as conn:
        days = set((await conn.execute(sa.select(db.stats_days.c.day))).scalars())
    assert days == {MON - timedelta(days=1), MON}
    # Half rolled up, half raw: the same answers.
    assert await everything(recorded, PERIOD) == before


async def test_compacting_twice_changes_nothing(
    engine: AsyncEngine, recorded: Stats
) -> None:
    await retention.compact(engine, keep_days=8, now=LATER)
    after_first = await everything(recorded, PERIOD)

    second = await retention.compact(engine, keep_days=8, now=LATER)

    assert (second.days_rolled_up, second.weeks_kept, second.rows_deleted) == (0, 0, 0)
    assert await everything(recorded, PERIOD) == after_first


async def test_a_day_rolled_up_elsewhere_is_not_counted_twice(
    engine: AsyncEngine, recorded: Stats
) -> None:
    assert await retention.roll_up_day(engine, MON, LATER)
    before = await everything(recorded, PERIOD)

    assert not await retention.roll_up_day(engine, MON, LATER)
    assert await everything(recorded, PERIOD) == before


async def test_raw_rows_within_keep_days_stay(
    engine: AsyncEngine, recorded: Stats
) -> None:
    # Kept from the Monday on or before Tuesday minus one day: Monday itself.
    result = await retention.compact(engine, keep_days=1, now=at(WED, 12))

    assert result.kept_from == MON
    assert await count(engine, db.update_checks) == 8  # all but Sunday's
    assert await recorded.active_between() == 4 - 1


async def test_weeks_removed_keep_their_distinct_serials(
    engine: AsyncEngine, recorded: Stats
) -> None:
    weekly_before = await recorded.active_weekly(PERIOD)

    result = await retention.compact(engine, keep_days=8, now=LATER)

    assert result.weeks_kept == 4  # two with rows, two empty ones before 03-25
    assert await recorded.active_weekly(PERIOD) == weekly_before


async def test_empty_database_compacts_to_nothing(engine: AsyncEngine) -> None:
    result = await retention.compact(
        engine, keep_days=8, now=datetime.now(tz=LATER.tzinfo)
    )

    assert (result.days_rolled_up, result.weeks_kept, result.rows_deleted) == (0, 0, 0)


async def test_days_without_rows_are_marked_rolled_up(
    engine: AsyncEngine, recorded: Stats
) -> None:
    await retention.roll_up(engine, LATER)

    async with engine.connect() as conn:
        days = set((await conn.execute(sa.select(db.stats_days.c.day))).scalars())
    assert {TUE + timedelta(days=5), TUE + timedelta(days=20)} <= days
