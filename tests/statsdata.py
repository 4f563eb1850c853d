"""Recorded rows with known statistics, and the fixtures that store them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db, migrate
from rasbot.stats import (
    Period,
    Stats,
)

MON = date(2024, 3, 4)  # a Monday
TUE, WED = MON + timedelta(days=1), MON + timedelta(days=2)
SUN = MON - timedelta(days=1)
LAST_MOMENT = timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)


def at(day: date, hours: float = 0, *, delta: timedelta | None = None) -> datetime:
    """A moment of ``day`` in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + (delta if delta is not None else timedelta(hours=hours))


def check(
    moment: datetime,
    serial: str | None,
    version: str | None = "1.6.2",
    channel: str = "stable",
    device: str = "RPi2",
) -> dict[str, Any]:
    return {
        "at": moment,
        "serial": serial,
        "client_version": version,
        "channel": channel,
        "device": device,
        "address": "192.0.2.1",
    }


# Serial a moves from 1.6.2 to a build of 1.7.1 late on Monday; b is seen on Monday
# at midnight and on Wednesday; c only in the last moment of Sunday; d on Tuesday.
CHECKS = [
    check(at(SUN, delta=LAST_MOMENT), "c", "1.0.3"),
    check(at(MON, 0), "b"),
    check(at(MON, 10), "a"),
    check(at(MON, 11), None),
    check(at(MON, delta=LAST_MOMENT), "a", "1.7.1.12-abcdef0"),
    check(at(TUE, 0), "a", "1.7.1"),
    check(at(TUE, 6), "d", "1.7.0-rc1", "prerelease", "RPi3bplus"),
    check(at(TUE, 7), "d", "1.7.0-rc1", "prerelease", "RPi3bplus"),
    check(at(WED, 12), "b"),
]


def install(
    moment: datetime, platform: str, device: str, address: str
) -> dict[str, Any]:
    return {"at": moment, "platform": platform, "device": device, "address": address}


INSTALLS = [
    install(at(MON, 1), "windows", "RPi2", "198.51.100.1"),
    install(at(MON, 2), "windows", "RPi2", "198.51.100.1"),
    install(at(MON, 3), "windows", "RPi", "198.51.100.2"),
    install(at(MON, 4), "linux", "RPi2", "198.51.100.1"),
    install(at(TUE, 0), "osx", "RPi2", "2001:db8::1"),
    install(at(TUE, 1), "unknown", "RPi2", "2001:db8::2"),
]

STAGED = [
    {"at": at(MON, 12), "serial": "a", "version": "1.7.1", "channel": "stable"},
    {"at": at(MON, 13), "serial": "a", "version": "1.7.1", "channel": "stable"},
    {"at": at(TUE, 8), "serial": "d", "version": "1.7.0-rc1", "channel": "stable"},
]


def download(moment: datetime, device: str | None) -> dict[str, Any]:
    return {
        "at": moment,
        "release_id": 7,
        "version": "1.7.1",
        "asset": "RasPlex-RPi2.RP-1.7.1.tar.gz",
        "device": device,
        "kind": "update",
    }


DOWNLOADS = [download(at(MON, h), "RPi2") for h in (1, 2, 3)] + [
    download(at(TUE, 5), None)
]

PERIOD = Period(SUN, WED + timedelta(days=1))


@asynccontextmanager
async def migrated(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated test database."""
    found = db.create_engine(database_url)
    await migrate.upgrade(found)
    try:
        yield found
    finally:
        await found.dispose()


async def insert(
    engine: AsyncEngine, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    """Store ``rows`` in ``table``."""
    async with engine.begin() as conn:
        await conn.execute(sa.insert(table), rows)


async def record_all(engine: AsyncEngine) -> Stats:
    """Store the rows above; statistics over them."""
    await insert(engine, db.update_checks, CHECKS)
    await insert(engine, db.installs, INSTALLS)
    await insert(engine, db.updates_staged, STAGED)
    await insert(engine, db.downloads, DOWNLOADS)
    return Stats(engine)
