"""`stats [days]` and `graph ...` in chat, and `rasbot stats` on the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from rasbot import cli, db
from rasbot.chat.dispatcher import Dispatcher
from rasbot.chat.registry import Caller
from rasbot.chat.replies import Image, Reply, Table
from rasbot.chat.stats import period_days
from rasbot.chat.terminal import render
from rasbot.services import Services
from rasbot.settings import Settings
from tests.statsdata import check, insert, install

VISITOR = Caller("slack:U999", is_admin=False)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def svc(make_settings: Callable[..., Settings]) -> AsyncIterator[Services]:
    """Opened services with the test history and a few recent requests."""
    services = Services.build(make_settings())
    await services.open()
    await services.syncer.refresh("test")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    checks = [
        check(hour_ago, "a", "1.7.1.123-e23a7eef"),
        check(hour_ago, "b", "1.6.2"),
        check(hour_ago - timedelta(days=3), "c", "1.6.2"),
    ]
    await insert(services.engine, db.update_checks, checks)
    await insert(
        services.engine, db.installs, [install(hour_ago, "osx", "RPi2", "::1")]
    )
    yield services
    await services.close()


async def say(svc: Services, text: str) -> Reply:
    """Anyone may ask for statistics: nothing here changes anything."""
    return await Dispatcher(svc).run(text, VISITOR)


async def test_stats_gives_active_devices_versions_and_installs(svc: Services) -> None:
    reply = await say(svc, "stats")

    assert reply.ok
    active, versions = [p for p in reply.parts if isinstance(p, Table)]
    assert active.rows == (
        ("last 24 hours", "2"),
        ("last 7 days", "3"),
        ("last 30 days", "3"),
    )
    assert versions.rows == (("1.6.2", "2"), ("1.7.1", "1"))
    assert "osx 1" in render(reply)


async def test_stats_for_a_number_of_days(svc: Services) -> None:
    reply = await say(svc, "stats 2")

    assert reply.ok
    assert "last 2 days" in render(reply)


@pytest.mark.parametrize("text", ["stats 0", "graph active 9999", "graph active 200w"])
async def test_periods_out_of_range_are_refused(svc: Services, text: str) -> None:
    reply = await say(svc, text)

    assert not reply.ok
    assert "is not a period" in render(reply)


@pytest.mark.parametrize(
    "text", ["graph active", "graph versions 7", "graph installs 2w", "graph checks 1"]
)
async def test_graph_posts_a_png(svc: Services, text: str) -> None:
    reply = await say(svc, text)

    assert reply.ok
    (image,) = reply.parts
    assert isinstance(image, Image)
    assert image.png.startswith(PNG)
    assert image.filename.endswith(".png")


async def test_graph_of_a_releases_adoption(svc: Services) -> None:
    reply = await say(svc, "graph adoption 1.7.1 90")

    assert reply.ok
    (image,) = reply.parts
    assert isinstance(image, Image)
    assert image.title == "Devices on 1.7.1 since it was published, last 90 days"


async def test_graph_of_an_unknown_release_says_so(svc: Services) -> None:
    reply = await say(svc, "graph adoption 9.9.9")

    assert not reply.ok
    assert "No release `9.9.9`" in render(reply)


async def test_graph_of_an_unknown_chart_shows_the_usage(svc: Services) -> None:
    reply = await say(svc, "graph serials")

    assert not reply.ok
    assert "graph <active|versions|installs|downloads|checks|adoption" in render(reply)


def test_terminal_saves_the_chart_and_names_the_file() -> None:
    reply = Reply.say(Image("Active devices", PNG + b"rest", "active.png"))

    text = render(reply)

    path = Path(text.split("saved to ")[1].rstrip("]"))
    assert path.read_bytes() == PNG + b"rest"
    path.unlink()


@pytest.mark.parametrize(
    ("text", "days"),
    [("30", 30), ("30d", 30), ("8w", 56), ("8 W", 56), ("0", None), ("x", None)],
)
def test_periods_read_as_days(text: str, days: int | None) -> None:
    assert period_days(text) == days


# the command line


def test_cli_prints_the_top_line_numbers(
    svc: Services,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings()
    monkeypatch.setenv("RASBOT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RASBOT_RELEASES_FILE", str(settings.releases_file))

    result = CliRunner().invoke(cli.main, ["stats", "--days", "7"])

    assert result.exit_code == 0, result.output
    # In the output: log lines may be there too, when an earlier test's CLI
    # configured logging first (structlog caches its loggers).
    assert "\nusage of the last 7 days up to " in "\n" + result.output
    assert (
        "devices active: 2 in the last 24 hours, 3 in the last 7 days" in result.output
    )
    assert "versions in the field: 1.6.2 2, 1.7.1 1" in result.output
    assert "installs (distinct addresses): windows 0, linux 0, osx 1" in result.output


def test_cli_compacts_first_when_asked(
    svc: Services,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RASBOT_DATABASE_URL", make_settings().database_url)

    result = CliRunner().invoke(cli.main, ["stats", "--compact"])

    assert result.exit_code == 0, result.output
    assert "\ncompacted: " in "\n" + result.output
    assert "0 raw rows deleted" in result.output


def test_cli_refuses_a_bad_period() -> None:
    result = CliRunner().invoke(cli.main, ["stats", "--days", "0"])

    assert result.exit_code == 2
    assert "--days" in result.output
