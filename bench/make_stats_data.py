"""Fill a SQLite database with a realistic history of recorded requests.

Run by hand, for `bench/stats_queries.py`:

    .venv/bin/python bench/make_stats_data.py /tmp/stats.db [--rows 10000000]

A population of devices comes and goes over ``--days`` days ending today (UTC);
each device checks for updates four times a day, moves to a new release some days
after it is published (or never), stages the update and downloads it through
rasbot; new devices were installed first. GitHub's download counts are
snapshotted daily. The schema is rasbot's own (migrated), filled with sqlite3
directly in big batches, the secondary indexes built after the rows; a seed makes
the data the same every time.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from hashlib import sha1
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from rasbot import db, migrate  # noqa: E402

#: Release names and how many days before today each was published.
RELEASES = (
    ("1.6.2", 700), ("1.6.3", 560), ("1.7.0", 470), ("1.7.1", 380),
    ("1.7.2", 250), ("1.7.3", 140), ("1.8.0", 45),
)  # fmt: skip
DEVICES = (
    ("RPi2", "a02082", 0.6),
    ("RPi", "0010", 0.25),
    ("RPi3bplus", "a020d3", 0.15),
)
CHANNELS = (("stable", 0.9), ("prerelease", 0.08), ("beta", 0.02))
PLATFORMS = (("windows", 0.55), ("osx", 0.25), ("linux", 0.2))
CHECKS_PER_DAY = 4
MEAN_LIFETIME_DAYS = 240
BATCH = 200_000

CHECK_SQL = (
    "INSERT INTO update_checks (at, serial, revision, device, client_version, "
    "channel, address, offered) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
STAGED_SQL = (
    "INSERT INTO updates_staged (at, serial, revision, device, from_version, "
    "version, channel, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSTALL_SQL = "INSERT INTO installs (at, platform, device, address) VALUES (?, ?, ?, ?)"
DOWNLOAD_SQL = (
    "INSERT INTO downloads (at, release_id, version, asset, device, kind, address) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
COUNTS_SQL = (
    "INSERT INTO github_download_counts (day, release_id, asset, version, device, "
    "kind, download_count, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SECONDARY_INDEXES = {
    "ix_update_checks_at_serial": "update_checks (at, serial)",
}


@dataclass
class Device:
    """One device in the field."""

    serial: str
    device: str
    revision: str
    channel: str
    address: str
    first_day: int
    last_day: int
    lag_days: float  # how long after a release it updates; inf: never
    offset_seconds: int  # when in the day its checks fall
    version: int = -1


def weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in table], [w for _, w in table])[0]


def population(rng: random.Random, days: int, rows: int) -> list[Device]:
    """Devices arriving at a steady rate, enough for about ``rows`` checks."""
    guess = _arrivals(random.Random(rng.random()), days, 10_000)
    expected = (
        sum(max(0, min(d.last_day, days - 1) - max(d.first_day, 0) + 1) for d in guess)
        * CHECKS_PER_DAY
        * 0.9
    )
    return _arrivals(rng, days, int(10_000 * rows / expected))


def _arrivals(rng: random.Random, days: int, arrivals: int) -> list[Device]:
    devices = []
    for n in range(arrivals):
        first = rng.randint(-MEAN_LIFETIME_DAYS, days - 1)
        kind = rng.choices(DEVICES, [w for *_, w in DEVICES])[0]
        never = rng.random() < 0.1
        devices.append(
            Device(
                serial=f"{rng.getrandbits(64):016x}",
                device=kind[0],
                revision=kind[1],
                channel=weighted(rng, CHANNELS),
                address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                first_day=first,
                last_day=first + int(rng.expovariate(1 / MEAN_LIFETIME_DAYS)),
                lag_days=float("inf") if never else rng.expovariate(1 / 7),
                offset_seconds=rng.randrange(6 * 3600),
            )
        )
    return devices


def stamp(day: date, seconds: float) -> str:
    """A timestamp as SQLAlchemy stores it in SQLite."""
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)
    h, rest = divmod(whole, 3600)
    return f"{day.isoformat()} {h:02d}:{rest // 60:02d}:{rest % 60:02d}.{micro:06d}"


@dataclass
class Day:
    """Everything recorded on one day."""

    checks: list[tuple[object, ...]]
    staged: list[tuple[object, ...]]
    installs: list[tuple[object, ...]]
    downloads: list[tuple[object, ...]]


def simulate(rng: random.Random, devices: list[Device], days: int) -> Iterator[Day]:
    """Each day's rows, in time order, from ``days`` ago up to today."""
    today = datetime.now(UTC).date()
    published = [days - ago for _, ago in RELEASES]  # day numbers
    for number in range(days):
        day = today - timedelta(days=days - 1 - number)
        record = Day([], [], [], [])
        for device in devices:
            if device.first_day <= number <= device.last_day:
                _device_day(rng, device, number, day, published, record)
        # Today only up to now: the future is not recorded yet.
        now = stamp(today, (datetime.now(UTC) - _midnight(today)).total_seconds())
        for rows in (record.checks, record.staged, record.installs, record.downloads):
            rows[:] = [row for row in rows if str(row[0]) <= now]
        record.checks.sort(key=lambda row: str(row[0]))
        yield record


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _device_day(
    rng: random.Random,
    device: Device,
    number: int,
    day: date,
    published: list[int],
    record: Day,
) -> None:
    if device.version < 0:
        # Installed with the newest release of its first day.
        device.version = max(0, bisect.bisect_right(published, device.first_day) - 1)
    if number == device.first_day:
        at = stamp(day, device.offset_seconds / 2)
        platform = weighted(rng, PLATFORMS)
        record.installs.append((at, platform, device.device, device.address))
    newest = bisect.bisect_right(published, number - device.lag_days) - 1
    if newest > device.version:
        _update(device, newest, day, record)
    if rng.random() < 0.1:
        return  # switched off today
    name = RELEASES[device.version][0]
    # Builds report `<release>.<build>-<git hash>`, the same for every device.
    reported = f"{name}.{100 + device.version}-{sha1(name.encode()).hexdigest()[:8]}"
    for k in range(CHECKS_PER_DAY):
        seconds = (device.offset_seconds + k * 6 * 3600) % 86400 + rng.random()
        record.checks.append(
            (
                stamp(day, seconds),
                device.serial,
                device.revision,
                device.device,
                reported,
                device.channel,
                device.address,
                None,
            )
        )


def _update(device: Device, newest: int, day: date, record: Day) -> None:
    old, new = RELEASES[device.version][0], RELEASES[newest][0]
    at = stamp(day, device.offset_seconds + 60)
    asset = f"RasPlex-{device.device}.RP-{new}.tar.gz"
    record.downloads.append(
        (at, 1000 + newest, new, asset, device.device, "update", device.address)
    )
    record.staged.append(
        (at, device.serial, device.revision, device.device, old, new, device.channel,
         device.address)
    )  # fmt: skip
    device.version = newest


def github_counts(days: int) -> list[tuple[object, ...]]:
    """A daily snapshot of GitHub's counts of each published release's files."""
    rng = random.Random(7)
    today = datetime.now(UTC).date()
    counts: dict[str, int] = {}
    rows = []
    for ago in range(days - 1, -1, -1):
        day = today - timedelta(days=ago)
        for index, (name, published_ago) in enumerate(RELEASES):
            if ago > published_ago:
                continue
            for device, _, _ in DEVICES:
                for kind, suffix in (("install", "img.gz"), ("update", "tar.gz")):
                    asset = f"RasPlex-{device}.RP-{name}.{suffix}"
                    counts[asset] = counts.get(asset, 0) + rng.randint(0, 40)
                    at = f"{day.isoformat()} 23:55:00.000000"
                    rows.append(
                        (day.isoformat(), 1000 + index, asset, name, device, kind,
                         counts[asset], at)
                    )  # fmt: skip
    return rows


def fill(path: Path, rows: int, days: int) -> dict[str, int]:
    """Write the history into the database at ``path``; row counts per table."""
    rng = random.Random(42)
    devices = population(rng, days, rows)
    conn = sqlite3.connect(path)
    conn.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-400000;"
    )
    for name in SECONDARY_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    written = {"update_checks": 0, "updates_staged": 0, "installs": 0, "downloads": 0}
    batch: list[tuple[object, ...]] = []
    for record in simulate(rng, devices, days):
        batch += record.checks
        if len(batch) >= BATCH:
            conn.executemany(CHECK_SQL, batch)
            written["update_checks"] += len(batch)
            batch = []
        for table, sql, found in (
            ("updates_staged", STAGED_SQL, record.staged),
            ("installs", INSTALL_SQL, record.installs),
            ("downloads", DOWNLOAD_SQL, record.downloads),
        ):
            conn.executemany(sql, found)
            written[table] += len(found)
    conn.executemany(CHECK_SQL, batch)
    written["update_checks"] += len(batch)
    counts = github_counts(days)
    conn.executemany(COUNTS_SQL, counts)
    written["github_download_counts"] = len(counts)
    for name, columns in SECONDARY_INDEXES.items():
        conn.execute(f"CREATE INDEX {name} ON {columns}")
    conn.commit()
    conn.close()
    return written


async def create_schema(path: Path) -> None:
    """rasbot's schema, migrated as the server would."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="SQLite file to create")
    parser.add_argument("--rows", type=int, default=10_000_000, help="update checks")
    parser.add_argument("--days", type=int, default=540, help="days of history")
    args = parser.parse_args()
    if args.path.exists():
        parser.error(f"{args.path} exists; remove it first")

    started = time.perf_counter()
    asyncio.run(create_schema(args.path))
    written = fill(args.path, args.rows, args.days)
    seconds = time.perf_counter() - started
    for table, count in written.items():
        print(f"{table:24} {count:>12,}")
    size = args.path.stat().st_size / 2**20
    print(f"{args.path}: {size:,.0f} MiB in {seconds:,.0f} s")


if __name__ == "__main__":
    main()
