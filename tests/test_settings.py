"""The settings table: documented, typed, and loud about bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rasbot.settings import Settings, SettingsError, TrackDownloads, load_settings

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(name: str) -> None:
    assert f"`RASBOT_{name.upper()}`" in README.read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_has_a_help_line(name: str) -> None:
    assert Settings.model_fields[name].description


def test_defaults_are_the_documented_ones() -> None:
    settings = load_settings()

    assert settings.database_url == "sqlite+aiosqlite:///rasbot.db"
    assert settings.github_repo == "RasPlex/RasPlex"
    assert settings.github_poll_seconds == 300
    assert settings.track_downloads is TrackDownloads.UPDATE
    assert settings.device_board_map == {"RPi3bplus": frozenset({0x0D, 0x0E})}
    assert [d for d, _ in settings.device_names] == ["RPi2", "RPi", "RPi3bplus"]


def test_environment_sets_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASBOT_TRACK_DOWNLOADS", "all")
    monkeypatch.setenv("RASBOT_TRUSTED_PROXIES", "10.0.0.0/8, ::1")

    settings = load_settings()

    assert settings.track_downloads is TrackDownloads.ALL
    assert [str(n) for n in settings.trusted_proxy_networks] == [
        "10.0.0.0/8",
        "::1/128",
    ]


def test_config_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "rasbot.toml"
    config.write_text('github_repo = "me/fork"\ntrack_downloads = "none"\n')
    monkeypatch.setenv("RASBOT_CONFIG_FILE", str(config))
    monkeypatch.setenv("RASBOT_TRACK_DOWNLOADS", "all")

    settings = load_settings()

    assert settings.github_repo == "me/fork"
    assert settings.track_downloads is TrackDownloads.ALL


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RASBOT_TRACK_DOWNLOADS", "sometimes"),
        ("RASBOT_GITHUB_POLL_SECONDS", "-1"),
        ("RASBOT_TRUSTED_PROXIES", "not-an-address"),
        ("RASBOT_DEVICE_BOARDS", "RPi3bplus"),
        ("RASBOT_PUBLIC_URL", "ftp://example.org"),
    ],
)
def test_bad_value_names_key_and_value(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)

    with pytest.raises(SettingsError) as error:
        load_settings()

    assert key in str(error.value)
    assert repr(value) in str(error.value)


def test_secret_values_are_not_repeated_in_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RASBOT_GITHUB_TOKEN", "ghp_supersecret")
    monkeypatch.setenv("RASBOT_GITHUB_POLL_SECONDS", "soon")

    with pytest.raises(SettingsError) as error:
        load_settings()

    assert "ghp_supersecret" not in str(error.value)
    assert "ghp_supersecret" not in repr(load_settings(github_poll_seconds=1))


def test_empty_variable_means_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASBOT_RELEASES_FILE", "")
    monkeypatch.setenv("RASBOT_GITHUB_WEBHOOK_SECRET", "")

    settings = load_settings()

    assert settings.releases_file is None
    assert settings.github_webhook_secret is None
