"""Keeping the catalog in step with the release source.

A refresh lists every release, builds a new snapshot, persists it and swaps it in.
Only a complete listing gets that far: any failure leaves the served catalog and the
stored one as they were. Concurrent triggers share one refresh in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from rasbot import catalogprocess
from rasbot.catalog import (
    EMPTY,
    Catalog,
    Known,
    Parsed,
    Problem,
    assemble,
    parse_releases,
    unknown,
)
from rasbot.catalogstore import CatalogStore, StoredCatalog
from rasbot.github import Listing, Page, Source, SourceError
from rasbot.lease import Lease

log = structlog.get_logger(__name__)

#: A stored listing of at least this many characters (about a thousand releases)
#: is parsed in a child process (rasbot.catalogprocess) when there is no previous
#: parse to start from, or when at least CHILD_PARSE_RELEASES of its releases are
#: new to it.
CHILD_BUILD_CHARS = 1_000_000
CHILD_PARSE_RELEASES = 500


@dataclass(frozen=True)
class SyncResult:
    """What one refresh did."""

    ok: bool
    changed: bool
    revision: int
    changes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    error: str | None = None
    not_modified: bool = False


#: Told (trigger, result) after a refresh that changed the catalog, e.g. the audit log.
ChangeObserver = Callable[[str, SyncResult], Awaitable[None]]

#: Told (listing, catalog) after every successful refresh, e.g. to snapshot GitHub's
#: download counts, which change without changing the catalog.
ListingObserver = Callable[[Listing, Catalog], Awaitable[None]]


@dataclass
class SyncStatus:
    """What health checks and operators want to know about syncing."""

    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    retry_at: float | None = None
    refreshes: dict[str, int] = field(default_factory=dict)
    # Refreshes by outcome (ok, not_modified, failed), for the metrics.
    outcomes: dict[str, int] = field(default_factory=dict)


class Syncer:
    """Owns the served catalog and every way of refreshing it."""

    def __init__(
        self,
        source: Source,
        store: CatalogStore,
        *,
        devices: Sequence[str],
        serve_beta_drafts: bool = False,
        in_beta_dir: Callable[[str], bool] | None = None,
        on_change: ChangeObserver | None = None,
        on_listing: ListingObserver | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.catalog: Catalog = EMPTY
        self.status = SyncStatus()
        self._devices = tuple(devices)
        self._serve_beta_drafts = serve_beta_drafts
        # TODO: a file copied into the beta directory after its release was
        # published is seen at the next rebuild (a changed listing or a restart);
        # rebuild on a change of the directory once that is worth a watcher.
        self._in_beta_dir = in_beta_dir
        self._on_change = on_change
        self._on_listing = on_listing
        self._pages: tuple[Page, ...] = ()
        self._known: Known = {}
        self._in_flight: asyncio.Task[SyncResult] | None = None
        self._follow_up: asyncio.Task[None] | None = None

    async def load(self) -> Catalog:
        """Serve the stored catalog, so a restart needs no source at all."""
        # Without a previous parse a child process may load the listing itself.
        built = await self._parse(await self.store.load() if self._known else None)
        if built is None:
            return self.catalog
        stored, parsed = built
        if stored.revision < self.catalog.revision:
            # A refresh that began meanwhile swapped in a newer listing: keep it.
            return self.catalog
        self.catalog = self._assembled(stored, parsed)
        self._pages = remembered(stored.pages)
        log.info("catalog.loaded", revision=stored.revision, source=stored.source)
        return self.catalog

    async def refresh(self, trigger: str = "manual") -> SyncResult:
        """Sync now, or join the refresh already in flight."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(self._refresh(trigger))
        return await asyncio.shield(self._in_flight)

    def request_refresh(self, trigger: str) -> None:
        """Start a refresh in the background that sees everything up to now.

        A refresh already in flight may have listed the releases before the change
        that triggered this call, so another one follows it.
        """
        if self._follow_up is not None and not self._follow_up.done():
            return
        self._follow_up = asyncio.create_task(self._refresh_after(trigger))

    async def _refresh_after(self, trigger: str) -> None:
        if self._in_flight is not None and not self._in_flight.done():
            await asyncio.wait({self._in_flight})
        self._in_flight = asyncio.create_task(self._refresh(trigger))
        await asyncio.shield(self._in_flight)

    async def _refresh(self, trigger: str) -> SyncResult:
        self.status.last_attempt = datetime.now(UTC)
        self.status.refreshes[trigger] = self.status.refreshes.get(trigger, 0) + 1
        waiting = self.rate_limited_for()
        if waiting > 0:
            # Asking before the reset would only spend more of the quota, or worse
            # get the token blocked: keep serving what we have.
            return self._failed(
                SourceError(f"rate limited for {waiting:.0f} more seconds"), trigger
            )
        started = time.monotonic()
        try:
            listing = await self.source.fetch(self._pages)
            if not listing.not_modified and not listing.complete:
                listing = await self._completed(listing)
            stored = await self._store(listing)
        except (SourceError, SQLAlchemyError, OSError) as exc:
            if isinstance(exc, SourceError) and exc.relist:
                self._pages = ()
            return self._failed(exc, trigger)

        previous = self.catalog
        self._pages = remembered(listing.pages)
        if stored.revision != previous.revision or previous is EMPTY:
            self.catalog = await self._build(stored)
        else:
            self.catalog = _touched(previous, stored)
        changes = describe_changes(previous, self.catalog)
        self.status.last_success = stored.fetched_at
        self.status.last_error = None
        self.status.consecutive_failures = 0
        self.status.retry_at = None
        self._count("not_modified" if listing.not_modified else "ok")
        log.info(
            "sync.done",
            trigger=trigger,
            releases=listing.count,
            not_modified=listing.not_modified,
            revision=stored.revision,
            changes=len(changes),
            seconds=round(time.monotonic() - started, 3),
        )
        result = SyncResult(
            ok=True,
            changed=bool(changes),
            revision=stored.revision,
            changes=changes,
            problems=self.catalog.problems,
            not_modified=listing.not_modified,
        )
        if not listing.not_modified:
            await self._observe_listing(trigger, listing)
        if changes:
            await self._notify(trigger, result)
        return result

    async def _store(self, listing: Listing) -> StoredCatalog:
        """Persist what the source said: a touch when nothing changed."""
        if listing.not_modified:
            return await self.store.touch()
        return await self.store.save(listing, self.source.description)

    async def _completed(self, listing: Listing) -> Listing:
        # Pages answered 304 among changed ones: their releases are stored.
        stored = await self.store.load()
        held = {page.url: page for page in stored.pages} if stored else {}
        pages = []
        for page in listing.pages:
            if page.packed is None:
                found = held.get(page.url)
                if found is None or found.etag != page.etag:
                    raise SourceError(
                        "stored pages disagree; the next sync lists all", relist=True
                    )
                page = found
            pages.append(page)
        return Listing(tuple(pages))

    async def _observe_listing(self, trigger: str, listing: Listing) -> None:
        if self._on_listing is None:
            return
        try:
            await self._on_listing(listing, self.catalog)
        except Exception as exc:
            log.error("sync.observer_failed", trigger=trigger, exc_info=exc)

    def _count(self, outcome: str) -> None:
        self.status.outcomes[outcome] = self.status.outcomes.get(outcome, 0) + 1

    async def _notify(self, trigger: str, result: SyncResult) -> None:
        # The catalog is already swapped in: an observer's failure must not undo it.
        if self._on_change is None:
            return
        try:
            await self._on_change(trigger, result)
        except Exception as exc:
            log.error("sync.observer_failed", trigger=trigger, exc_info=exc)

    def rate_limited_for(self) -> float:
        """Seconds until GitHub will answer again; 0 when it will now."""
        now = time.time()
        retry_at = self.status.retry_at or 0.0
        limit = self.source.rate_limit
        if limit.remaining == 0 and limit.reset_at is not None:
            retry_at = max(retry_at, limit.reset_at)
        return max(0.0, retry_at - now)

    def _failed(self, exc: Exception, trigger: str) -> SyncResult:
        reason = exc.reason if isinstance(exc, SourceError) else type(exc).__name__
        self.status.last_error = reason
        self.status.consecutive_failures += 1
        self._count("failed")
        if isinstance(exc, SourceError) and exc.retry_at is not None:
            self.status.retry_at = exc.retry_at
        log.warning("sync.failed", trigger=trigger, error=reason)
        return SyncResult(
            False, False, self.catalog.revision, (), self.catalog.problems, reason
        )

    async def _build(self, stored: StoredCatalog) -> Catalog:
        """The catalog of ``stored``."""
        built = await self._parse(stored)
        assert built is not None  # ``stored`` is given
        return self._assembled(*built)

    async def _parse(self, stored: StoredCatalog | None) -> catalogprocess.Built:
        """``stored`` (None: the stored listing) with its releases parsed.

        A child process parses a large listing when many of its releases are new
        to this process (all of them, at a start); otherwise they are parsed here.
        """
        if await self._worth_a_child(stored):
            job = catalogprocess.Job(
                str(self.store.database_url),
                self._devices,
                self._serve_beta_drafts,
                self._in_beta_dir,
            )
            done, built = await catalogprocess.build(job)
            # Another process may have stored a newer listing meanwhile: parse ours.
            if done and (stored is None or _revision(built) == stored.revision):
                return built
        if stored is None:
            stored = await self.store.load()
            if stored is None:
                return None
        return stored, await self._parsed_here(stored)

    async def _worth_a_child(self, stored: StoredCatalog | None) -> bool:
        if self.store.database_url is None:
            return False
        if (await self.store.size_chars() or 0) < CHILD_BUILD_CHARS:
            return False
        if stored is None or not self._known:
            return True
        new = await asyncio.to_thread(unknown, stored.releases(), self._known)
        return new >= CHILD_PARSE_RELEASES

    async def _parsed_here(self, stored: StoredCatalog) -> list[Parsed]:
        # Parsing thousands of YAML bodies takes a while: keep the loop answering.
        return await asyncio.to_thread(
            parse_releases,
            stored.releases(),
            devices=self._devices,
            serve_beta_drafts=self._serve_beta_drafts,
            in_beta_dir=self._in_beta_dir,
            known=self._known,
        )

    def _assembled(self, stored: StoredCatalog, parsed: list[Parsed]) -> Catalog:
        # The next build parses only what differs from this one.
        self._known = {item.key: item for item in parsed}
        releases, problems = assemble(parsed)
        return Catalog(
            releases, problems, stored.revision, stored.fetched_at, stored.changed_at
        )

    def next_delay(self, poll_seconds: float) -> float:
        """Seconds to the next poll: the interval, a rate-limit reset or back-off."""
        status = self.status
        waiting = self.rate_limited_for()
        if waiting > 0:
            return max(1.0, waiting)
        if status.consecutive_failures == 0:
            return poll_seconds
        backoff: float = min(
            poll_seconds, 5.0 * 2.0 ** (status.consecutive_failures - 1)
        )
        return backoff * random.uniform(0.5, 1.0)  # noqa: S311  (jitter, not crypto)

    async def follow_store(self) -> bool:
        """Swap in a newer catalog that another process stored; True if one was."""
        if self._in_flight is not None and not self._in_flight.done():
            # The refresh under way swaps in what it stores: building the same
            # listing alongside it would only double the memory a build takes.
            return False
        try:
            revision = await self.store.revision()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("catalog.revision_check_failed", error=str(exc))
            return False
        if revision is None or revision <= self.catalog.revision:
            return False
        await self.load()
        return True

    async def follow_forever(self, seconds: float) -> None:
        """Check for a catalog stored by another process every ``seconds``."""
        while True:
            await asyncio.sleep(seconds)
            await self.follow_store()

    async def poll_forever(self, poll_seconds: float, lease: Lease) -> None:
        """Refresh every ``poll_seconds`` while this process holds ``lease``.

        Processes sharing a database share one poller: the others follow the
        stored catalog, and one of them takes over when the holder's lease runs
        out. The lease is renewed every third of its time, polls or not.
        """
        next_poll = 0.0
        while True:
            was_held = lease.held
            if await lease.acquire():
                if not was_held or time.monotonic() >= next_poll:
                    await self.refresh("poll")
                    next_poll = time.monotonic() + self.next_delay(poll_seconds)
                wait = next_poll - time.monotonic()
            else:
                wait = lease.seconds / 3
            await asyncio.sleep(max(0.05, min(wait, lease.seconds / 3)))

    async def aclose(self) -> None:
        """Wait for a refresh in flight, then close the source."""
        if self._in_flight is not None and not self._in_flight.done():
            self._in_flight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._in_flight
        await self.source.aclose()


def _revision(built: catalogprocess.Built) -> int | None:
    return None if built is None else built[0].revision


def describe_changes(old: Catalog, new: Catalog) -> tuple[str, ...]:
    """One line per release added, removed or changed between two catalogs."""
    before = {r.id: r for r in old.releases}
    after = {r.id: r for r in new.releases}
    lines = [f"added {_label(after[i])}" for i in after.keys() - before.keys()]
    lines += [f"removed {_label(before[i])}" for i in before.keys() - after.keys()]
    lines += [
        f"changed {_label(after[i])}"
        for i in after.keys() & before.keys()
        if after[i] != before[i]
    ]
    old_problems, new_problems = set(old.problems), set(new.problems)
    lines += [f"new problem: {p}" for p in new.problems if p not in old_problems]
    lines += [f"problem gone: {p}" for p in old.problems if p not in new_problems]
    return tuple(sorted(lines))


def _label(release: Any) -> str:
    return f"{release.name} ({release.channel})"


def _touched(catalog: Catalog, stored: StoredCatalog) -> Catalog:
    """``catalog``'s releases, with the revision and times of ``stored``."""
    return Catalog(
        catalog.releases,
        catalog.problems,
        stored.revision,
        stored.fetched_at,
        stored.changed_at,
    )


def remembered(pages: Sequence[Page]) -> tuple[Page, ...]:
    """Pages as kept between refreshes: enough to ask for them conditionally."""
    # Thousands of raw releases would stay in memory for nothing: the catalog is
    # built, and a page that changes comes back whole.
    return tuple(page.without_releases() for page in pages)
