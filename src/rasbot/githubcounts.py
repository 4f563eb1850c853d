"""Snapshots of GitHub's download counts of release assets, one per asset and day.

GitHub only reports a running total per asset. After every successful sync the
syncer hands the listing to `DownloadCounts.snapshot`, which replaces today's row of
each asset with the count just seen; the rows of successive days then give the
downloads of each day (rasbot.stats). Counts change without changing what is
served, so this runs after every sync, not only after a change.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db
from rasbot.catalog import Catalog, Release
from rasbot.github import Listing

log = structlog.get_logger(__name__)

# A digest of the (release id, asset name, count) of a snapshot's rows, to skip
# writing the same snapshot twice.
_Seen = bytes
_BATCH_ROWS = 1000


class DownloadCounts:
    """Writes the ``github_download_counts`` snapshot of each day."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._written: tuple[date, _Seen] | None = None

    async def snapshot(self, listing: Listing, catalog: Catalog) -> None:
        """Store today's counts of every asset of every published release."""
        now = datetime.now(UTC)
        count, seen = _summary(snapshot_rows(listing.releases(), catalog, now))
        if not count or self._written == (now.date(), seen):
            return

        try:
            await self._replace_day(listing, catalog, now)
        except IntegrityError:
            # Processes that synced together (at start, or on the same webhook)
            # each write the day's rows; the one that writes second finds the
            # other's rows now, and replaces them.
            log.info("github_counts.written_meanwhile")
            await self._replace_day(listing, catalog, now)
        self._written = (now.date(), seen)
        log.info("github_counts.snapshot", assets=count)

    async def _replace_day(
        self, listing: Listing, catalog: Catalog, now: datetime
    ) -> None:
        table = db.github_download_counts
        rows = snapshot_rows(listing.releases(), catalog, now)
        # Replacing the day's rows keeps one row per asset and day on every database
        # without an upsert, which each of them spells differently.
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(table).where(table.c.day == now.date()))
            # In batches: tens of thousands of rows at once cost tens of MiB.
            while batch := list(itertools.islice(rows, _BATCH_ROWS)):
                await conn.execute(sa.insert(table), batch)


def snapshot_rows(
    releases: Iterable[Mapping[str, Any]], catalog: Catalog, now: datetime
) -> Iterable[dict[str, Any]]:
    """Rows of ``github_download_counts`` for the published releases' assets."""
    served = {release.id: release for release in catalog.releases}
    for raw in releases:
        release_id = raw.get("id")
        if raw.get("draft") or not isinstance(release_id, int):
            continue
        version = str(raw.get("name") or raw.get("tag_name") or release_id)
        packages = _packages(served.get(release_id))
        for asset in _assets(raw):
            device, kind = packages.get(asset["name"], (None, None))
            yield {
                "day": now.date(),
                "release_id": release_id,
                "asset": asset["name"],
                "version": version.strip()[: db.CLIENT_VALUE_MAX],
                "device": device,
                "kind": kind,
                "download_count": asset["download_count"],
                "at": now,
            }


def _summary(rows: Iterable[dict[str, Any]]) -> tuple[int, _Seen]:
    """How many rows, and a digest of what they say."""
    seen = sorted((r["release_id"], r["asset"], r["download_count"]) for r in rows)
    digest = hashlib.sha256()
    for release_id, asset, count in seen:
        digest.update(f"{release_id}\0{asset}\0{count}\n".encode())
    return len(seen), digest.digest()


def _assets(raw: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    assets = raw.get("assets")
    # One row per name: the table's key, and what GitHub itself enforces.
    unique: dict[str, dict[str, Any]] = {}
    for asset in assets if isinstance(assets, list) else ():
        name, count = asset.get("name"), asset.get("download_count")
        if isinstance(name, str) and isinstance(count, int) and name:
            name = name[: db.CLIENT_VALUE_MAX]
            unique[name] = {"name": name, "download_count": count}
    return unique.values()


def _packages(release: Release | None) -> dict[str, tuple[str, str]]:
    """Asset name -> (device, kind) of the release's packages."""
    if release is None:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for package in (*release.install.values(), *release.update.values()):
        if package.asset is not None:
            found[package.asset.name] = (package.device, package.kind)
    return found
