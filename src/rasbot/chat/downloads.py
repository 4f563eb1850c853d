"""`downloads [version]`: GitHub's counts of the release files and rasbot's own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db
from rasbot.catalog import Package, Release
from rasbot.catalogstore import CatalogStore
from rasbot.chat import texts
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Reply, table

family = Family("downloads")


@dataclass(frozen=True)
class Counts:
    """Both counts: GitHub's per asset, and the redirects rasbot counted."""

    # (release id, asset name) -> GitHub's download_count at the last sync
    github: Mapping[tuple[int, str], int]
    # (release id, device or None) -> downloads through rasbot's redirect
    tracked: Mapping[tuple[int, str | None], int]


@family.command(
    "downloads",
    args=r"(?P<version>\S+)?",
    usage="downloads [version]",
    synonyms=("download", "dl"),
    help="Downloads per release and device: GitHub's counts and rasbot's.",
)
async def downloads(ctx: Context) -> Reply:
    """A row per release and device, for one release or for all of them."""
    catalog = ctx.services.syncer.catalog
    if catalog.revision == 0:
        return Reply.error(texts.NO_CATALOG)
    version = ctx.arg("version")
    chosen = [r for r in catalog.releases if _named(r, version)] if version else None
    if chosen == []:
        return Reply.error(texts.NO_SUCH_RELEASE.format(version=version))

    listed = chosen or list(catalog.releases)
    only = chosen[0].id if chosen and len(chosen) == 1 else None
    github, synced = await _github_counts(ctx.services.syncer.store)
    counts = Counts(github, await _tracked(ctx.services.engine, only))
    rows = [row for release in listed for row in _rows(release, counts)]
    note = texts.DOWNLOADS_NOTE.format(synced=texts.when(synced) if synced else "-")
    return Reply.say(note, table(texts.DOWNLOAD_COLUMNS, rows))


def _named(release: Release, version: str) -> bool:
    wanted = version.lower()
    return wanted in (release.name.lower(), release.tag.lower())


def _rows(release: Release, counts: Counts) -> Iterable[tuple[object, ...]]:
    for device in sorted(set(release.install) | set(release.update), key=str.lower):
        yield (
            release.name,
            device,
            _github(release, release.install.get(device), counts),
            _github(release, release.update.get(device), counts),
            counts.tracked.get((release.id, device), 0),
        )
    # Files served through the redirect that are no device's package (notes, ...).
    other = counts.tracked.get((release.id, None), 0)
    if other:
        yield (release.name, texts.OTHER_FILES, "-", "-", other)


def _github(release: Release, package: Package | None, counts: Counts) -> object:
    if package is None or package.asset is None:
        return "-"
    key = (release.id, package.asset.name)
    return counts.github.get(key, package.asset.download_count)


async def _github_counts(
    store: CatalogStore,
) -> tuple[dict[tuple[int, str], int], datetime | None]:
    """GitHub's counts as of the last sync, and when that was.

    The served catalog keeps each release's counts of when it was parsed (a sync
    in which only counts changed parses nothing); the stored listing has every
    sync's.
    """
    stored = await store.load()
    if stored is None:
        return {}, None
    counts = {
        (int(release.get("id") or 0), asset["name"]): asset["download_count"]
        for release in stored.releases()
        for asset in release.get("assets") or ()
        if isinstance(asset, dict)
        and isinstance(asset.get("name"), str)
        and isinstance(asset.get("download_count"), int)
    }
    return counts, stored.fetched_at


async def _tracked(
    engine: AsyncEngine, release_id: int | None
) -> Mapping[tuple[int, str | None], int]:
    """Counted downloads of one release, or of every release when None."""
    table_ = db.downloads
    query = sa.select(table_.c.release_id, table_.c.device, sa.func.count()).group_by(
        table_.c.release_id, table_.c.device
    )
    if release_id is not None:
        query = query.where(table_.c.release_id == release_id)
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return {(row[0], row[1]): row[2] for row in rows}
