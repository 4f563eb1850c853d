"""`rasbot chat`: the chat commands in a terminal, on the server's database."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rasbot.chat import terminal
from rasbot.chat.replies import Image, Reply, table
from rasbot.cli import main

SERIAL = "00000000ABCDEF12"


@pytest.fixture(autouse=True)
def server_settings(
    monkeypatch: pytest.MonkeyPatch, database_url: str, releases_file: Path
) -> None:
    """The settings a server on the test database would have."""
    monkeypatch.setenv("RASBOT_DATABASE_URL", database_url)
    monkeypatch.setenv("RASBOT_RELEASES_FILE", str(releases_file))
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")


def rasbot(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input)


@pytest.fixture
def synced() -> None:
    assert rasbot("refresh").exit_code == 0


@pytest.mark.usefixtures("synced")
def test_one_command_prints_its_answer_and_exits_0() -> None:
    result = rasbot("chat", "-c", "releases")

    assert result.exit_code == 0, result.output
    assert "stable (5)" in result.stdout
    assert "1.7.1    2017-07-01 10:00 UTC  RPi2, RPi  0" in result.stdout


@pytest.mark.usefixtures("synced")
def test_a_failed_command_exits_1_with_the_reason_on_stderr() -> None:
    unknown = rasbot("chat", "-c", "teleport")
    usage = rasbot("chat", "-c", "whitelist add bob")
    bad = rasbot("chat", "-c", "whitelist add bob 1234")

    assert unknown.exit_code == 1
    assert "I don't know `teleport`" in unknown.stderr
    assert usage.exit_code == 1
    assert "`whitelist add <name> <serial>`" in usage.stderr
    assert bad.exit_code == 1
    assert "16 hex digits" in bad.stderr


@pytest.mark.usefixtures("synced")
def test_the_terminal_user_is_an_admin_named_in_the_audit_log() -> None:
    added = rasbot("chat", "-c", f"whitelist add bob {SERIAL}")
    history = rasbot("chat", "-c", "history 1")

    assert added.exit_code == 0, added.output
    assert SERIAL.lower() in added.stdout
    assert "terminal:alice  whitelist add  bob 00000000abcdef12" in history.stdout


def test_the_terminal_caller() -> None:
    caller = terminal.terminal_caller()

    assert caller.id == "terminal:alice"
    assert caller.is_admin


@pytest.mark.usefixtures("synced")
def test_interactive_session_answers_each_line_until_quit() -> None:
    lines = ["help", "", "whitelist add bob " + SERIAL, "quit", "whitelist show"]

    result = rasbot("chat", input="\n".join(lines) + "\n")

    assert result.exit_code == 0, result.output
    assert "whitelist add <name> <serial>" in result.stdout
    assert "Whitelisted `00000000abcdef12` as bob" in result.stdout
    assert "Beta whitelist" not in result.stdout  # after `quit`


@pytest.mark.usefixtures("synced")
def test_interactive_session_ends_at_end_of_input() -> None:
    result = rasbot("chat", input="releases\nteleport\n")

    assert result.exit_code == 0
    assert "stable (5)" in result.stdout
    assert "I don't know `teleport`" in result.stdout


def test_no_catalog_yet_fails_and_says_what_to_do() -> None:
    result = rasbot("chat", "-c", "releases")

    assert result.exit_code == 1
    assert "say `refresh`" in result.stderr


def test_tables_and_images_render_as_text() -> None:
    reply = Reply.say(
        "Hello",
        table(("a", "long heading"), [("x", 1), ("yyyy", 22)], "Title"),
        Image("A chart", b"\x89PNG...", "chart.png"),
    )

    text = terminal.render(reply)

    assert text.startswith("Hello\n\nTitle\na     long heading\n----  ------------\n")
    assert "x     1\nyyyy  22\n" in text
    saved = Path(text.rsplit("saved to ", 1)[1].rstrip("]"))
    assert saved.read_bytes() == b"\x89PNG..."
    saved.unlink()


@pytest.mark.usefixtures("synced")
def test_rasbot_chat_as_a_process(database_url: str, releases_file: Path) -> None:
    env = {
        **os.environ,
        "RASBOT_DATABASE_URL": database_url,
        "RASBOT_RELEASES_FILE": str(releases_file),
    }
    done = subprocess.run(
        [sys.executable, "-m", "rasbot.cli", "chat", "-c", "piversion a020d3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Revision `a020d3`: Raspberry Pi 3 Model B+")
    # Only warnings and worse are logged by default: the answer stands alone.
    assert done.stderr == ""
