"""Rollout health counted from recorded rows with known answers, on every database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db
from rasbot.catalog import Release
from rasbot.rollouthealth import Health, Window, release_health
from rasbot.versions import parse_version
from tests.statsdata import check, insert, migrated

START = datetime(2024, 3, 4, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(days=2), confirm=timedelta(hours=12))


def hours(n: float) -> datetime:
    return START + timedelta(hours=n)


def release(name: str) -> Release:
    version = parse_version(name)
    assert version is not None
    return Release(
        id=1,
        name=name,
        tag=name,
        version=version,
        channel="stable",
        draft=False,
        published_at=START,
        changes=(),
        install={},
        update={},
        declared=frozenset(),
        assets={},
    )


def staged(moment: datetime, serial: str, device: str = "RPi2") -> dict[str, Any]:
    return {
        "at": moment,
        "serial": serial,
        "device": device,
        "from_version": "1.7.0",
        "version": "1.7.1",
        "channel": "stable",
    }


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated(database_url) as found:
        yield found


async def health(engine: AsyncEngine, name: str = "1.7.1") -> dict[str, Health]:
    return await release_health(engine, release(name), WINDOW)


async def test_a_device_confirms_by_asking_again_from_the_release(
    engine: AsyncEngine,
) -> None:
    await insert(engine, db.updates_staged, [staged(hours(1), "a")])
    await insert(
        engine,
        db.update_checks,
        [check(hours(0.5), "a", "1.7.0"), check(hours(2), "a", "1.7.1")],
    )

    assert await health(engine) == {
        "RPi2": Health("RPi2", staged=1, judged=1, confirmed=1, missing=0)
    }


async def test_a_build_of_the_release_confirms_it(engine: AsyncEngine) -> None:
    await insert(engine, db.updates_staged, [staged(hours(1), "a")])
    await insert(engine, db.update_checks, [check(hours(2), "a", "1.7.1.12-abcdef0")])

    assert (await health(engine))["RPi2"].confirmed == 1


async def test_a_check_at_the_moment_of_staging_counts(engine: AsyncEngine) -> None:
    await insert(engine, db.updates_staged, [staged(hours(1), "a")])
    await insert(engine, db.update_checks, [check(hours(1), "a", "1.7.1")])

    assert (await health(engine))["RPi2"].confirmed == 1


async def test_what_comes_before_the_staging_or_after_the_window_confirms_nothing(
    engine: AsyncEngine,
) -> None:
    await insert(engine, db.updates_staged, [staged(hours(10), "a")])
    await insert(
        engine,
        db.update_checks,
        [
            check(hours(9), "a", "1.7.1"),
            check(hours(12), "a", "1.7.0"),
            check(WINDOW.end, "a", "1.7.1"),
        ],
    )

    assert await health(engine) == {
        "RPi2": Health("RPi2", staged=1, judged=1, confirmed=0, missing=1)
    }


async def test_only_devices_given_their_time_are_judged_missing(
    engine: AsyncEngine,
) -> None:
    late = WINDOW.judged_before + timedelta(minutes=1)
    await insert(
        engine,
        db.updates_staged,
        [staged(hours(1), "gone"), staged(late, "recent"), staged(hours(2), "back")],
    )
    await insert(engine, db.update_checks, [check(hours(3), "back", "1.7.1")])

    assert await health(engine) == {
        "RPi2": Health("RPi2", staged=3, judged=2, confirmed=1, missing=1)
    }


async def test_devices_that_did_not_stage_it_are_not_counted(
    engine: AsyncEngine,
) -> None:
    await insert(engine, db.updates_staged, [staged(hours(1), "a", "RPi")])
    await insert(
        engine,
        db.update_checks,
        [
            # Came to the release some other way: not part of this rollout's count.
            check(hours(2), "other", "1.7.1"),
            # Another device's return does not confirm a's staging.
            check(hours(3), "b", "1.7.1"),
        ],
    )

    assert await health(engine) == {
        "RPi": Health("RPi", staged=1, judged=1, confirmed=0, missing=1)
    }


async def test_each_device_type_is_counted_apart_and_each_device_once(
    engine: AsyncEngine,
) -> None:
    await insert(
        engine,
        db.updates_staged,
        [
            staged(hours(1), "a", "RPi"),
            staged(hours(5), "a", "RPi"),
            staged(hours(1), "b", "RPi2"),
            staged(hours(1), "c", "RPi2"),
        ],
    )
    await insert(
        engine,
        db.update_checks,
        [check(hours(h), "a", "1.7.1") for h in (2, 3, 6)]
        + [check(hours(2), "b", "1.7.1"), check(hours(2), "c", "1.7.0")],
    )

    assert await health(engine) == {
        "RPi": Health("RPi", staged=1, judged=1, confirmed=1, missing=0),
        "RPi2": Health("RPi2", staged=2, judged=2, confirmed=1, missing=1),
    }


async def test_serials_that_differ_only_in_case_never_make_a_returned_device_missing(
    engine: AsyncEngine,
) -> None:
    # MariaDB compares serials without regard to case and counts these as one
    # device; SQLite and PostgreSQL as two. Each came back under its own serial.
    await insert(
        engine, db.updates_staged, [staged(hours(1), "abc"), staged(hours(1.5), "ABC")]
    )
    await insert(
        engine,
        db.update_checks,
        [check(hours(3), "ABC", "1.7.1"), check(hours(4), "abc", "1.7.1")],
    )

    found = (await health(engine))["RPi2"]
    assert found.staged in (1, 2)
    assert found == Health(
        "RPi2", staged=found.staged, judged=found.staged, confirmed=found.staged
    )
