"""`rasbot whitelist show|add|remove`: the beta whitelist from the command line."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from rasbot.cli import main
from tests.conftest import services

SERIAL = "00000000abcdef12"


@pytest.fixture
def cli(database_url: str) -> Callable[..., Result]:
    """Run ``rasbot whitelist ...`` on the test database."""
    runner = CliRunner(env={"RASBOT_DATABASE_URL": database_url})

    def run(*args: str) -> Result:
        return runner.invoke(main, ["whitelist", *args])

    return run


def test_add_then_show(cli: Callable[..., Result]) -> None:
    added = cli("add", "Alice", SERIAL.upper())

    assert added.exit_code == 0, added.output
    assert added.stdout == f"{SERIAL} whitelisted as Alice\n"
    shown = cli("show")
    assert shown.exit_code == 0
    assert shown.stdout.startswith(f"{SERIAL}  Alice  (added by cli:")
    assert f"cli:{getpass.getuser()} " in shown.stdout


def test_show_says_when_the_list_is_empty(cli: Callable[..., Result]) -> None:
    shown = cli("show")

    assert shown.exit_code == 0
    assert shown.stdout == "The beta whitelist is empty.\n"


def test_remove_needs_the_name_it_was_added_under(
    cli: Callable[..., Result],
) -> None:
    cli("add", "Alice", SERIAL)

    wrong = cli("remove", "Bob", SERIAL)
    assert wrong.exit_code == 1
    assert wrong.stderr == f"rasbot: {SERIAL} is whitelisted as Alice, not Bob\n"

    right = cli("remove", "alice", SERIAL)
    assert right.exit_code == 0
    assert right.stdout == f"{SERIAL} removed from the whitelist\n"
    assert cli("show").stdout == "The beta whitelist is empty.\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add", "Alice", "xyz"), "'xyz' is not a serial: 16 hex digits are needed"),
        (("add", " ", SERIAL), "a name is needed"),
        (("remove", "Alice", SERIAL), f"{SERIAL} is not whitelisted"),
        (("remove", "Alice", "0000"), "'0000' is not a serial"),
    ],
)
def test_refusals_exit_1_with_a_sentence(
    cli: Callable[..., Result], args: tuple[str, ...], says: str
) -> None:
    result = cli(*args)

    assert result.exit_code == 1
    assert says in result.stderr
    assert result.stdout == ""


def test_adding_twice_is_refused(cli: Callable[..., Result]) -> None:
    cli("add", "Alice", SERIAL)

    again = cli("add", "Bob", SERIAL)

    assert again.exit_code == 1
    assert f"{SERIAL} is already whitelisted as Alice" in again.stderr


def test_missing_argument_is_a_usage_error(cli: Callable[..., Result]) -> None:
    result = cli("add", "Alice")

    assert result.exit_code == 2


def test_unusable_database_is_exit_1(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    url = f"sqlite+aiosqlite:///{blocker / 'sub' / 'rasbot.db'}"

    result = CliRunner(env={"RASBOT_DATABASE_URL": url}).invoke(
        main, ["whitelist", "show"]
    )

    assert result.exit_code == 1
    assert "cannot use the database" in result.stderr
    assert "RASBOT_DATABASE_URL" in result.stderr


def test_serial_added_on_the_cli_reaches_the_running_server(
    cli: Callable[..., Result], client: TestClient
) -> None:
    query = "/update?channel=4&revision=a020d3&serial=" + SERIAL + "&version=1.7.1"
    assert "1.8.0b" not in client.get(query).text

    assert cli("add", "Alice", SERIAL).exit_code == 0
    client.portal.call(services(client).whitelist.reload)

    assert 'version="1.8.0b"' in client.get(query).text
