"""Statistics queries on recorded rows with known answers, on every database."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db, migrate
from rasbot.stats import (
    BY_DEVICE,
    BY_PLATFORM,
    DayCount,
    DayGroup,
    FieldGroup,
    Period,
    Stats,
)
from tests.statsdata import (
    MON,
    PERIOD,
    SUN,
    TUE,
    WED,
    at,
    check,
    insert,
    install,
    migrated,
    record_all,
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The migrated test database."""
    async with migrated(database_url) as found:
        yield found


@pytest.fixture
async def recorded(engine: AsyncEngine) -> Stats:
    """Statistics over the rows of tests.statsdata."""
    return await record_all(engine)


async def test_active_devices_per_day_count_each_serial_once(recorded: Stats) -> None:
    active = await recorded.active_daily(PERIOD)

    assert active == {SUN: 1, MON: 2, TUE: 2, WED: 1}


async def test_a_days_groups_hold_each_serial_at_its_last_check(
    recorded: Stats,
) -> None:
    groups = await recorded.day_groups(Period(MON, TUE))

    assert sorted(groups, key=lambda g: g.client_version) == [
        DayGroup(MON, "1.6.2", "stable", "RPi2", 1),
        DayGroup(MON, "1.7.1.12-abcdef0", "stable", "RPi2", 1),
    ]


async def test_window_bounds_include_start_and_exclude_end(recorded: Stats) -> None:
    assert await recorded.active_between(at(SUN), at(MON)) == 1
    assert await recorded.active_between(at(MON), at(WED)) == 3
    assert await recorded.active_between(at(MON, 0.0001), at(TUE)) == 1
    assert await recorded.active_between() == 4


async def test_windows_in_other_time_zones_mean_the_same_moments(
    recorded: Stats,
) -> None:
    plus_five = timezone(timedelta(hours=5))
    start = at(MON).astimezone(plus_five)
    end = at(WED).astimezone(plus_five)

    assert await recorded.active_between(start, end) == 3


async def test_naive_moments_are_refused(recorded: Stats) -> None:
    with pytest.raises(ValueError, match="aware"):
        await recorded.active_between(datetime(2024, 3, 4))


async def test_active_devices_per_week_start_on_monday(recorded: Stats) -> None:
    weekly = await recorded.active_weekly(PERIOD)

    assert weekly == {SUN - timedelta(days=6): 1, MON: 3}


async def test_versions_in_the_field_are_each_serials_latest(recorded: Stats) -> None:
    field = await recorded.versions_in_field(at(MON), at(WED + timedelta(days=1)))

    assert sorted(field, key=lambda f: f.client_version) == [
        FieldGroup("1.6.2", "stable", "RPi2", 1),
        FieldGroup("1.7.0-rc1", "prerelease", "RPi3bplus", 1),
        FieldGroup("1.7.1", "stable", "RPi2", 1),
    ]


async def test_checks_per_hour_count_every_check(recorded: Stats) -> None:
    hourly = await recorded.checks_hourly(Period(MON, TUE))

    assert hourly == {
        at(MON, 0): 1,
        at(MON, 10): 1,
        at(MON, 11): 1,
        at(MON, 23): 1,
    }


async def test_installs_count_distinct_addresses_per_platform_and_device(
    recorded: Stats,
) -> None:
    platforms = await recorded.installs_daily(PERIOD, BY_PLATFORM)
    devices = await recorded.installs_daily(PERIOD, BY_DEVICE)

    assert sorted(platforms, key=_key) == [
        DayCount(MON, "linux", 1),
        DayCount(MON, "windows", 2),
        DayCount(TUE, "osx", 1),
        DayCount(TUE, "unknown", 1),
    ]
    assert sorted(devices, key=_key) == [
        DayCount(MON, "RPi", 1),
        DayCount(MON, "RPi2", 1),
        DayCount(TUE, "RPi2", 2),
    ]


async def test_installs_in_a_window_per_platform(recorded: Stats) -> None:
    assert await recorded.installs_between(at(MON), at(TUE)) == {
        "windows": 2,
        "linux": 1,
    }


async def test_staged_updates_count_serials_per_day(recorded: Stats) -> None:
    staged = await recorded.staged_daily(PERIOD)

    assert sorted(staged, key=_key) == [
        DayCount(MON, "1.7.1", 1),
        DayCount(TUE, "1.7.0-rc1", 1),
    ]


async def test_downloads_per_release_and_device(recorded: Stats) -> None:
    downloads = await recorded.downloads_daily(PERIOD)

    assert sorted((d.day, d.version, d.device, d.downloads) for d in downloads) == [
        (MON, "1.7.1", "RPi2", 3),
        (TUE, "1.7.1", "", 1),
    ]


async def test_json_stats_counts_24_hour_windows_back_from_now(
    recorded: Stats,
) -> None:
    document = await recorded.json_stats(at(WED, 12.5))

    users = document["users"]
    assert users["days_ago"] == {
        "1": 1,  # b, Wednesday
        "2": 2,  # a at midnight, d
        "3": 3,  # c late on Sunday, b and a on Monday morning
        "4": 0,
        "5": 0,
        "6": 0,
        "7": 0,
    }
    assert users["total"] == 4
    installs = document["installs"]
    assert installs["days_ago"]["2"] == {"windows": 0, "linux": 0, "osx": 1}
    assert installs["days_ago"]["3"] == {"windows": 2, "linux": 1, "osx": 0}
    assert installs["total"] == {"windows": 2, "linux": 1, "osx": 1}
    assert document["last_update"] == "2024-03-06T12:30:00+00:00"


def _key(count: DayCount) -> tuple[date, str]:
    return count.day, count.key


@pytest.fixture
def local_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process in a time zone far from UTC, where days start elsewhere."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_days_are_utc_days_whatever_the_time_zones(
    database_url: str, local_time_zone: None
) -> None:
    engine = db.create_engine(database_url)
    sa.event.listen(engine.sync_engine, "connect", _far_session_time_zone)
    await migrate.upgrade(engine)
    # 20:00 UTC is already the next day in Kiritimati (+14) and in Kolkata (+5:30).
    await insert(engine, db.update_checks, [check(at(MON, 20), "a")])
    await insert(engine, db.installs, [install(at(MON, 20), "osx", "RPi", "::1")])
    stats = Stats(engine)

    assert await stats.active_daily(Period(MON, WED)) == {MON: 1, TUE: 0}
    assert await stats.checks_hourly(Period(MON, WED)) == {at(MON, 20): 1}
    assert await stats.installs_daily(Period(MON, WED), BY_PLATFORM) == [
        DayCount(MON, "osx", 1)
    ]
    await engine.dispose()


def _far_session_time_zone(dbapi_connection: Any, _record: Any) -> None:
    # A database session in another zone must not move the UTC day either.
    if os.environ.get("RASBOT_TEST_DATABASE_URL", "").startswith("postgresql"):
        statement = "SET TIME ZONE 'Asia/Kolkata'"
    elif os.environ.get("RASBOT_TEST_DATABASE_URL", "").startswith("mysql"):
        statement = "SET time_zone = '+05:30'"
    else:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute(statement)
    cursor.close()


async def test_latest_check_is_by_time_not_by_order_written(
    engine: AsyncEngine,
) -> None:
    # A recorder that waited for the database writes older rows after newer ones.
    await insert(engine, db.update_checks, [check(at(MON, 12), "a", "1.7.1")])
    await insert(engine, db.update_checks, [check(at(MON, 11), "a", "1.6.2")])
    stats = Stats(engine)

    field = await stats.versions_in_field(at(MON), at(TUE))
    groups = await stats.day_groups(Period(MON, TUE))

    assert [f.client_version for f in field] == ["1.7.1"]
    assert [g.client_version for g in groups] == ["1.7.1"]
