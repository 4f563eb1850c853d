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
        staged = _staged(names, window)
        confirming = await _confirming_versions(conn, staged, release, window)
        _merge(counts, await _staged_counts(conn, staged, confirming, window))
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


def _staged(names: list[str], w: Window) -> sa.Subquery:
    """Each device that staged the release: its type and first staging."""
    table = db.updates_staged
    return (
        sa.select(
            table.c.serial,
            sa.func.max(table.c.device).label("device"),
            sa.func.min(table.c.at).label("staged_at"),
        )
        .where(table.c.version.in_(names), table.c.serial.is_not(None))
        .where(table.c.at >= w.start, table.c.at < w.end)
        .group_by(table.c.serial)
        .subquery("staged")
    )


def _checks_by_staged(staged: sa.Subquery, w: Window) -> list[sa.ColumnElement[bool]]:
    """The window's update checks by devices that staged the release.

    They are found by time, then by serial: ``update_checks`` has no index led by
    the serial, whose upkeep would cost every recorded check a write at a random
    place. A device's checks after its staging are all within the window.
    """
    checks = db.update_checks
    return [
        checks.c.at >= w.start,
        checks.c.at < w.end,
        checks.c.serial.in_(sa.select(staged.c.serial)),
    ]


async def _confirming_versions(
    conn: AsyncConnection, staged: sa.Subquery, release: Release, w: Window
) -> list[str]:
    """Versions the staged devices reported afterwards that are the release."""
    checks = db.update_checks
    # A device reported a version after its staging when its last check from that
    # version came at or after the staging.
    last = (
        sa.select(
            checks.c.serial,
            checks.c.client_version,
            sa.func.max(checks.c.at).label("at"),
        )
        .where(*_checks_by_staged(staged, w))
        .group_by(checks.c.serial, checks.c.client_version)
        .subquery("last")
    )
    query = (
        sa.select(last.c.client_version)
        .select_from(last.join(staged, last.c.serial == staged.c.serial))
        .where(last.c.at >= staged.c.staged_at)
        .distinct()
    )
    found = (await conn.execute(query)).scalars()
    return [t for t in found if t and is_build_of(parse_client_version(t), release)]


async def _staged_counts(
    conn: AsyncConnection, staged: sa.Subquery, confirming: list[str], w: Window
) -> Iterable[Any]:
    checks = db.update_checks
    # Each staged device's last check from the release.
    back = (
        sa.select(checks.c.serial, sa.func.max(checks.c.at).label("at"))
        .where(*_checks_by_staged(staged, w), checks.c.client_version.in_(confirming))
        .group_by(checks.c.serial)
        .subquery("back")
    )
    # At or after: MySQL keeps whole seconds, and the check that led to the staging
    # reported the old version anyway.
    came_back = sa.and_(back.c.at.is_not(None), back.c.at >= staged.c.staged_at)
    judged = staged.c.staged_at < w.judged_before
    query = (
        sa.select(
            staged.c.device,
            sa.func.count().label("staged"),
            _count_if(came_back).label("confirmed"),
            _count_if(judged).label("judged"),
            _count_if(sa.and_(judged, ~came_back)).label("missing"),
        )
        .select_from(staged.outerjoin(back, back.c.serial == staged.c.serial))
        .group_by(staged.c.device)
    )
    return (await conn.execute(query)).all()


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
