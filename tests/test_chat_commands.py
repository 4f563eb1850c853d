"""Every chat command through the platform-neutral command layer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rasbot import db
from rasbot.chat import dispatcher
from rasbot.chat.dispatcher import Dispatcher
from rasbot.chat.families import default_registry
from rasbot.chat.registry import Caller, Context, Family
from rasbot.chat.replies import Reply, Table
from rasbot.chat.terminal import render
from rasbot.services import Services
from rasbot.settings import Settings
from tests import factories

ADMIN = Caller("slack:U123", is_admin=True)
VISITOR = Caller("slack:U999", is_admin=False)
SERIAL = "00000000ABCDEF12"
SEPTEMBER = "2017-09-01T10:00:00Z"


def publish(releases_file: Path, newest: dict[str, Any] | None) -> None:
    """Publish ``newest`` above the test history; None deletes the listing."""
    if newest is None:
        releases_file.unlink()
    else:
        write_listing(releases_file, [newest, *factories.history()])


def write_listing(releases_file: Path, listing: list[dict[str, Any]]) -> None:
    releases_file.write_text(json.dumps(listing))


def broken_release() -> dict[str, Any]:
    """1.7.2 whose RPi2 files were never uploaded."""
    broken = factories.release(10, "1.7.2", published=SEPTEMBER)
    broken["assets"] = [a for a in broken["assets"] if "RPi2" not in a["name"]]
    return broken


@pytest.fixture
async def svc(make_settings: Callable[..., Settings]) -> AsyncIterator[Services]:
    """Opened services (no background work) with the test history synced."""
    services = Services.build(make_settings(admins="U123"))
    await services.open()
    await services.syncer.refresh("test")
    yield services
    await services.close()


class LogRecorder:
    """Stands in for a module's structlog logger and keeps what it is told."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.logged.append((level, event, fields))

        return log

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for _, event, fields in self.logged if event == name]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    """The dispatcher's log, whatever structlog's configuration (the CLI's caches)."""
    recorder = LogRecorder()
    monkeypatch.setattr(dispatcher, "log", recorder)
    return recorder


async def say(svc: Services, text: str, caller: Caller = ADMIN) -> tuple[Reply, str]:
    """Run ``text`` as ``caller``; the reply and its terminal rendering."""
    reply = await Dispatcher(svc).run(text, caller)
    return reply, render(reply)


def tables(reply: Reply) -> list[Table]:
    return [part for part in reply.parts if isinstance(part, Table)]


async def audit_rows(svc: Services) -> list[dict[str, Any]]:
    async with svc.engine.connect() as conn:
        result = await conn.execute(sa.select(db.audit_log).order_by(db.audit_log.c.id))
        return [dict(row._mapping) for row in result]


# releases


async def test_releases_lists_each_channel_with_utc_minutes(svc: Services) -> None:
    reply, text = await say(svc, "releases")

    assert reply.ok
    stable, prerelease, beta = tables(reply)
    assert stable.title == "stable (5)"
    assert stable.columns == ("version", "published", "devices", "problems")
    assert stable.rows[0] == ("1.7.1", "2017-07-01 10:00 UTC", "RPi2, RPi", "0")
    assert [row[0] for row in prerelease.rows] == ["1.7.0-rc1"]
    assert beta.rows[0][2] == "RPi2, RPi, RPi3bplus"
    assert "Catalog revision 1" in text


async def test_releases_counts_problems_per_release(
    svc: Services, releases_file: Path
) -> None:
    publish(releases_file, broken_release())
    await svc.syncer.refresh("test")

    reply, _ = await say(svc, "catalog")

    assert tables(reply)[0].rows[0] == ("1.7.2", "2017-09-01 10:00 UTC", "RPi", "2")


async def test_releases_without_a_catalog_says_how_to_get_one(
    make_settings: Callable[..., Settings],
) -> None:
    services = Services.build(make_settings())
    await services.open()
    try:
        reply, text = await say(services, "releases")
    finally:
        await services.close()

    assert not reply.ok
    assert "`refresh`" in text


# refresh


async def test_refresh_says_what_changed(svc: Services, releases_file: Path) -> None:
    publish(releases_file, factories.release(10, "1.7.2", published=SEPTEMBER))

    reply, text = await say(svc, "update releases")

    assert reply.ok
    assert "catalog revision 2" in text
    assert "added 1.7.2 (stable)" in text


async def test_refresh_without_changes_says_so(svc: Services) -> None:
    reply, text = await say(svc, "refresh")

    assert reply.ok
    assert "nothing changed" in text


async def test_failed_refresh_says_why_and_keeps_the_catalog(
    svc: Services, releases_file: Path
) -> None:
    publish(releases_file, None)

    reply, text = await say(svc, "refresh")

    assert not reply.ok
    assert "Refresh failed: cannot read" in text
    assert "unchanged" in text
    assert len(svc.syncer.catalog.releases) == 7


async def test_a_sync_that_changes_the_catalog_is_audited(
    svc: Services, releases_file: Path
) -> None:
    publish(releases_file, factories.release(10, "1.7.2", published=SEPTEMBER))

    await svc.syncer.refresh("poll")
    await svc.syncer.refresh("poll")  # nothing changes: nothing is logged

    syncs = [r for r in await audit_rows(svc) if r["action"] == "sync"]
    assert [r["actor"] for r in syncs] == ["sync:test", "sync:poll"]
    assert syncs[-1]["detail"] == "revision 2: added 1.7.2 (stable)"


# problems


async def test_problems_lists_each_with_its_reason(
    svc: Services, releases_file: Path
) -> None:
    publish(releases_file, broken_release())
    await svc.syncer.refresh("test")

    reply, _ = await say(svc, "problems")

    (found,) = tables(reply)
    assert found.columns == ("release", "device", "package", "reason")
    assert [row[:3] for row in found.rows] == [
        ("1.7.2", "RPi2", "install"),
        ("1.7.2", "RPi2", "update"),
    ]
    assert "is not among the release's uploaded assets" in found.rows[0][3]


async def test_no_problems_is_said_plainly(svc: Services) -> None:
    reply, text = await say(svc, "problems")

    assert reply.ok
    assert text.startswith("No problems")


# downloads


async def add_downloads(svc: Services, release_id: int, device: str, n: int) -> None:
    row = {
        "at": datetime.now(UTC),
        "release_id": release_id,
        "version": "x",
        "asset": "x",
        "device": device,
        "kind": "update",
    }
    async with svc.engine.begin() as conn:
        await conn.execute(sa.insert(db.downloads), [row] * n)


async def test_downloads_of_one_release_per_device(svc: Services) -> None:
    await add_downloads(svc, 7, "RPi2", 3)
    await add_downloads(svc, 8, "RPi2", 5)  # another release: not counted

    reply, _ = await say(svc, "downloads 1.7.1")

    (counts,) = tables(reply)
    assert counts.columns[2:] == ("GitHub install", "GitHub update", "rasbot")
    assert counts.rows == (
        ("1.7.1", "RPi", "42", "42", "0"),
        ("1.7.1", "RPi2", "42", "42", "3"),
    )


async def test_downloads_shows_github_counts_of_the_last_sync(
    svc: Services, releases_file: Path
) -> None:
    # Only a count changes: the catalog is not rebuilt, the count still shows.
    listing = factories.history()
    release = next(r for r in listing if r["name"] == "1.7.1")
    for asset in release["assets"]:
        asset["download_count"] = 1000 + asset["id"] % 100
    write_listing(releases_file, listing)
    await svc.syncer.refresh("test")

    reply, text = await say(svc, "downloads 1.7.1")

    assert tables(reply)[0].rows == (
        ("1.7.1", "RPi", "1000", "1001", "0"),
        ("1.7.1", "RPi2", "1002", "1003", "0"),
    )
    assert "as of the sync at 20" in text


async def test_downloads_of_every_release(svc: Services) -> None:
    await add_downloads(svc, 8, "RPi", 2)

    reply, _ = await say(svc, "downloads")

    rows = tables(reply)[0].rows
    assert {row[0] for row in rows} == {r.name for r in svc.syncer.catalog.releases}
    assert ("1.6.3", "RPi", "42", "42", "2") in rows


async def test_downloads_of_an_unknown_release(svc: Services) -> None:
    reply, text = await say(svc, "downloads 9.9.9")

    assert not reply.ok
    assert "No release `9.9.9`" in text


# whitelist


async def test_admin_adds_a_serial_normalised_and_audited(svc: Services) -> None:
    reply, text = await say(svc, f"whitelist add Ann Smith {SERIAL}")

    assert reply.ok
    assert SERIAL.lower() in text
    assert SERIAL.lower() in svc.whitelist
    (entry,) = await svc.whitelist.entries()
    assert (entry.name, entry.added_by) == ("Ann Smith", "slack:U123")
    last = (await audit_rows(svc))[-1]
    assert (last["actor"], last["action"]) == ("slack:U123", "whitelist add")
    assert last["detail"] == f"Ann Smith {SERIAL.lower()}"


async def test_non_admin_is_refused_politely_and_logged(
    svc: Services, logs: LogRecorder
) -> None:
    reply, text = await say(svc, f"whitelist add eve {SERIAL}", VISITOR)

    assert not reply.ok
    assert text.startswith("Sorry, `whitelist add`")
    assert await svc.whitelist.entries() == []
    last = (await audit_rows(svc))[-1]
    assert (last["actor"], last["action"]) == ("slack:U999", "refused")
    assert last["detail"] == f"whitelist add eve {SERIAL}"
    assert logs.events("chat.refused") == [
        {"command": "whitelist add", "actor": "slack:U999"}
    ]


async def test_non_admin_may_read(svc: Services) -> None:
    for command in ("releases", "whitelist", "problems", "history", "help"):
        reply, _ = await say(svc, command, VISITOR)
        assert reply.ok, command


@pytest.mark.parametrize("serial", ["1234", "00000000abcdef1g", "00000000abcdef123"])
async def test_bad_serial_is_refused_with_the_reason(
    svc: Services, serial: str
) -> None:
    reply, text = await say(svc, f"whitelist add bob {serial}")

    assert not reply.ok
    assert "16 hex digits" in text
    assert await svc.whitelist.entries() == []


async def test_whitelist_show_and_remove(svc: Services) -> None:
    await say(svc, f"whitelist add bob {SERIAL}")

    _, shown = await say(svc, "whitelist show")
    wrong, wrong_text = await say(svc, f"whitelist remove eve {SERIAL}")
    removed, _ = await say(svc, f"whitelist remove Bob {SERIAL}")

    assert "bob" in shown
    assert SERIAL.lower() in shown
    assert "slack:U123" in shown
    assert not wrong.ok
    assert "not eve" in wrong_text
    assert removed.ok
    assert await svc.whitelist.entries() == []


async def test_whitelist_add_without_a_serial_shows_the_usage(svc: Services) -> None:
    reply, text = await say(svc, "whitelist add bob")

    assert not reply.ok
    assert "`whitelist add <name> <serial>`" in text
    assert "`whitelist remove <name> <serial>`" in text


# piversion


async def test_piversion_of_a_3b_plus(svc: Services) -> None:
    reply, text = await say(svc, "piversion a020d3")

    assert reply.ok
    assert "Raspberry Pi 3 Model B+" in text
    assert ("processor", "BCM2837") in tables(reply)[0].rows
    assert "`RPi3bplus` packages from releases that declare `RPi3bplus`" in text
    assert "`RPi2` packages from the others" in text
    assert "stable 1.7.1 (RPi2)" in text
    assert "beta 1.8.0b (RPi3bplus)" in text


async def test_board_of_an_old_style_code(svc: Services) -> None:
    reply, text = await say(svc, "board 000e")

    assert reply.ok
    assert "It gets `RPi` packages." in text
    assert "stable 1.7.1 (RPi)" in text


async def test_piversion_follows_the_device_boards_setting(
    make_settings: Callable[..., Settings],
) -> None:
    services = Services.build(make_settings(device_boards="RPi4=0x11"))
    await services.open()
    try:
        _, text = await say(services, "piversion c03111")
    finally:
        await services.close()

    assert "`RPi4` packages from releases that declare `RPi4`" in text


async def test_piversion_of_something_else(svc: Services) -> None:
    reply, text = await say(svc, "piversion banana")

    assert not reply.ok
    assert "not a revision code" in text


# history


async def test_history_lists_changes_newest_first(svc: Services) -> None:
    await say(svc, f"whitelist add bob {SERIAL}")
    await say(svc, f"whitelist add eve {SERIAL.replace('A', 'C')}", VISITOR)

    reply, _ = await say(svc, "history")

    rows = tables(reply)[0].rows
    assert [(r[1], r[2]) for r in rows] == [
        ("slack:U999", "refused"),
        ("slack:U123", "whitelist add"),
        ("sync:test", "sync"),
    ]
    assert rows[0][0].endswith(" UTC")


@pytest.fixture
def record(svc: Services) -> Callable[..., Any]:
    """Write an audit entry directly, ``hours_ago``."""

    async def write(actor: str, detail: str, hours_ago: float) -> None:
        row = {
            "at": datetime.now(UTC) - timedelta(hours=hours_ago),
            "actor": actor,
            "action": "note",
            "detail": detail,
        }
        async with svc.engine.begin() as conn:
            await conn.execute(sa.insert(db.audit_log).values(**row))

    return write


async def test_history_n_since_and_search(
    svc: Services, record: Callable[..., Any]
) -> None:
    await record("terminal:ann", "old 50% off", 30)
    await record("terminal:bob", "middle", 5)
    await record("terminal:cid", "NEW", 0.5)

    last_two, _ = await say(svc, "history 2")
    recent, _ = await say(svc, "history since 2h")
    percent, _ = await say(svc, "history search 50%")
    case, _ = await say(svc, "history search new")
    _, text = await say(svc, "history search 5_")

    assert [r[1] for r in tables(last_two)[0].rows] == ["sync:test", "terminal:cid"]
    assert [r[1] for r in tables(recent)[0].rows] == ["sync:test", "terminal:cid"]
    assert [r[1] for r in tables(percent)[0].rows] == ["terminal:ann"]
    assert [r[1] for r in tables(case)[0].rows] == ["terminal:cid"]
    assert text == "No change mentions `5_`."


async def test_history_since_a_non_age(svc: Services) -> None:
    reply, text = await say(svc, "history since yesterday")

    assert not reply.ok
    assert "`history since 2h`" in text


async def test_history_clips_long_details(svc: Services) -> None:
    reply, _ = await say(svc, "history 1")

    (row,) = tables(reply)[0].rows
    assert len(row[3]) == 100
    assert row[3].endswith("…")


# help, unknown commands and failures


async def test_help_is_generated_from_the_registrations(svc: Services) -> None:
    reply, _ = await say(svc, "help")

    listed = [row[0] for row in tables(reply)[0].rows]
    assert listed == [c.usage for c in default_registry().commands]
    assert "refresh" in listed
    assert "whitelist add <name> <serial>" in listed
    admins = [row for row in tables(reply)[0].rows if row[1].endswith("(admins)")]
    assert [row[0] for row in admins] == [
        "refresh",
        "whitelist add <name> <serial>",
        "whitelist remove <name> <serial>",
        "rollback <channel> <version>",
    ]


async def test_help_about_one_command_names_its_synonyms(svc: Services) -> None:
    reply, text = await say(svc, "help refresh")

    assert reply.ok
    assert "`update releases`" in text
    assert "Admins only" in text


async def test_help_query_filters(svc: Services) -> None:
    reply, _ = await say(svc, "help whitelist")
    nothing, _ = await say(svc, "help teleport")

    assert len(tables(reply)[0].rows) == 3
    assert not nothing.ok


async def test_unknown_command_suggests_a_close_one(svc: Services) -> None:
    typo, typo_text = await say(svc, "relases")
    unknown, unknown_text = await say(svc, "make coffee")

    assert not typo.ok
    assert "Did you mean `releases`?" in typo_text
    assert not unknown.ok
    assert "`help`" in unknown_text


async def test_commands_are_case_and_space_insensitive(svc: Services) -> None:
    reply, _ = await say(svc, "  WhiteList   SHOW ")

    assert reply.ok


def failing_registry() -> Any:
    family = Family("broken")

    @family.command("explode", help="Always fails.")
    async def explode(ctx: Context) -> Reply:
        raise RuntimeError("boom in the handler")

    @family.command("lose database", help="The database goes away.")
    async def lose(ctx: Context) -> Reply:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("gone"))

    return default_registry(family)


async def test_a_failing_command_answers_briefly_and_logs_the_traceback(
    svc: Services, logs: LogRecorder
) -> None:
    reply = await Dispatcher(svc, failing_registry()).run("explode", ADMIN)

    assert not reply.ok
    assert render(reply) == (
        "`explode` failed on my side; the details are in the server log."
    )
    (failure,) = logs.events("chat.command_failed")
    assert isinstance(failure["exc_info"], RuntimeError)
    assert "boom" not in render(reply)


async def test_a_database_failure_says_to_try_again(svc: Services) -> None:
    reply = await Dispatcher(svc, failing_registry()).run("lose database", ADMIN)

    assert not reply.ok
    assert "database is not answering" in render(reply)


def test_two_commands_cannot_share_words() -> None:
    family = Family("clash")

    @family.command("releases", help="Another one.")
    async def again(ctx: Context) -> Reply:
        return Reply.say("")

    with pytest.raises(ValueError, match="'releases' is both releases and releases"):
        default_registry(family)
