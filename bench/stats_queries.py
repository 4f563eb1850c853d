"""Time the statistics queries on a big database, before and after compaction.

Run by hand, on a database made by `bench/make_stats_data.py`:

    .venv/bin/python bench/stats_queries.py /tmp/stats.db [--keep-days 400]

Each query runs three times (nothing is cached between runs; the operating
system's page cache is warm after the first); the first and the median time are
printed. Then the database is compacted (`rasbot stats --compact`: finished days
rolled up, raw rows older than --keep-days deleted), the queries run again, and the
file's size is printed before, after compaction and after SQLite's VACUUM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.make_stats_data import RELEASES  # noqa: E402
from rasbot import charts, db, retention, statsreport  # noqa: E402
from rasbot.catalog import Catalog, Release  # noqa: E402
from rasbot.rollouthealth import Window, release_health  # noqa: E402
from rasbot.stats import BY_PLATFORM, Period, Stats  # noqa: E402
from rasbot.versions import parse_version  # noqa: E402

RUNS = 3
RESULTS = ROOT / "bench" / "results"
Query = Callable[[], Awaitable[Any]]


def catalog() -> Catalog:
    """The releases the generated devices run."""
    today = datetime.now(UTC)
    releases = []
    for index, (name, ago) in enumerate(reversed(RELEASES)):
        version = parse_version(name)
        assert version is not None
        releases.append(
            Release(
                id=1000 + len(RELEASES) - 1 - index,
                name=name,
                tag=name,
                version=version,
                channel="stable",
                draft=False,
                published_at=today - timedelta(days=ago),
                changes=(),
                install={},
                update={},
                declared=frozenset(),
                assets={},
            )
        )
    return Catalog(tuple(releases), ())


def queries(engine: AsyncEngine, releases: Catalog) -> dict[str, Query]:
    """What the dashboard, chat, the CLI, /json/stats and the rollout watch ask."""
    stats = Stats(engine)
    now = datetime.now(UTC)
    newest, older = releases.releases[0], releases.releases[2]

    def last(days: int) -> Period:
        return Period.last(days)

    def health(days: int) -> Query:
        window = Window(now - timedelta(days), now)
        return lambda: release_health(engine, newest, window)

    async def chart() -> bytes:
        found = await statsreport.chart("active", stats, releases, last(365))
        return await charts.render_async(found)

    return {
        "/json/stats (uncached)": lambda: stats.json_stats(now),
        "active devices, last 24 h": lambda: stats.active_between(
            now - timedelta(1), now
        ),
        "active devices, last 7 days": lambda: stats.active_between(now - timedelta(7)),
        "active devices, last 30 days": lambda: stats.active_between(
            now - timedelta(30)
        ),
        "active per day, 30 days": lambda: stats.active_daily(last(30)),
        "active per day, 365 days": lambda: stats.active_daily(last(365)),
        "active per week, 90 days": lambda: stats.active_weekly(last(90)),
        "versions in the field, 30 days": lambda: stats.versions_in_field(
            now - timedelta(30)
        ),
        f"adoption of {newest.name}, 90 days": lambda: statsreport.adoption(
            stats, newest, last(90)
        ),
        f"adoption of {older.name}, 365 days": lambda: statsreport.adoption(
            stats, older, last(365)
        ),
        "installs per day, 30 days": lambda: stats.installs_daily(
            last(30), BY_PLATFORM
        ),
        "updates staged per day, 30 days": lambda: stats.staged_daily(last(30)),
        "downloads per day, 30 days": lambda: stats.downloads_daily(last(30)),
        "GitHub downloads per day, 30 days": lambda: stats.github_daily(last(30)),
        "checks per hour, 7 days": lambda: stats.checks_hourly(last(7)),
        "summary (dashboard, CLI), 30 days": lambda: statsreport.summary(
            stats, releases, 30
        ),
        "chart: active per day, 365 days": chart,
        f"rollout health of {newest.name}, 1 day": health(1),
        f"rollout health of {newest.name}, 7 days": health(7),
        f"rollout health of {newest.name}, 30 days": health(30),
    }


async def time_all(
    engine: AsyncEngine, releases: Catalog, match: str
) -> dict[str, dict[str, float]]:
    """First and median seconds of each query whose name contains ``match``."""
    timings = {}
    for name, query in queries(engine, releases).items():
        if match not in name:
            continue
        seconds = []
        for _ in range(RUNS):
            started = time.perf_counter()
            await query()
            seconds.append(time.perf_counter() - started)
        timings[name] = {"first": seconds[0], "median": statistics.median(seconds)}
        print(f"  {name:40} {seconds[0]:8.3f} s {statistics.median(seconds):8.3f} s")
    return timings


def size_mib(path: Path) -> float:
    """The database's size with its write-ahead log."""
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def vacuum(path: Path) -> float:
    """Seconds SQLite's VACUUM takes to give freed pages back to the file system."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return time.perf_counter() - started


def rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    found = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("update_checks", "updates_staged", "installs", "downloads")
    }
    conn.close()
    return found


async def run(path: Path, keep_days: int, match: str) -> dict[str, Any]:
    """Everything measured, as a JSON-ready document."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    releases = catalog()
    report: dict[str, Any] = {"database": str(path), "rows_before": rows(path)}
    report["size_mib_before"] = size_mib(path)
    print(f"{path}: {report['size_mib_before']:,.0f} MiB, {report['rows_before']}")
    print(f"  {'query (raw rows only)':40} {'first':>10} {'median':>10}")
    report["before"] = await time_all(engine, releases, match)

    started = time.perf_counter()
    done = await retention.compact(engine, keep_days)
    report["compact_seconds"] = time.perf_counter() - started
    report["compaction"] = {
        "days_rolled_up": done.days_rolled_up,
        "weeks_kept": done.weeks_kept,
        "rows_deleted": done.rows_deleted,
        "kept_from": done.kept_from.isoformat(),
    }
    print(f"compacted in {report['compact_seconds']:.1f} s: {report['compaction']}")
    print(f"  {'query (compacted)':40} {'first':>10} {'median':>10}")
    report["after"] = await time_all(engine, releases, match)
    await engine.dispose()

    report["size_mib_after_compact"] = size_mib(path)
    report["vacuum_seconds"] = vacuum(path)
    report["size_mib_after_vacuum"] = size_mib(path)
    report["rows_after"] = rows(path)
    print(
        f"size: {report['size_mib_before']:,.0f} MiB before, "
        f"{report['size_mib_after_compact']:,.0f} MiB after compaction, "
        f"{report['size_mib_after_vacuum']:,.0f} MiB after VACUUM "
        f"({report['vacuum_seconds']:.0f} s); rows now {report['rows_after']}"
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="database from make_stats_data.py")
    parser.add_argument("--keep-days", type=int, default=400)
    parser.add_argument(
        "--match", default="", help="time only the queries whose name contains this"
    )
    args = parser.parse_args()

    report = asyncio.run(run(args.path, args.keep_days, args.match))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"stats-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
