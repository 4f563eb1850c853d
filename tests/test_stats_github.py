"""GitHub's download counts, snapshotted after each sync, and their daily growth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rasbot import db
from rasbot.githubcounts import DownloadCounts, snapshot_rows
from rasbot.services import Services
from rasbot.settings import Settings
from rasbot.stats import Period, Stats
from tests import factories


@pytest.fixture
async def svc(make_settings: Callable[..., Settings]) -> AsyncIterator[Services]:
    """Opened services that have not synced yet."""
    services = Services.build(make_settings())
    await services.open()
    yield services
    await services.close()


async def snapshot(svc: Services) -> list[dict[str, Any]]:
    async with svc.engine.connect() as conn:
        table = db.github_download_counts
        result = await conn.execute(sa.select(table).order_by(table.c.asset))
        return [dict(row._mapping) for row in result]


def publish_counts(releases_file: Path, count: int) -> None:
    """The test history with every asset downloaded ``count`` times."""
    listing = factories.history()
    for release in listing:
        for asset in release["assets"]:
            asset["download_count"] = count
    releases_file.write_text(json.dumps(listing))


async def test_a_sync_stores_todays_count_of_every_asset(svc: Services) -> None:
    await svc.syncer.refresh("test")

    rows = await snapshot(svc)

    assets = sum(len(r["assets"]) for r in factories.history())
    assert len(rows) == assets
    first = next(r for r in rows if r["asset"] == "RasPlex-RPi2.RP-1.7.1.tar.gz")
    assert first["day"] == datetime.now(UTC).date()
    assert (first["version"], first["device"], first["kind"]) == (
        "1.7.1",
        "RPi2",
        "update",
    )
    assert first["download_count"] == 42


async def test_same_counts_are_not_written_again(svc: Services) -> None:
    await svc.syncer.refresh("test")
    before = await snapshot(svc)

    await svc.syncer.refresh("test")

    assert await snapshot(svc) == before


async def test_new_counts_replace_todays(svc: Services, releases_file: Path) -> None:
    await svc.syncer.refresh("test")
    publish_counts(releases_file, 50)

    await svc.syncer.refresh("test")

    rows = await snapshot(svc)
    assert {r["download_count"] for r in rows} == {50}
    assert len(rows) == sum(len(r["assets"]) for r in factories.history())


async def test_a_failing_snapshot_does_not_fail_the_sync(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: DownloadCounts, *args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(DownloadCounts, "snapshot", broken)
    svc = Services.build(make_settings())
    await svc.open()

    result = await svc.syncer.refresh("test")

    assert result.ok
    assert svc.syncer.catalog.revision == 1
    await svc.close()


async def test_a_snapshot_another_process_wrote_meanwhile_is_replaced(
    svc: Services,
) -> None:
    # Processes that sync together each write the day's rows: the second to write
    # finds the first's rows only once they are committed.
    listing = await svc.syncer.source.fetch(())
    now = datetime.now(UTC)
    theirs = [
        dict(row, download_count=1)
        for row in snapshot_rows(listing.releases(), svc.syncer.catalog, now)
    ]

    async with svc.engine.connect() as other:
        await other.begin()
        await other.execute(sa.insert(db.github_download_counts), theirs)
        writing = asyncio.create_task(
            DownloadCounts(svc.engine).snapshot(listing, svc.syncer.catalog)
        )
        await asyncio.sleep(0.5)  # until it waits for the rows written here
        await other.commit()
    await writing

    rows = await snapshot(svc)
    assert len(rows) == len(theirs)
    assert {row["download_count"] for row in rows} == {42}


DAY1, DAY2, DAY3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)


def count(day: date, asset: str, n: int) -> dict[str, Any]:
    return {
        "day": day,
        "release_id": 7,
        "asset": asset,
        "version": "1.7.1",
        "device": "RPi2",
        "kind": "update",
        "download_count": n,
        "at": datetime(day.year, day.month, day.day, 23, tzinfo=UTC),
    }


async def test_daily_downloads_are_the_growth_of_the_counts(svc: Services) -> None:
    rows = [
        count(DAY1, "a", 10),
        count(DAY1, "b", 5),
        count(DAY2, "a", 15),
        count(DAY2, "b", 5),
        count(DAY2, "c", 3),  # a new file counts from zero
        count(DAY3, "a", 2),  # uploaded again: its count started over
    ]
    async with svc.engine.begin() as conn:
        await conn.execute(sa.insert(db.github_download_counts), rows)
    stats = Stats(svc.engine)

    whole = await stats.github_daily(Period(DAY1, DAY3 + timedelta(days=1)))
    last = await stats.github_daily(Period(DAY3, DAY3 + timedelta(days=1)))
    totals = await stats.github_totals()

    # The first snapshot has no day before it: its growth is unknown, shown as 0.
    assert whole == {DAY1: 0, DAY2: 5 + 0 + 3, DAY3: 2}
    assert last == {DAY3: 2}
    assert sorted((t.asset, t.downloads) for t in totals) == [
        ("a", 2),
        ("b", 5),
        ("c", 3),
    ]
