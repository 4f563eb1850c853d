"""Usage statistics: queries over the recorded requests and their daily roll-ups.

Two kinds of question are answered here:

- series by UTC day (or hour): a day that is rolled up (rasbot.retention, listed in
  ``stats_days``) is read from the roll-up tables, any other day from the raw rows,
  with the same definitions, so a day reads the same before and after its raw rows
  go;
- distinct counts over a time window (devices active in the last 7 days, the
  version each device reported last), which only raw rows can answer: a window
  reaching past ``RASBOT_STATS_KEEP_DAYS`` counts only the raw rows still kept.

Every query groups in the database (rasbot.sqltime buckets timestamps the same way on
each one) and reads update checks from the (at, serial) index, so a question
about a few weeks touches a few weeks of index, whatever the table's size. All times
are UTC: a window's bounds must be aware datetimes and are converted to UTC, because
SQLite and MySQL compare timestamps as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rasbot import db
from rasbot.sqltime import utc_day, utc_hour

#: The installer's platforms, in the order /json/stats lists them.
PLATFORMS = ("windows", "linux", "osx")
#: How ``stats_installs_daily`` splits installs.
BY_PLATFORM, BY_DEVICE = "platform", "device"
#: Days /json/stats looks back, one window of 24 hours each.
JSON_DAYS = 7

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def midnight(day: date) -> datetime:
    """The start of ``day``, UTC."""
    return datetime.combine(day, time(), UTC)


def monday(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("statistics need aware datetimes")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``start`` up to, not including, ``end``."""

    start: date
    end: date

    @classmethod
    def last(cls, days: int, today: date | None = None) -> Period:
        """The last ``days`` days, today included."""
        today = today or utc_now().date()
        return cls(today - timedelta(days=days - 1), today + _DAY)

    @property
    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [
            self.start + timedelta(days=n) for n in range((self.end - self.start).days)
        ]

    @property
    def start_at(self) -> datetime:
        """The period's first moment."""
        return midnight(self.start)

    @property
    def end_at(self) -> datetime:
        """The moment after the period."""
        return midnight(self.end)


@dataclass(frozen=True)
class DayGroup:
    """Serials whose last update check of ``day`` reported these values.

    Each serial is in exactly one group a day, so a day's groups add up to the
    distinct serials seen that day. Text the client did not send is ''.
    """

    day: date
    client_version: str
    channel: str
    device: str
    serials: int


@dataclass(frozen=True)
class FieldGroup:
    """Serials whose last update check in a window reported these values."""

    client_version: str
    channel: str
    device: str
    serials: int


@dataclass(frozen=True)
class DayCount:
    """A count for one day and one key (a version, a platform, a device)."""

    day: date
    key: str
    count: int


@dataclass(frozen=True)
class DownloadDay:
    """Downloads through rasbot's counting redirect of one release and device."""

    day: date
    release_id: int
    version: str
    device: str
    downloads: int


@dataclass(frozen=True)
class AssetCount:
    """GitHub's latest running count of one release asset."""

    release_id: int
    version: str
    asset: str
    device: str | None
    kind: str | None
    downloads: int


class Stats:
    """The statistics of one database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # -- series by day: roll-ups for rolled-up days, raw rows for the others ----

    async def day_groups(self, period: Period) -> list[DayGroup]:
        """Every day's serials by version, channel and device (see `DayGroup`)."""
        table = db.stats_active_daily
        async with self._engine.connect() as conn:
            rolled, raw_from = await _split(conn, period)
            result = await conn.execute(
                sa.select(table.c.day, table.c.client_version, table.c.channel)
                .add_columns(table.c.device, table.c.serials)
                .where(_in(table.c.day, period))
            )
            groups = [DayGroup(*row) for row in result]
            if raw_from is not None:
                raw = await raw_day_groups(conn, raw_from, period.end_at)
                groups += [g for g in raw if g.day not in rolled]
        return groups

    async def active_daily(self, period: Period) -> dict[date, int]:
        """Distinct serials seen by /update, each day of ``period``."""
        table = db.stats_active_daily
        active = dict.fromkeys(period.days, 0)
        async with self._engine.connect() as conn:
            rolled, raw_from = await _split(conn, period)
            result = await conn.execute(
                sa.select(table.c.day, sa.func.sum(table.c.serials))
                .where(_in(table.c.day, period))
                .group_by(table.c.day)
            )
            active.update({day: int(n) for day, n in result})
            if raw_from is not None:
                for group in await raw_day_groups(conn, raw_from, period.end_at):
                    if group.day not in rolled:
                        active[group.day] += group.serials
        return active

    async def active_weekly(self, period: Period) -> dict[date, int]:
        """Distinct serials of each ISO week (by its Monday) that ``period`` touches."""
        weeks = Period(monday(period.start), period.end)
        table = db.stats_active_weekly
        async with self._engine.connect() as conn:
            result = await conn.execute(
                sa.select(table.c.week, table.c.serials).where(
                    table.c.week >= weeks.start, table.c.week < weeks.end
                )
            )
            kept: dict[date, int] = {week: serials for week, serials in result}
            missing = [week for week in weeks.days[::7] if week not in kept]
            raw = await raw_weekly(conn, missing[0], weeks.end) if missing else []
        found = dict.fromkeys(weeks.days[::7], 0)
        found.update({week: n for week, n in raw if week not in kept})
        found.update(kept)
        return found

    async def checks_hourly(self, period: Period) -> dict[datetime, int]:
        """Update checks in each hour of ``period`` that had any."""
        table = db.stats_checks_hourly
        async with self._engine.connect() as conn:
            rolled, raw_from = await _split(conn, period)
            result = await conn.execute(
                sa.select(table.c.day, table.c.hour, table.c.checks).where(
                    _in(table.c.day, period)
                )
            )
            rows = [(day, hour, n) for day, hour, n in result]
            if raw_from is not None:
                raw = await raw_checks_hourly(conn, raw_from, period.end_at)
                rows += [row for row in raw if row[0] not in rolled]
        return {midnight(day) + timedelta(hours=hour): n for day, hour, n in rows}

    async def staged_daily(self, period: Period) -> list[DayCount]:
        """Distinct serials that staged an update, by day and staged version."""
        return await self._day_counts(
            period,
            db.stats_staged_daily,
            (db.stats_staged_daily.c.version, db.stats_staged_daily.c.serials),
            None,
            lambda conn, start, end: raw_staged(conn, start, end),
        )

    async def installs_daily(self, period: Period, dimension: str) -> list[DayCount]:
        """Distinct addresses asking /install, by day and platform or device."""
        table = db.stats_installs_daily
        return await self._day_counts(
            period,
            table,
            (table.c.name, table.c.addresses),
            table.c.dimension == dimension,
            lambda conn, start, end: raw_installs(conn, start, end, dimension),
        )

    async def _day_counts(
        self,
        period: Period,
        table: sa.Table,
        columns: tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]],
        where: sa.ColumnElement[bool] | None,
        raw_rows: Any,
    ) -> list[DayCount]:
        query = sa.select(table.c.day, *columns).where(_in(table.c.day, period))
        if where is not None:
            query = query.where(where)
        async with self._engine.connect() as conn:
            rolled, raw_from = await _split(conn, period)
            counts = [DayCount(*row) for row in await conn.execute(query)]
            if raw_from is not None:
                raw: list[DayCount] = await raw_rows(conn, raw_from, period.end_at)
                counts += [c for c in raw if c.day not in rolled]
        return counts

    async def downloads_daily(self, period: Period) -> list[DownloadDay]:
        """Downloads through rasbot, by day, release and device ('' for none)."""
        table = db.stats_downloads_daily
        async with self._engine.connect() as conn:
            rolled, raw_from = await _split(conn, period)
            result = await conn.execute(
                sa.select(table.c.day, table.c.release_id, table.c.version)
                .add_columns(table.c.device, table.c.downloads)
                .where(_in(table.c.day, period))
            )
            rows = [DownloadDay(*row) for row in result]
            if raw_from is not None:
                raw = await raw_downloads(conn, raw_from, period.end_at)
                rows += [row for row in raw if row.day not in rolled]
        return rows

    # -- GitHub's download counts ----------------------------------------------

    async def github_daily(self, period: Period) -> dict[date, int]:
        """Downloads GitHub counted each day, from the daily snapshots.

        A day's downloads are the growth of each asset's count since its previous
        snapshot; an asset first seen after the first snapshot counts from zero.
        The first snapshot day itself has no previous one and shows nothing.
        """
        table = db.github_download_counts
        async with self._engine.connect() as conn:
            first: date | None = await conn.scalar(sa.select(sa.func.min(table.c.day)))
            before = await _latest_counts(conn, table.c.day < period.start)
            result = await conn.execute(
                sa.select(table.c.day, table.c.release_id, table.c.asset)
                .add_columns(table.c.download_count)
                .where(_in(table.c.day, period))
                .order_by(table.c.day)
            )
            rows = list(result)
        growth = dict.fromkeys(period.days, 0)
        previous = {(a.release_id, a.asset): a.downloads for a in before}
        for day, release_id, asset, count in rows:
            last = previous.get((release_id, asset))
            if last is None:
                last = count if day == first else 0
            # A count that went down belongs to a file uploaded again.
            growth[day] += count - last if count >= last else count
            previous[(release_id, asset)] = count
        return growth

    async def github_totals(self) -> list[AssetCount]:
        """GitHub's latest count of every asset ever snapshotted."""
        async with self._engine.connect() as conn:
            return await _latest_counts(conn, sa.true())

    # -- distinct counts over windows (raw rows only) -------------------------

    async def active_between(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        """Distinct serials seen by /update from ``start`` up to ``end``."""
        async with self._engine.connect() as conn:
            return await active_between(conn, start, end)

    async def versions_in_field(
        self, start: datetime, end: datetime | None = None
    ) -> list[FieldGroup]:
        """Serials by version, channel and device of their last check in a window."""
        table = db.update_checks
        last = _last_checks(start, end, by_day=False)
        columns = (table.c.client_version, table.c.channel, table.c.device)
        query = (
            sa.select(*columns, sa.func.count())
            .select_from(last.join(table, table.c.id == last.c.id))
            .group_by(*columns)
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [
                FieldGroup(version or "", channel, device or "", n)
                for version, channel, device, n in result
            ]

    async def installs_between(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, int]:
        """Distinct addresses asking /install per platform, in a window."""
        async with self._engine.connect() as conn:
            return await installs_between(conn, start, end)

    async def json_stats(self, now: datetime | None = None) -> dict[str, Any]:
        """The /json/stats document (PROTOCOL.md 7).

        Day ``n`` is the 24 hours ending ``n - 1`` days before ``now``, as the
        first server counted them; totals cover the raw rows kept.
        """
        now = _utc(now or utc_now())
        windows = [(str(n), now - n * _DAY, now - (n - 1) * _DAY) for n in range(1, 8)]
        async with self._engine.connect() as conn:
            users = {n: await active_between(conn, a, b) for n, a, b in windows}
            installs = {n: await installs_between(conn, a, b) for n, a, b in windows}
            users_total = await active_between(conn, None, None)
            installs_total = await installs_between(conn, None, None)
        return {
            "users": {"days_ago": users, "total": users_total},
            "installs": {
                "days_ago": {n: _platforms(c) for n, c in installs.items()},
                "total": _platforms(installs_total),
            },
            "last_update": now.isoformat(),
        }


def _platforms(counts: dict[str, int]) -> dict[str, int]:
    return {platform: counts.get(platform, 0) for platform in PLATFORMS}


def _in(column: sa.ColumnElement[date], period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def _window(
    table: sa.Table, start: datetime | None, end: datetime | None
) -> list[sa.ColumnElement[bool]]:
    """Rows from ``start`` (None: the first) up to ``end`` (None: the last)."""
    where: list[sa.ColumnElement[bool]] = []
    if start is not None:
        where.append(table.c.at >= _utc(start))
    if end is not None:
        where.append(table.c.at < _utc(end))
    return where


async def _split(
    conn: AsyncConnection, period: Period
) -> tuple[set[date], datetime | None]:
    """The rolled-up days of ``period``, and where its raw rows start (None: none)."""
    table = db.stats_days
    result = await conn.execute(sa.select(table.c.day).where(_in(table.c.day, period)))
    rolled = set(result.scalars())
    raw = next((day for day in period.days if day not in rolled), None)
    return rolled, (None if raw is None else midnight(raw))


async def _latest_counts(
    conn: AsyncConnection, where: sa.ColumnElement[bool]
) -> list[AssetCount]:
    """Each asset's row of the last snapshot day matching ``where``."""
    table = db.github_download_counts
    last = (
        sa.select(
            table.c.release_id, table.c.asset, sa.func.max(table.c.day).label("day")
        )
        .where(where)
        .group_by(table.c.release_id, table.c.asset)
        .subquery()
    )
    joined = last.join(
        table,
        sa.and_(
            table.c.release_id == last.c.release_id,
            table.c.asset == last.c.asset,
            table.c.day == last.c.day,
        ),
    )
    result = await conn.execute(
        sa.select(table.c.release_id, table.c.version, table.c.asset)
        .add_columns(table.c.device, table.c.kind, table.c.download_count)
        .select_from(joined)
    )
    return [AssetCount(*row) for row in result]


def _last_checks(
    start: datetime | None, end: datetime | None, *, by_day: bool
) -> sa.Subquery:
    """The ``id`` of each serial's last update check in a window (each ``day``'s)."""
    table = db.update_checks
    day = [utc_day(table.c.at).label("day")] if by_day else []
    # By time, not by id: a recorder that waited for the database writes its rows
    # after those of other processes.
    latest = (
        sa.select(table.c.serial, *day, sa.func.max(table.c.at).label("at"))
        .where(*_window(table, start, end), table.c.serial.is_not(None))
        .group_by(table.c.serial, *day)
        .subquery("latest")
    )
    # Two checks of a serial in one instant (MySQL keeps whole seconds): the one
    # written last counts.
    same = sa.and_(table.c.serial == latest.c.serial, table.c.at == latest.c.at)
    days = [latest.c.day] if by_day else []
    return (
        sa.select(sa.func.max(table.c.id).label("id"), *days)
        .select_from(latest.join(table, same))
        .group_by(latest.c.serial, *days)
        .subquery("last")
    )


# -- raw rows: also what rasbot.retention rolls up, so both read alike ------------


async def active_between(
    conn: AsyncConnection, start: datetime | None, end: datetime | None
) -> int:
    """Distinct serials of the update checks in a window (all rows for None)."""
    table = db.update_checks
    serials = (
        sa.select(table.c.serial)
        .where(*_window(table, start, end), table.c.serial.is_not(None))
        .distinct()
        .subquery()
    )
    found: int | None = await conn.scalar(
        sa.select(sa.func.count()).select_from(serials)
    )
    return found or 0


async def installs_between(
    conn: AsyncConnection, start: datetime | None, end: datetime | None
) -> dict[str, int]:
    """Distinct addresses per platform of the installs in a window."""
    table = db.installs
    result = await conn.execute(
        sa.select(table.c.platform, sa.func.count(table.c.address.distinct()))
        .where(*_window(table, start, end))
        .group_by(table.c.platform)
    )
    return {platform: n for platform, n in result}


async def raw_day_groups(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[DayGroup]:
    """`DayGroup`s from the update checks in a window of whole days."""
    table = db.update_checks
    last = _last_checks(start, end, by_day=True)
    columns = (last.c.day, table.c.client_version, table.c.channel, table.c.device)
    result = await conn.execute(
        sa.select(*columns, sa.func.count())
        .select_from(last.join(table, table.c.id == last.c.id))
        .group_by(*columns)
    )
    # NULL and '' are one key in the roll-ups: add their groups up.
    merged: dict[tuple[date, str, str, str], int] = {}
    for d, version, channel, device, n in result:
        key = (date.fromisoformat(d), version or "", channel, device or "")
        merged[key] = merged.get(key, 0) + n
    return [DayGroup(*key, n) for key, n in merged.items()]


async def raw_weekly(
    conn: AsyncConnection, start: date, end: date
) -> list[tuple[date, int]]:
    """Distinct serials of each ISO week (by Monday) from ``start`` to ``end``."""
    # A query a week: counting one range's distinct serials is several times
    # faster than grouping many ranges by a computed week, on SQLite above all.
    weeks = Period(monday(start), end).days[::7]
    return [
        (week, await active_between(conn, midnight(week), midnight(week + _WEEK)))
        for week in weeks
    ]


async def raw_checks_hourly(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[tuple[date, int, int]]:
    """(day, hour, update checks) of the checks in a window."""
    table = db.update_checks
    hour = utc_hour(table.c.at)
    result = await conn.execute(
        sa.select(hour, sa.func.count())
        .where(*_window(table, start, end))
        .group_by(hour)
    )
    return [(date.fromisoformat(h[:10]), int(h[11:13]), n) for h, n in result]


async def raw_staged(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[DayCount]:
    """Distinct serials staging each version, by day, in a window."""
    table = db.updates_staged
    return await _raw_distinct(conn, table, table.c.version, table.c.serial, start, end)


async def raw_installs(
    conn: AsyncConnection, start: datetime, end: datetime, dimension: str
) -> list[DayCount]:
    """Distinct addresses per platform or device, by day, in a window."""
    table = db.installs
    key = table.c.platform if dimension == BY_PLATFORM else table.c.device
    return await _raw_distinct(conn, table, key, table.c.address, start, end)


async def _raw_distinct(
    conn: AsyncConnection,
    table: sa.Table,
    key: sa.ColumnElement[Any],
    counted: sa.ColumnElement[Any],
    start: datetime,
    end: datetime,
) -> list[DayCount]:
    day = utc_day(table.c.at)
    result = await conn.execute(
        sa.select(day, key, sa.func.count(counted.distinct()))
        .where(*_window(table, start, end), counted.is_not(None))
        .group_by(day, key)
    )
    return _day_counts(result)


def _day_counts(rows: Iterable[Sequence[Any]]) -> list[DayCount]:
    # Keys a client left out come back as NULL: '' in the roll-ups' keys.
    merged: dict[tuple[date, str], int] = {}
    for day, key, n in rows:
        found = (date.fromisoformat(day), key or "")
        merged[found] = merged.get(found, 0) + n
    return [DayCount(day, key, n) for (day, key), n in merged.items()]


async def raw_downloads(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[DownloadDay]:
    """Downloads through rasbot by day, release and device, in a window."""
    table = db.downloads
    day = utc_day(table.c.at)
    columns = (day, table.c.release_id, table.c.device)
    result = await conn.execute(
        sa.select(*columns, sa.func.max(table.c.version), sa.func.count())
        .where(*_window(table, start, end))
        .group_by(*columns)
    )
    merged: dict[tuple[date, int, str], tuple[str, int]] = {}
    for d, release_id, device, version, n in result:
        key = (date.fromisoformat(d), release_id, device or "")
        merged[key] = (version, merged.get(key, ("", 0))[1] + n)
    return [
        DownloadDay(day, release_id, version, device, n)
        for (day, release_id, device), (version, n) in merged.items()
    ]
