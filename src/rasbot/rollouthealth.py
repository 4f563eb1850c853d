"""How a release fares on the devices that got it, per device type.

From the recorded requests, over a time window:

- offered: devices whose update check was answered with the release;
- staged: devices that reported (`/updated`) unpacking it;
- confirmed: staged devices that asked `/update` again from the new version;
- judged: staged devices that had ``confirm`` time to come back;
- missing: judged devices that have not come back (yet);
- crashes: crash reports sent from the new version.

The versions clients report are matched to the release as the feed does (builds
of a release count as the release), in Python, on the few distinct values found;
everything else is counted in the database, with the same SQLAlchemy Core on
SQLite, MariaDB and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rasbot import db
from rasbot.catalog import Release
from rasbot.rollout import is_build_of
from rasbot.versions import parse_client_version

#: The device of a recorded row that did not say.
UNKNOWN_DEVICE = "unknown"


@dataclass(frozen=True)
class Health:
    """The numbers of one release on one device type."""

    device: str
    offered: int = 0
    staged: int = 0
    judged: int = 0
    confirmed: int = 0
    missing: int = 0
    crashes: int = 0

    @property
    def missing_rate(self) -> float | None:
        """Missing devices per judged device; None before any is judged."""
        return self.missing / self.judged if self.judged else None

    @property
    def crash_rate(self) -> float | None:
        """Crash reports per confirmed device; None before any is confirmed."""
        return self.crashes / self.confirmed if self.confirmed else None


@dataclass(frozen=True)
class Window:
    """Requests from ``start`` up to ``end``; ``confirm``: a device's time to return."""

    start: datetime
    end: datetime
    confirm: timedelta = field(default=timedelta(hours=12))

    @property
    def judged_before(self) -> datetime:
        """Devices staged before this moment have had their time to return."""
        return self.end - self.confirm


async def release_health(
    engine: AsyncEngine, release: Release, window: Window
) -> dict[str, Health]:
    """The health of ``release`` per device type within ``window``."""
    counts: dict[str, dict[str, int]] = {}
    async with engine.connect() as conn:
        names = await _reported(conn, db.updates_staged, "version", release, window)
        _merge(counts, await _staged_counts(conn, names, release, window))
        _merge(counts, await _offered(conn, release, window))
        crashed = await _reported(conn, db.crashes, "version", release, window)
        _merge(counts, await _crashes(conn, crashed, window))
    return {device: Health(device, **found) for device, found in sorted(counts.items())}


def _merge(counts: dict[str, dict[str, int]], rows: Iterable[Any]) -> None:
    for row in rows:
        found = counts.setdefault(row.device or UNKNOWN_DEVICE, {})
        for name, value in row._mapping.items():
            if name != "device":
                found[name] = found.get(name, 0) + int(value or 0)


async def _reported(
    conn: AsyncConnection, table: sa.Table, column: str, release: Release, w: Window
) -> list[str]:
    """The distinct version texts in ``table`` that name ``release`` or its builds."""
    query = (
        sa.select(table.c[column])
        .where(table.c.at >= w.start, table.c.at < w.end)
        .distinct()
    )
    found = (await conn.execute(query)).scalars()
    return [t for t in found if t and is_build_of(parse_client_version(t), release)]


async def _staged_counts(
    conn: AsyncConnection, names: list[str], release: Release, w: Window
) -> Iterable[Any]:
    """Staged, confirmed, judged and missing devices per device type."""
    if not names:
        return []
    confirming = await _reported(conn, db.update_checks, "client_version", release, w)
    device = _staged_devices(names, confirming, w)
    # At or after: MySQL keeps whole seconds, and the check that led to the staging
    # reported the old version anyway.
    came_back = sa.and_(
        device.c.back_at.is_not(None), device.c.back_at >= device.c.staged_at
    )
    judged = device.c.staged_at < w.judged_before
    query = sa.select(
        device.c.device,
        sa.func.count().label("staged"),
        _count_if(came_back).label("confirmed"),
        _count_if(judged).label("judged"),
        _count_if(sa.and_(judged, ~came_back)).label("missing"),
    ).group_by(device.c.device)
    return (await conn.execute(query)).all()


def _staged_devices(names: list[str], confirming: list[str], w: Window) -> sa.Subquery:
    """Each device that staged one of ``names``: type, first staging, last check.

    The last check is its latest reporting one of ``confirming``, NULL if none.
    Both tables' rows in the window are grouped by serial in one pass, with no join:
    ``update_checks`` has no index led by the serial (its upkeep would cost every
    recorded check a write at a random place), and a join of the two would be
    only as good as the planner's guess of how many devices staged a new release
    (PostgreSQL, before it has analyzed them, guessed one and read the window's
    checks once per staged device).
    """
    staged, checks = db.updates_staged, db.update_checks
    no_time = sa.cast(sa.null(), db.UtcDateTime)
    seen = sa.union_all(
        sa.select(
            staged.c.serial,
            staged.c.device,
            staged.c.at.label("staged_at"),
            no_time.label("back_at"),
        )
        .where(staged.c.version.in_(names), staged.c.serial.is_not(None))
        .where(staged.c.at >= w.start, staged.c.at < w.end),
        sa.select(
            checks.c.serial,
            sa.cast(sa.null(), staged.c.device.type),
            no_time,
            checks.c.at,
        )
        .where(checks.c.client_version.in_(confirming), checks.c.serial.is_not(None))
        .where(checks.c.at >= w.start, checks.c.at < w.end),
    ).subquery("seen")
    first_staged = sa.func.min(seen.c.staged_at)
    return (
        sa.select(
            sa.func.max(seen.c.device).label("device"),
            first_staged.label("staged_at"),
            sa.func.max(seen.c.back_at).label("back_at"),
        )
        .group_by(seen.c.serial)
        .having(first_staged.is_not(None))
        .subquery("staged_device")
    )


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


async def _offered(conn: AsyncConnection, release: Release, w: Window) -> Iterable[Any]:
    checks = db.update_checks
    query = (
        sa.select(
            checks.c.device,
            sa.func.count(sa.distinct(checks.c.serial)).label("offered"),
        )
        .where(checks.c.offered == release.name)
        .where(checks.c.at >= w.start, checks.c.at < w.end)
        .group_by(checks.c.device)
    )
    return (await conn.execute(query)).all()


async def _crashes(
    conn: AsyncConnection, versions: list[str], w: Window
) -> Iterable[Any]:
    table = db.crashes
    query = (
        sa.select(table.c.device, sa.func.count().label("crashes"))
        .where(table.c.version.in_(versions))
        .where(table.c.at >= w.start, table.c.at < w.end)
        .group_by(table.c.device)
    )
    return (await conn.execute(query)).all()


def totals(health: Iterable[Health], device: str = "all") -> Health:
    """The numbers of several device types added up."""
    names = [f.name for f in fields(Health) if f.name != "device"]
    found = {name: 0 for name in names}
    for one in health:
        for name in names:
            found[name] += getattr(one, name)
    return Health(device, **found)
