"""Syncing with GitHub through the stand-in: frugal, complete, never poisoned."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rasbot import catalogprocess, db, migrate, sync
from rasbot.catalog import Catalog, build_catalog
from rasbot.catalogstore import CatalogStore
from rasbot.github import (
    FileSource,
    GitHubSource,
    Listing,
    SourceError,
    trim_release,
)
from rasbot.sync import Syncer
from tests import factories
from tests.github_stub import GitHubStub

TOKEN = "ghp_syncTestToken000000000000"
PAGE_SIZE = 3


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    with GitHubStub(factories.history(), page_size=PAGE_SIZE, token=TOKEN) as stub:
        yield stub


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[Any]:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


def make_syncer(github: GitHubStub, engine: Any, **source: Any) -> Syncer:
    options = {"token": TOKEN, "timeout_seconds": 2.0, **source}
    return Syncer(
        GitHubSource(github.url, "RasPlex/RasPlex", **options),
        CatalogStore(engine),
        devices=["RPi2", "RPi", "RPi3bplus"],
    )


@pytest.fixture
async def syncer(github: GitHubStub, engine: Any) -> AsyncIterator[Syncer]:
    syncer = make_syncer(github, engine)
    yield syncer
    await syncer.aclose()


def versions(syncer: Syncer) -> list[str]:
    return [release.name for release in syncer.catalog.releases]


PAGES = -(-len(factories.history()) // PAGE_SIZE)
ALL_VERSIONS = ["1.8.0b", "1.7.1", "1.7.0-rc1", "1.6.3", "1.6.2", "1.0.3", "0.5.10"]


async def test_first_sync_reads_every_page(github: GitHubStub, syncer: Syncer) -> None:
    result = await syncer.refresh()

    assert result.ok
    assert versions(syncer) == ALL_VERSIONS
    assert github.counts.ok == PAGES
    assert "added 1.7.1 (stable)" in result.changes


async def test_steady_state_polls_cost_only_conditional_requests(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    github.reset_counters()
    polls = 5

    for _ in range(polls):
        result = await syncer.refresh("poll")
        assert result.ok and result.not_modified and not result.changed

    assert github.counts.requests == polls * PAGES
    assert github.counts.not_modified == polls * PAGES
    assert github.counts.ok == 0
    assert all("if-none-match" in r.headers for r in github.requests)


async def test_revision_stays_while_nothing_changes(
    github: GitHubStub, syncer: Syncer
) -> None:
    first = await syncer.refresh()
    again = await syncer.refresh()

    assert first.revision == again.revision == 1


async def test_published_release_shows_up_and_bumps_revision(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    github.add_release(factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z"))

    result = await syncer.refresh()

    assert result.changed and result.revision == 2
    assert "added 1.8.1 (stable)" in result.changes
    assert versions(syncer)[0] == "1.8.1"


async def test_deleted_release_disappears_after_a_complete_listing(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    github.delete_release("1.7.1")
    github.fail(502, page=2, times=1)

    failed = await syncer.refresh()
    assert not failed.ok
    assert "1.7.1" in versions(syncer)

    result = await syncer.refresh()
    assert result.ok
    assert "1.7.1" not in versions(syncer)
    assert "removed 1.7.1 (stable)" in result.changes


async def test_edited_body_shows_up_at_next_sync(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    body = factories.body("prerelease", ["RPi", "RPi2"], "1.7.1", ["Pulled"])
    github.edit_release("1.7.1", body=body)

    result = await syncer.refresh()

    assert "changed 1.7.1 (prerelease)" in result.changes
    [release] = [r for r in syncer.catalog.releases if r.name == "1.7.1"]
    assert release.channel == "prerelease"


async def test_release_published_before_its_assets_serves_what_exists(
    github: GitHubStub, syncer: Syncer
) -> None:
    early = factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z")
    complete_assets = early["assets"]
    early["assets"] = [a for a in complete_assets if "RPi2" not in a["name"]]
    github.add_release(early)

    await syncer.refresh()
    release = syncer.catalog.by_tag("1.8.1")
    assert release is not None
    assert set(release.update) == {"RPi"}
    assert any(
        p.release == "1.8.1" and p.device == "RPi2" for p in syncer.catalog.problems
    )

    github.edit_release("1.8.1", assets=complete_assets)
    result = await syncer.refresh()
    release = syncer.catalog.by_tag("1.8.1")
    assert release is not None and set(release.update) == {"RPi", "RPi2"}
    assert any(line.startswith("problem gone: 1.8.1") for line in result.changes)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_mid_pagination_changes_nothing(
    github: GitHubStub, syncer: Syncer, engine: Any, status: int
) -> None:
    await syncer.refresh()
    before = await stored_pages(engine)
    github.add_release(factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z"))
    github.fail(status, page=2)

    result = await syncer.refresh()

    assert not result.ok and str(status) in (result.error or "")
    assert versions(syncer) == ALL_VERSIONS
    assert await stored_pages(engine) == before
    assert syncer.status.consecutive_failures == 1


@pytest.mark.parametrize("kind", ["truncated", "cut", "html", "object", "deep"])
async def test_garbage_page_changes_nothing(
    github: GitHubStub, syncer: Syncer, kind: str
) -> None:
    await syncer.refresh()
    github.delete_release("1.6.2")
    github.garbage(kind, page=2)

    result = await syncer.refresh()

    assert not result.ok
    assert versions(syncer) == ALL_VERSIONS


async def test_timeout_changes_nothing(github: GitHubStub, engine: Any) -> None:
    syncer = make_syncer(github, engine, timeout_seconds=0.3)
    await syncer.refresh()
    github.delete_release("1.6.2")
    github.delay(1.0, page=2, times=1)

    result = await syncer.refresh()
    await syncer.aclose()

    assert not result.ok and "Timeout" in (result.error or "")
    assert versions(syncer) == ALL_VERSIONS


async def test_first_sync_failing_leaves_catalog_empty_not_partial(
    github: GitHubStub, syncer: Syncer, engine: Any
) -> None:
    github.fail(500, page=3)

    result = await syncer.refresh()

    assert not result.ok
    assert syncer.catalog.releases == ()
    assert await stored_pages(engine) is None


async def test_rate_limit_pauses_until_reset_without_asking(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    github.rate_limit(reset_in=120)

    limited = await syncer.refresh()
    github.reset_counters()
    later = [await syncer.refresh("webhook") for _ in range(3)]

    assert not limited.ok and "rate limit" in (limited.error or "")
    assert all(not r.ok for r in later)
    assert github.counts.requests == 0
    assert 100 < syncer.rate_limited_for() <= 121
    assert syncer.next_delay(300) > 100
    assert versions(syncer) == ALL_VERSIONS


async def test_secondary_rate_limit_honours_retry_after(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    github.rate_limit(secondary=True, retry_after=90)

    result = await syncer.refresh()
    github.reset_counters()
    await syncer.refresh()

    assert not result.ok
    assert github.counts.requests == 0
    assert 80 < syncer.rate_limited_for() <= 91


async def test_back_off_grows_with_failures_and_resets(
    github: GitHubStub, syncer: Syncer
) -> None:
    github.fail(500)
    delays = []
    for _ in range(4):
        await syncer.refresh()
        delays.append(syncer.next_delay(300))
    github.clear_faults()
    await syncer.refresh()

    assert delays[0] <= 5 and 20 <= delays[3] <= 40
    assert syncer.next_delay(300) == 300


async def test_concurrent_triggers_share_one_listing(
    github: GitHubStub, syncer: Syncer
) -> None:
    github.delay(0.2, page=1, times=1)

    results = await asyncio.gather(*(syncer.refresh(f"t{i}") for i in range(20)))

    first_pages = [r for r in github.requests if "&page=" not in r.path]
    assert len(first_pages) == 1
    assert len({id(r) for r in results}) == 1 and results[0].ok


async def test_webhook_refresh_after_one_in_flight_sees_the_new_release(
    github: GitHubStub, syncer: Syncer
) -> None:
    github.delay(0.3, page=1, times=1)
    in_flight = asyncio.create_task(syncer.refresh("poll"))
    await asyncio.sleep(0.1)
    github.add_release(factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z"))

    syncer.request_refresh("webhook")
    await in_flight
    await wait_for(lambda: "1.8.1" in versions(syncer))


async def test_restart_serves_stored_catalog_while_github_is_down(
    github: GitHubStub, syncer: Syncer, engine: Any
) -> None:
    await syncer.refresh()
    github.fail(503)
    restarted = make_syncer(github, engine)

    await restarted.load()
    result = await restarted.refresh()
    await restarted.aclose()

    assert not result.ok
    assert versions(restarted) == ALL_VERSIONS
    assert restarted.catalog.revision == 1


async def test_stored_etags_make_the_first_poll_after_restart_conditional(
    github: GitHubStub, syncer: Syncer, engine: Any
) -> None:
    await syncer.refresh()
    github.reset_counters()
    restarted = make_syncer(github, engine)

    await restarted.load()
    result = await restarted.refresh()
    await restarted.aclose()

    assert result.not_modified
    assert github.counts.ok == 0


async def test_token_is_stored_nowhere(syncer: Syncer, engine: Any) -> None:
    await syncer.refresh()

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(db.catalog_state))).all()
        pages = await conn.scalar(sa.select(db.catalog_listing.c.pages))

    assert rows and all(TOKEN not in str(value) for row in rows for value in row)
    assert pages and TOKEN not in zlib.decompress(pages).decode()


async def test_pagination_leaving_the_api_host_is_refused(
    github: GitHubStub, engine: Any
) -> None:
    # The API base names the host differently from the Link URLs GitHub answers.
    alias = github.url.replace("127.0.0.1", "localhost")
    syncer = Syncer(
        GitHubSource(alias, "RasPlex/RasPlex", token=TOKEN, timeout_seconds=2),
        CatalogStore(engine),
        devices=["RPi"],
    )

    result = await syncer.refresh()
    await syncer.aclose()

    assert not result.ok and "pagination left" in (result.error or "")
    assert github.token_leaks == []
    assert len(github.requests) == 1


async def stored_pages(engine: Any) -> str | None:
    async with engine.connect() as conn:
        found: bytes | None = await conn.scalar(sa.select(db.catalog_listing.c.pages))
    return None if found is None else zlib.decompress(found).decode()


async def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_unchanged_listing_only_touches_the_stored_catalog(
    github: GitHubStub, syncer: Syncer, engine: Any
) -> None:
    await syncer.refresh()
    pages_before, fetched_before = await stored_state(engine)

    await asyncio.sleep(1.1)  # MySQL's DATETIME keeps whole seconds
    result = await syncer.refresh()

    pages_after, fetched_after = await stored_state(engine)
    assert result.not_modified
    assert pages_after == pages_before
    assert fetched_after > fetched_before


async def test_change_on_a_later_page_keeps_the_unchanged_pages(
    github: GitHubStub, syncer: Syncer
) -> None:
    await syncer.refresh()
    body = factories.body("prerelease", ["RPi"], "0.5.10", ["Demoted"])
    github.edit_release("0.5.10", body=body)
    github.reset_counters()

    result = await syncer.refresh()

    assert result.ok and "changed 0.5.10 (prerelease)" in result.changes
    assert versions(syncer) == ALL_VERSIONS
    assert github.counts.not_modified == PAGES - 1


async def test_after_restart_a_partial_change_reads_the_rest_from_the_store(
    github: GitHubStub, syncer: Syncer, engine: Any
) -> None:
    await syncer.refresh()
    restarted = make_syncer(github, engine)
    await restarted.load()
    body = factories.body("prerelease", ["RPi"], "0.5.10", ["Demoted"])
    github.edit_release("0.5.10", body=body)

    result = await restarted.refresh()
    await restarted.aclose()

    assert result.ok
    assert versions(restarted) == ALL_VERSIONS


async def test_raw_releases_are_not_kept_in_memory(syncer: Syncer) -> None:
    await syncer.refresh()

    assert syncer._pages and all(page.releases is None for page in syncer._pages)


async def stored_state(engine: Any) -> tuple[str, Any]:
    state, listing = db.catalog_state, db.catalog_listing
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(listing.c.pages, state.c.fetched_at).join_from(
                    listing, state, listing.c.name == state.c.name
                )
            )
        ).one()
    return zlib.decompress(row.pages).decode(), row.fetched_at


# --- memory: large catalogs built in a child process, files read a release at a time


async def test_a_large_catalog_is_built_in_a_child_process_the_same(
    github: GitHubStub, syncer: Syncer, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await syncer.refresh()
    here = make_syncer(github, engine)
    await here.load()
    built: list[object] = []
    real_build = catalogprocess.build

    async def counted(job: catalogprocess.Job) -> tuple[bool, catalogprocess.Built]:
        found = await real_build(job)
        built.append(found)
        return found

    monkeypatch.setattr(sync, "CHILD_BUILD_CHARS", 0)
    monkeypatch.setattr(catalogprocess, "build", counted)
    child = make_syncer(github, engine)
    await child.load()
    await here.aclose()
    await child.aclose()

    assert built and built[0][0] is True
    assert child.catalog == here.catalog
    assert child._pages == here._pages


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[catalogprocess.Job]:
    """The jobs of the child processes started, with every listing large enough."""
    jobs: list[catalogprocess.Job] = []
    real_build = catalogprocess.build

    async def counted(job: catalogprocess.Job) -> tuple[bool, catalogprocess.Built]:
        jobs.append(job)
        return await real_build(job)

    monkeypatch.setattr(sync, "CHILD_BUILD_CHARS", 0)
    monkeypatch.setattr(catalogprocess, "build", counted)
    return jobs


def built_afresh(github: GitHubStub) -> tuple[Any, Any]:
    return build_catalog(github.releases, devices=["RPi2", "RPi", "RPi3bplus"])


async def test_after_a_child_build_a_change_is_parsed_here_and_alone(
    github: GitHubStub,
    syncer: Syncer,
    engine: Any,
    children: list[catalogprocess.Job],
) -> None:
    await syncer.refresh()
    restarted = make_syncer(github, engine)
    await restarted.load()
    before = {release.name: release for release in restarted.catalog.releases}
    body = factories.body("prerelease", ["RPi", "RPi2"], "1.7.1", ["Pulled"])
    github.edit_release("1.7.1", body=body)
    github.edit_release("1.6.3", draft=True)

    result = await restarted.refresh()
    await restarted.aclose()

    # The first sync's and the start's child; none for the change.
    assert len(children) == 2 and result.ok
    after = {release.name: release for release in restarted.catalog.releases}
    assert sorted(before.keys() - after.keys()) == ["1.6.3"]
    kept = [name for name in after if after[name] is before[name]]
    assert sorted(kept) == sorted(set(after) - {"1.7.1"})
    catalog = restarted.catalog
    assert (catalog.releases, catalog.problems) == built_afresh(github)


async def test_many_changed_releases_are_parsed_in_a_child_again(
    github: GitHubStub,
    syncer: Syncer,
    engine: Any,
    children: list[catalogprocess.Job],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await syncer.refresh()
    monkeypatch.setattr(sync, "CHILD_PARSE_RELEASES", 3)
    restarted = make_syncer(github, engine)
    await restarted.load()
    for version in ("1.7.1", "1.6.3", "1.6.2"):
        body = factories.body("stable", ["RPi", "RPi2"], version, ["Rebuilt"])
        github.edit_release(version, body=body)

    result = await restarted.refresh()
    await restarted.aclose()

    # The first sync's, the start's and the change's child.
    assert len(children) == 3 and result.ok
    catalog = restarted.catalog
    assert (catalog.releases, catalog.problems) == built_afresh(github)


async def test_a_load_that_ends_after_a_newer_refresh_keeps_the_newer_catalog(
    github: GitHubStub, syncer: Syncer, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Following another process's listing, a load may still be reading it when a
    # refresh of this process swaps in a newer one.
    await syncer.refresh()
    other = make_syncer(github, engine)
    github.add_release(factories.release(30, "1.9.0", published="2019-01-01T00:00:00Z"))
    await other.refresh()
    await other.aclose()
    loaded = asyncio.Event()
    release = asyncio.Event()
    real_load = syncer.store.load

    async def held_load() -> Any:
        stored = await real_load()
        loaded.set()
        await release.wait()
        return stored

    monkeypatch.setattr(syncer.store, "load", held_load)
    following = asyncio.create_task(syncer.follow_store())
    await loaded.wait()
    monkeypatch.setattr(syncer.store, "load", real_load)
    github.add_release(factories.release(31, "1.9.1", published="2019-02-01T00:00:00Z"))
    result = await syncer.refresh()
    release.set()
    await following

    assert result.revision == 3
    assert syncer.catalog.revision == 3
    assert syncer.catalog.by_tag("1.9.1") is not None


async def test_a_listing_partly_answered_304_is_observed_whole(
    github: GitHubStub, engine: Any
) -> None:
    seen: list[int] = []

    async def observe(listing: Listing, catalog: Catalog) -> None:
        seen.append(sum(1 for _ in listing.releases()))

    syncer = Syncer(
        GitHubSource(github.url, "RasPlex/RasPlex", token=TOKEN),
        CatalogStore(engine),
        devices=["RPi2", "RPi", "RPi3bplus"],
        on_listing=observe,
    )
    await syncer.refresh()
    github.reset_counters()
    [edited] = [r for r in github.releases if r["tag_name"] == "0.5.10"]
    edited["assets"][0]["download_count"] += 1
    github.edit_release("0.5.10", assets=edited["assets"])

    await syncer.refresh()
    await syncer.aclose()

    assert github.counts.not_modified >= 1
    assert seen == [len(factories.history())] * 2


@pytest.mark.parametrize(
    "blob",
    [
        zlib.compress(b'{"a": 1}'),
        zlib.compress(b'[{"url": "x", "releases": [1, 2'),
        zlib.compress(b'[{"releases": []}]'),
        zlib.compress(b"[1, 2]")[:-3],
        b"not compressed",
    ],
    ids=["object", "cut", "no url", "truncated", "garbage"],
)
async def test_an_unreadable_stored_listing_is_served_as_none_and_listed_again(
    github: GitHubStub, syncer: Syncer, engine: Any, blob: bytes
) -> None:
    await syncer.refresh()
    async with engine.begin() as conn:
        await conn.execute(sa.update(db.catalog_listing).values(pages=blob))
    restarted = make_syncer(github, engine)

    stored = await CatalogStore(engine).load()
    await restarted.load()
    github.edit_release("0.5.10", body=factories.body("stable", ["RPi"], "0.5.10", []))
    edited = await syncer.refresh()
    listed = await syncer.refresh()
    await restarted.aclose()

    assert stored is not None and stored.pages == ()
    assert restarted.catalog.releases == ()
    assert not edited.ok and "lists all" in (edited.error or "")
    assert listed.ok and versions(syncer) == ALL_VERSIONS


async def test_a_check_only_this_process_has_keeps_the_build_here(
    github: GitHubStub, syncer: Syncer, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await syncer.refresh()
    monkeypatch.setattr(sync, "CHILD_BUILD_CHARS", 0)
    restarted = Syncer(
        GitHubSource(github.url, "RasPlex/RasPlex", token=TOKEN),
        CatalogStore(engine),
        devices=["RPi2", "RPi", "RPi3bplus"],
        in_beta_dir=lambda name: False,
    )

    await restarted.load()
    await restarted.aclose()

    assert versions(restarted) == ALL_VERSIONS


@pytest.mark.parametrize(
    "text",
    [
        '[{"id": 1, "author": {"login": "x"}}, {"id": 2}]',
        ' \n[ {"id":1} ,{"id":2}\n]\n',
    ],
)
async def test_a_releases_file_is_read_as_json_loads_reads_it(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "releases.json"
    path.write_text(text)

    listing = await FileSource(path).fetch(())

    assert list(listing.releases()) == [trim_release(r) for r in json.loads(text)]


async def test_a_long_releases_file_is_held_in_pages_until_it_changes(
    tmp_path: Path, engine: Any
) -> None:
    path = tmp_path / "releases.json"
    raw = [{"id": n, "name": f"1.{n}.0", "assets": []} for n in range(250)]
    path.write_text(json.dumps(raw))
    source = FileSource(path)
    store = CatalogStore(engine)

    listing = await source.fetch(())
    stored = await store.save(listing, source.description)
    again = await source.fetch(sync.remembered(listing.pages))
    path.write_text(json.dumps(raw[:-1]))
    changed = await source.fetch(sync.remembered(listing.pages))
    loaded = await store.load()

    assert [page.count for page in listing.pages] == [100, 100, 50]
    assert list(listing.releases()) == [trim_release(r) for r in raw]
    assert again.not_modified and not again.complete
    assert not changed.not_modified and changed.count == 249
    assert loaded is not None and stored.revision == loaded.revision == 1
    assert [page.count for page in loaded.pages] == [100, 100, 50]
    assert [r for p in loaded.pages for r in p.releases or ()] == [*listing.releases()]


@pytest.mark.parametrize("text", ["{}", "[1]", '[{"id": 1}] x', '[{"id": 1},]', "["])
async def test_a_releases_file_that_is_no_array_of_releases_fails(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "releases.json"
    path.write_text(text)

    with pytest.raises(SourceError):
        await FileSource(path).fetch(())


async def test_a_first_listing_another_process_stored_meanwhile_is_updated(
    github: GitHubStub, engine: Any
) -> None:
    # Workers or hosts started together on an empty database each store a first
    # listing: both find no row, and the second to write finds the first's.
    source = GitHubSource(github.url, "RasPlex/RasPlex", token=TOKEN)
    listing = await source.fetch(())
    await source.aclose()
    store = CatalogStore(engine)
    now = datetime.now(UTC)

    async with engine.connect() as other:
        await other.begin()
        await other.execute(
            sa.insert(db.catalog_state).values(
                name="main",
                revision=1,
                digest="other",
                source="github",
                fetched_at=now,
                changed_at=now,
            )
        )
        await other.execute(
            sa.insert(db.catalog_listing).values(
                name="main", chars=2, pages=zlib.compress(b"[]")
            )
        )
        saving = asyncio.create_task(store.save(listing, "github"))
        await asyncio.sleep(0.5)  # until it waits for the rows written here
        await other.commit()
    saved = await saving
    stored = await store.load()

    assert saved.revision == 2
    assert stored is not None and stored.revision == 2
    assert [r for p in stored.pages for r in p.releases or ()] == [*listing.releases()]
