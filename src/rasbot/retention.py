"""Rolling recorded requests up into daily tables, and removing old raw rows.

Every UTC day that is over (with a grace period for rows still on their way from a
recorder's queue) is rolled up once: the same queries the statistics run on raw
rows (rasbot.stats) write their answers for that day into the ``stats_*`` tables,
and the day is listed in ``stats_days``, all in one transaction. From then on the
statistics read that day from the roll-ups, which is also what keeps long series
fast. Raw rows older than ``RASBOT_STATS_KEEP_DAYS`` are then deleted, a day at a
time, from the Monday before that age, so that each removed ISO week first has its
distinct serials kept in ``stats_active_weekly``.

Processes sharing a database may compact at the same time: the roll-up tables'
primary keys refuse a second copy of a day, whose transaction then rolls back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rasbot import db, stats
from rasbot.clock import as_utc
from rasbot.stats import BY_DEVICE, BY_PLATFORM, midnight, monday, utc_now

log = structlog.get_logger(__name__)

#: A day is rolled up this long after it ended: rows recorded in its last moments
#: may wait in a recorder's queue while the database is away.
ROLLUP_GRACE = timedelta(hours=2)
#: Compaction runs this long after start, then every COMPACT_SECONDS.
FIRST_COMPACT_SECONDS = 60.0
COMPACT_SECONDS = 86400.0

RAW_TABLES = (db.update_checks, db.updates_staged, db.installs, db.downloads)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Compaction:
    """What one compaction did."""

    days_rolled_up: int
    weeks_kept: int
    rows_deleted: int
    kept_from: date


def keep_from(now: datetime, keep_days: int) -> date:
    """The first day whose raw rows are kept: a Monday, ``keep_days`` or more ago."""
    return monday(now.date() - timedelta(days=keep_days))


async def compact(
    engine: AsyncEngine, keep_days: int, now: datetime | None = None
) -> Compaction:
    """Roll up every finished day, then delete raw rows older than ``keep_days``."""
    now = now or utc_now()
    rolled = await roll_up(engine, now)
    cutoff = await _safe_cutoff(engine, keep_from(now, keep_days))
    weeks = await keep_weeks(engine, cutoff)
    deleted = await delete_raw(engine, cutoff)
    result = Compaction(rolled, weeks, deleted, cutoff)
    log.info(
        "stats.compacted",
        days_rolled_up=rolled,
        weeks_kept=weeks,
        rows_deleted=deleted,
        kept_from=cutoff.isoformat(),
    )
    return result


async def compact_forever(engine: AsyncEngine, keep_days: int) -> None:
    """`compact` soon after start and then daily; a failure waits for the next."""
    await asyncio.sleep(FIRST_COMPACT_SECONDS)
    while True:
        try:
            await compact(engine, keep_days)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("stats.compact_failed", error=str(exc))
        await asyncio.sleep(COMPACT_SECONDS)


async def roll_up(engine: AsyncEngine, now: datetime) -> int:
    """Roll up each finished day with raw rows that is not rolled up yet."""
    last = (now - ROLLUP_GRACE).date() - _DAY
    first = await _first_raw_day(engine)
    if first is None or first > last:
        return 0
    async with engine.connect() as conn:
        done = set(
            (
                await conn.execute(
                    sa.select(db.stats_days.c.day).where(db.stats_days.c.day >= first)
                )
            ).scalars()
        )
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    rolled = 0
    for day in days:
        if day not in done and await roll_up_day(engine, day, now):
            rolled += 1
    return rolled


async def roll_up_day(engine: AsyncEngine, day: date, now: datetime) -> bool:
    """Write ``day``'s roll-ups; False when another process already did."""
    try:
        async with engine.begin() as conn:
            for table, rows in await _rollups(conn, day):
                if rows:
                    await conn.execute(sa.insert(table), rows)
            await conn.execute(
                sa.insert(db.stats_days).values(day=day, rolled_up_at=now)
            )
    except IntegrityError:
        log.info("stats.day_already_rolled_up", day=day.isoformat())
        return False
    return True


async def _rollups(
    conn: AsyncConnection, day: date
) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
    start, end = midnight(day), midnight(day + _DAY)
    groups = await stats.raw_day_groups(conn, start, end)
    hours = await stats.raw_checks_hourly(conn, start, end)
    staged = await stats.raw_staged(conn, start, end)
    platforms = await stats.raw_installs(conn, start, end, BY_PLATFORM)
    devices = await stats.raw_installs(conn, start, end, BY_DEVICE)
    downloads = await stats.raw_downloads(conn, start, end)
    installs = [(BY_PLATFORM, c) for c in platforms] + [(BY_DEVICE, c) for c in devices]
    return [
        (db.stats_active_daily, [vars(g) for g in groups]),
        (
            db.stats_checks_hourly,
            [{"day": d, "hour": h, "checks": n} for d, h, n in hours],
        ),
        (
            db.stats_staged_daily,
            [{"day": c.day, "version": c.key, "serials": c.count} for c in staged],
        ),
        (
            db.stats_installs_daily,
            [
                {"day": c.day, "dimension": dim, "name": c.key, "addresses": c.count}
                for dim, c in installs
            ],
        ),
        (db.stats_downloads_daily, [vars(d) for d in downloads]),
    ]


async def keep_weeks(engine: AsyncEngine, cutoff: date) -> int:
    """Keep the distinct serials of each whole week before ``cutoff`` not kept yet."""
    first = await _first_raw_day(engine, (db.update_checks,))
    if first is None or monday(first) >= cutoff:
        return 0
    table = db.stats_active_weekly
    async with engine.begin() as conn:
        kept = set(
            (
                await conn.execute(
                    sa.select(table.c.week).where(table.c.week >= monday(first))
                )
            ).scalars()
        )
        weeks = await stats.raw_weekly(conn, first, cutoff)
        rows = [{"week": w, "serials": n} for w, n in weeks if w not in kept]
        if rows:
            await conn.execute(sa.insert(table), rows)
    return len(rows)


async def delete_raw(engine: AsyncEngine, cutoff: date) -> int:
    """Delete raw rows before ``cutoff``, a day per transaction to keep locks short."""
    deleted = 0
    for table in RAW_TABLES:
        first = await _first_raw_day(engine, (table,))
        day = first
        while day is not None and day < cutoff:
            day += _DAY
            async with engine.begin() as conn:
                result = await conn.execute(
                    sa.delete(table).where(table.c.at < midnight(day))
                )
                deleted += result.rowcount
    return deleted


async def _safe_cutoff(engine: AsyncEngine, cutoff: date) -> date:
    """``cutoff``, or the Monday before an earlier day that is not rolled up.

    Normally every finished day is; one whose roll-up failed keeps its raw rows,
    and so does the rest of its week, which `keep_weeks` needs whole.
    """
    first = await _first_raw_day(engine)
    if first is None or first >= cutoff:
        return cutoff
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(db.stats_days.c.day).where(
                db.stats_days.c.day >= first, db.stats_days.c.day < cutoff
            )
        )
        done = set(result.scalars())
    day = first
    while day < cutoff and day in done:
        day += _DAY
    return monday(day) if day < cutoff else cutoff


async def _first_raw_day(
    engine: AsyncEngine, tables: Sequence[sa.Table] = RAW_TABLES
) -> date | None:
    """The day of the oldest raw row of ``tables``."""
    async with engine.connect() as conn:
        found = [
            await conn.scalar(sa.select(sa.func.min(table.c.at))) for table in tables
        ]
    moments = [as_utc(moment) for moment in found if moment is not None]
    return min(moments).date() if moments else None
