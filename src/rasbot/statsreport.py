"""The statistics as people read them: top-line numbers, tables and charts.

rasbot.stats answers in raw terms (the version string a client reported, '' for
nothing); this module names things (the release a build belongs to, "unknown") and
puts them together for the dashboard, chat and the CLI alike. Nothing here ever
carries a serial or an address: only counts leave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from rasbot.catalog import Catalog, Release
from rasbot.charts import Chart, Series, top
from rasbot.stats import BY_PLATFORM, PLATFORMS, FieldGroup, Period, Stats, utc_now
from rasbot.versions import parse_client_version

UNKNOWN = "unknown"
OTHERS = "others"
#: Versions a chart or table lists before adding the rest up under "others".
TOP_VERSIONS = 12
#: The longest period a chart or table covers, in days.
MAX_DAYS = 730
#: What charts can be drawn; adoption needs a release too.
CHARTS = ("active", "versions", "installs", "downloads", "adoption", "checks")
INSTALL_PLATFORMS = (*PLATFORMS, UNKNOWN)

_DAY = timedelta(days=1)


class VersionNames:
    """The release a reported client version is a build of, by name."""

    def __init__(self, releases: Iterable[Release]) -> None:
        self._names = {release.version.key[:3]: release.name for release in releases}

    def __call__(self, reported: str) -> str:
        """``1.7.1.123-e23a7eef`` -> ``1.7.1``; unknown builds keep their version."""
        if not reported:
            return UNKNOWN
        parsed = parse_client_version(reported)
        if parsed is None:
            return OTHERS
        return self._names.get(parsed.key[:3], str(parsed).split("+")[0])

    def on(self, release: Release, reported: str) -> bool:
        """Whether ``reported`` is a build of ``release``."""
        parsed = parse_client_version(reported) if reported else None
        return parsed is not None and parsed.key[:3] == release.version.key[:3]


@dataclass(frozen=True)
class Summary:
    """The top-line numbers of the last ``days`` days up to ``now``."""

    days: int
    now: datetime
    active_day: int
    active_week: int
    active_period: int
    versions: list[tuple[str, int]]
    channels: list[tuple[str, int]]
    devices: list[tuple[str, int]]
    installs: dict[str, int]
    staged: list[tuple[str, int]]
    downloads: list[tuple[str, str, int]]
    github_downloads: int


async def summary(
    stats: Stats, catalog: Catalog, days: int, now: datetime | None = None
) -> Summary:
    """Devices active in the last day, week and ``days``; versions, installs, ..."""
    now = now or utc_now()
    since = now - days * _DAY
    period = Period.last(days, now.date())
    names = VersionNames(catalog.releases)
    fields = await stats.versions_in_field(since, now)
    installs = await stats.installs_between(since, now)
    staged = Counter[str]()
    for count in await stats.staged_daily(period):
        staged[names(count.key)] += count.count
    return Summary(
        days=days,
        now=now,
        active_day=await stats.active_between(now - _DAY, now),
        active_week=await stats.active_between(now - 7 * _DAY, now),
        active_period=await stats.active_between(since, now),
        versions=_by(fields, lambda f: names(f.client_version)),
        channels=_by(fields, lambda f: f.channel),
        devices=_by(fields, lambda f: f.device or UNKNOWN),
        installs={p: installs.get(p, 0) for p in INSTALL_PLATFORMS},
        staged=staged.most_common(),
        downloads=await _tracked(stats, period),
        github_downloads=sum((await stats.github_daily(period)).values()),
    )


def _by(
    fields: list[FieldGroup], key: Callable[[FieldGroup], str]
) -> list[tuple[str, int]]:
    counts = Counter[str]()
    for group in fields:
        counts[key(group)] += group.serials
    return counts.most_common()


async def _tracked(stats: Stats, period: Period) -> list[tuple[str, str, int]]:
    totals = Counter[tuple[str, str]]()
    for row in await stats.downloads_daily(period):
        totals[(row.version, row.device or UNKNOWN)] += row.downloads
    return [(version, device, n) for (version, device), n in totals.most_common()]


def find_release(catalog: Catalog, name: str) -> Release | None:
    """The release named or tagged ``name``, in any case."""
    wanted = name.strip().lower()
    return next(
        (r for r in catalog.releases if wanted in (r.name.lower(), r.tag.lower())),
        None,
    )


def newest_stable(catalog: Catalog) -> Release | None:
    """The release most devices are offered."""
    return next(iter(catalog.on_channels(("stable",))), None)


@dataclass(frozen=True)
class AdoptionDay:
    """Devices on a release one day, and all active devices that day."""

    day: date
    devices: int
    active: int

    @property
    def share(self) -> float:
        """The fraction of active devices on the release."""
        return self.devices / self.active if self.active else 0.0


async def adoption(stats: Stats, release: Release, period: Period) -> list[AdoptionDay]:
    """Each day since ``release`` was published (within ``period``)."""
    start = max(period.start, release.published_at.date())
    span = Period(min(start, period.end), period.end)
    names = VersionNames(())
    on, active = Counter[date](), Counter[date]()
    for group in await stats.day_groups(span):
        active[group.day] += group.serials
        if names.on(release, group.client_version):
            on[group.day] += group.serials
    return [AdoptionDay(day, on[day], active[day]) for day in span.days]


async def chart(
    name: str,
    stats: Stats,
    catalog: Catalog,
    period: Period,
    release: Release | None = None,
) -> Chart:
    """The chart called ``name`` (one of `CHARTS`) for ``period``."""
    if name == "active":
        return await _active(stats, period)
    if name == "versions":
        return await _versions(stats, catalog, period)
    if name == "installs":
        return await _installs(stats, period)
    if name == "downloads":
        return await _downloads(stats, period)
    if name == "adoption" and release is not None:
        return await _adoption(stats, release, period)
    if name == "checks":
        return await _checks(stats, period)
    raise ValueError(f"no chart {name!r}")


async def _active(stats: Stats, period: Period) -> Chart:
    active = await stats.active_daily(period)
    return Chart(
        "Active devices per day",
        "line",
        tuple(active),
        (Series("devices", tuple(active.values())),),
        "devices",
    )


async def _versions(stats: Stats, catalog: Catalog, period: Period) -> Chart:
    names = VersionNames(catalog.releases)
    fields = await stats.versions_in_field(period.start_at, period.end_at)
    ranked = top(_by(fields, lambda f: names(f.client_version)), TOP_VERSIONS, OTHERS)
    return Chart(
        "Versions in the field (each device's latest)",
        "barh",
        tuple(name for name, _ in ranked),
        (Series("devices", tuple(n for _, n in ranked)),),
        "devices",
    )


async def _installs(stats: Stats, period: Period) -> Chart:
    per_day = {
        (c.day, c.key): c.count for c in await stats.installs_daily(period, BY_PLATFORM)
    }
    days = period.days
    series = tuple(
        Series(platform, tuple(per_day.get((day, platform), 0) for day in days))
        for platform in INSTALL_PLATFORMS
    )
    return Chart(
        "Installs per day by platform", "stacked", tuple(days), series, "addresses"
    )


async def _downloads(stats: Stats, period: Period) -> Chart:
    tracked = dict.fromkeys(period.days, 0)
    for row in await stats.downloads_daily(period):
        tracked[row.day] += row.downloads
    github = await stats.github_daily(period)
    return Chart(
        "Downloads per day",
        "line",
        tuple(period.days),
        (
            Series("GitHub (all files)", tuple(github.values())),
            Series("through rasbot", tuple(tracked.values())),
        ),
        "downloads",
    )


async def _adoption(stats: Stats, release: Release, period: Period) -> Chart:
    days = await adoption(stats, release, period)
    return Chart(
        f"Devices on {release.name} since it was published",
        "line",
        tuple(d.day for d in days),
        (
            Series(release.name, tuple(d.devices for d in days)),
            Series("all active devices", tuple(d.active for d in days)),
        ),
        "devices",
    )


async def _checks(stats: Stats, period: Period) -> Chart:
    hourly = await stats.checks_hourly(period)
    hours = [
        period.start_at + n * timedelta(hours=1) for n in range(len(period.days) * 24)
    ]
    now = utc_now()
    hours = [hour for hour in hours if hour <= now]
    return Chart(
        "Update checks per hour",
        "line",
        tuple(hours),
        (Series("checks", tuple(hourly.get(hour, 0) for hour in hours)),),
        "checks",
    )


def summary_lines(found: Summary) -> list[str]:
    """The summary as `name: values` lines, for the CLI and scripts reading it."""
    return [
        f"usage of the last {found.days} days up to "
        f"{found.now.strftime('%Y-%m-%d %H:%M')} UTC",
        f"devices active: {found.active_day} in the last 24 hours, "
        f"{found.active_week} in the last 7 days, "
        f"{found.active_period} in the last {found.days} days",
        "versions in the field: " + _pairs(found.versions),
        "channels: " + _pairs(found.channels),
        "device types: " + _pairs(found.devices),
        "installs (distinct addresses): " + _pairs(list(found.installs.items())),
        "updates staged: " + _pairs(found.staged),
        "downloads through rasbot: "
        + _pairs(
            [(f"{version} {device}", n) for version, device, n in found.downloads]
        ),
        f"downloads counted by GitHub: {found.github_downloads}",
    ]


def _pairs(pairs: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name} {n}" for name, n in pairs) or "none"
