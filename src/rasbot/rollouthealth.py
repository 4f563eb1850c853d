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
the staged devices are matched to their last checks from the release in Python
too (see `_staged_counts`); everything else is counted in the database, with the
same SQLAlchemy Core on SQLite, MariaDB and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rasbot import db
from rasbot.catalog import Release
from rasbot.clock import as_utc
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


def _merge(
    counts: dict[str, dict[str, int]], rows: Iterable[Mapping[Any, Any]]
) -> None:
    for row in rows:
        found = counts.setdefault(row["device"] or UNKNOWN_DEVICE, {})
        for name, value in row.items():
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


def _staged(names: list[str], w: Window) -> sa.Select[Any]:
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
    )


async def _last_checks(
    conn: AsyncConnection, versions: list[str], w: Window
) -> dict[str, datetime]:
    """Each device's last update check in the window from one of ``versions``."""
    if not versions:
        return {}
    checks = db.update_checks
    query = (
        sa.select(checks.c.serial, sa.func.max(checks.c.at))
        .where(checks.c.at >= w.start, checks.c.at < w.end)
        .where(checks.c.client_version.in_(versions), checks.c.serial.is_not(None))
        .group_by(checks.c.serial)
    )
    return {serial: as_utc(at) for serial, at in await conn.execute(query)}


async def _staged_counts(
    conn: AsyncConnection, names: list[str], release: Release, w: Window
) -> list[dict[str, Any]]:
    """Staged, confirmed, judged and missing devices per device type.

    The staged devices and the devices' last checks from the release are read
    apart and matched here. ``update_checks`` has no index led by the serial (its
    upkeep would cost every recorded check a write at a random place), so the
    database could match them only by a hash join, and a planner that misjudges
    the rows of a new release (PostgreSQL before it has analyzed them) picks a
    nested loop instead: the window's checks read once per staged device.
    """
    staged = (await conn.execute(_staged(names, w))).all()
    if not staged:
        return []
    confirming = await _reported(conn, db.update_checks, "client_version", release, w)
    back = await _last_checks(conn, confirming, w)
    counts: dict[str, Counter[str]] = {}
    for serial, device, first in staged:
        staged_at = as_utc(first)
        # At or after: MySQL keeps whole seconds, and the check that led to the
        # staging reported the old version anyway.
        came_back = serial in back and back[serial] >= staged_at
        judged = staged_at < w.judged_before
        found = counts.setdefault(device, Counter())
        found.update(
            staged=1,
            confirmed=came_back,
            judged=judged,
            missing=judged and not came_back,
        )
    return [{"device": device, **found} for device, found in counts.items()]


async def _offered(
    conn: AsyncConnection, release: Release, w: Window
) -> Sequence[RowMapping]:
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
    return (await conn.execute(query)).mappings().all()


async def _crashes(
    conn: AsyncConnection, versions: list[str], w: Window
) -> Sequence[RowMapping]:
    table = db.crashes
    query = (
        sa.select(table.c.device, sa.func.count().label("crashes"))
        .where(table.c.version.in_(versions))
        .where(table.c.at >= w.start, table.c.at < w.end)
        .group_by(table.c.device)
    )
    return (await conn.execute(query)).mappings().all()


def totals(health: Iterable[Health], device: str = "all") -> Health:
    """The numbers of several device types added up."""
    names = [f.name for f in fields(Health) if f.name != "device"]
    found = {name: 0 for name in names}
    for one in health:
        for name in names:
            found[name] += getattr(one, name)
    return Health(device, **found)
