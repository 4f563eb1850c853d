"""The rasbot command: exit codes and sentences for what goes wrong."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rasbot.cli import main


def test_unreachable_database_is_one_sentence_without_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "RASBOT_DATABASE_URL", "postgresql+asyncpg://rasbot:hunter2@127.0.0.1:1/x"
    )

    result = CliRunner().invoke(main, ["db", "upgrade"])

    assert result.exit_code == 1
    assert (
        "cannot use the database at postgresql+asyncpg://rasbot:***@" in result.output
    )
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_bad_setting_is_exit_2_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASBOT_TRACK_DOWNLOADS", "sometimes")

    result = CliRunner().invoke(main, ["releases"])

    assert result.exit_code == 2
    assert "RASBOT_TRACK_DOWNLOADS='sometimes'" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])

    assert result.exit_code == 2
