"""`releases`, `refresh` and `problems`: the catalog being served."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rasbot.catalog import CHANNELS, Catalog, Release
from rasbot.chat import texts
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Reply, Table, table
from rasbot.sync import SyncResult

family = Family("releases")


@family.command(
    "releases",
    synonyms=("catalog", "list releases"),
    help="The releases served, per channel: version, date, devices, problems.",
)
async def releases(ctx: Context) -> Reply:
    """One table per channel, under a line about the catalog."""
    catalog = ctx.services.syncer.catalog
    if catalog.revision == 0:
        return Reply.error(texts.NO_CATALOG)
    order = [device for device, _ in ctx.services.settings.device_names]
    tables = [_channel_table(catalog, channel, order) for channel in CHANNELS]
    return Reply.say(_summary(catalog), *tables)


def _summary(catalog: Catalog) -> str:
    synced = texts.when(catalog.fetched_at) if catalog.fetched_at else texts.NEVER
    return texts.CATALOG_SUMMARY.format(
        revision=catalog.revision,
        synced=synced,
        releases=len(catalog.releases),
        problems=len(catalog.problems),
    )


def _channel_table(catalog: Catalog, channel: str, order: Sequence[str]) -> Table:
    problems = Counter(problem.release for problem in catalog.problems)
    listed = list(catalog.on_channels([channel]))
    rows = [
        (
            release.name + (texts.DRAFT if release.draft else ""),
            texts.when(release.published_at),
            ", ".join(_devices(release, order)) or "-",
            problems[release.name],
        )
        for release in listed
    ]
    title = texts.CHANNEL_TITLE.format(channel=channel, count=len(listed))
    return table(texts.RELEASE_COLUMNS, rows, title)


def _devices(release: Release, order: Sequence[str]) -> list[str]:
    """Devices with any package, in the installer's order, unknown ones last."""
    devices = set(release.install) | set(release.update)
    rank = {device: index for index, device in enumerate(order)}
    return sorted(devices, key=lambda d: (rank.get(d, len(rank)), d.lower()))


@family.command(
    "refresh",
    synonyms=("update releases", "sync"),
    changes=True,
    help="Sync with GitHub now and say what changed.",
)
async def refresh(ctx: Context) -> Reply:
    """Run (or join) a refresh; the syncer's observer audits what it changed."""
    result = await ctx.services.syncer.refresh("chat")
    if not result.ok:
        await ctx.record(f"failed: {result.error}")
        return Reply.error(texts.REFRESH_FAILED.format(error=result.error))
    await ctx.record(f"revision {result.revision}, {len(result.changes)} changes")
    return Reply.say(_refreshed(result))


def _refreshed(result: SyncResult) -> str:
    if not result.changes:
        lines = [texts.REFRESH_UNCHANGED.format(revision=result.revision)]
    else:
        lines = [texts.REFRESH_CHANGED.format(revision=result.revision)]
        lines += [f"• {change}" for change in result.changes]
    if result.problems:
        lines.append(texts.PROBLEMS_HINT.format(count=len(result.problems)))
    return "\n".join(lines)


@family.command(
    "problems",
    synonyms=("problem",),
    help="Every release or device package not served, and why.",
)
async def problems(ctx: Context) -> Reply:
    """One row per problem, in the order the catalog found them."""
    catalog = ctx.services.syncer.catalog
    if catalog.revision == 0:
        return Reply.error(texts.NO_CATALOG)
    if not catalog.problems:
        return Reply.say(texts.NO_PROBLEMS)
    rows = [
        (p.release, p.device or "-", p.kind or "-", p.reason) for p in catalog.problems
    ]
    title = texts.PROBLEMS_TITLE.format(count=len(rows), revision=catalog.revision)
    return Reply.say(table(texts.PROBLEM_COLUMNS, rows, title))
