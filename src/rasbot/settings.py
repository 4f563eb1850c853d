"""Every setting of rasbot in one typed table.

Settings come from environment variables with the ``RASBOT_`` prefix and, when
``RASBOT_CONFIG_FILE`` names one, from a TOML file with the same keys in lower case
(without the prefix). The environment wins over the file. A bad value fails at start-up
with the key and the value named.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rasbot.devices import parse_device_boards, parse_device_names


class TrackDownloads(StrEnum):
    """Which download URLs go through this server's counting redirect."""

    UPDATE = "update"
    ALL = "all"
    NONE = "none"


class SettingsError(Exception):
    """A setting has a value rasbot cannot use; the message names key and value."""


class Settings(BaseSettings):
    """The settings table; each field's description is its help line."""

    model_config = SettingsConfigDict(
        env_prefix="RASBOT_",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=False,
        # `RASBOT_RELEASES_FILE=` means "not set", not "the current directory".
        env_ignore_empty=True,
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///rasbot.db", description="SQLAlchemy database URL."
    )
    github_repo: str = Field(
        "RasPlex/RasPlex", description="owner/name of the release repository."
    )
    github_api_url: str = Field(
        "https://api.github.com", description="GitHub API base URL."
    )
    github_token: SecretStr | None = Field(
        None, description="GitHub token, sent only in the Authorization header."
    )
    github_poll_seconds: float = Field(
        300.0, ge=0, description="Seconds between polls of GitHub; 0 turns polling off."
    )
    poll_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a dead poller blocks others from polling GitHub.",
    )
    github_timeout_seconds: float = Field(
        15.0, gt=0, description="Timeout of one GitHub API request."
    )
    github_webhook_secret: SecretStr | None = Field(
        None, description="Secret of the GitHub webhook; enables POST /github/webhook."
    )
    releases_file: Path | None = Field(
        None, description="Read releases from this JSON file instead of GitHub."
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses/networks whose X-Forwarded-For counts.",
    )
    beta_dir: Path | None = Field(
        None, description="Directory of beta images served by this server."
    )
    crash_dir: Path = Field(
        Path("crashes"), description="Where crash dumps are stored."
    )
    crash_max_bytes: int = Field(
        10_485_760, gt=0, description="Largest crash dump accepted, in bytes."
    )
    crash_keep_days: float = Field(
        90.0, gt=0, description="Days crash dumps and their rows are kept."
    )
    public_url: str | None = Field(
        None, description="Scheme and host of absolute URLs this server hands out."
    )
    track_downloads: TrackDownloads = Field(
        TrackDownloads.UPDATE,
        description="Which download URLs are counted: update, all or none.",
    )
    serve_beta_drafts: bool = Field(
        False, description="Serve draft releases on the beta channel."
    )
    stats_origins: str = Field(
        "", description="Comma-separated origins allowed to read /json/stats."
    )
    stats_cache_seconds: float = Field(
        300.0,
        ge=0,
        description="How long /json/stats and the dashboard reuse an answer; 0: never.",
    )
    stats_keep_days: int = Field(
        400,
        ge=8,
        description="Days raw recorded requests are kept; older days as daily sums.",
    )
    dashboard: bool = Field(
        True, description="Serve the statistics dashboard at /dashboard."
    )
    rollout_check_seconds: float = Field(
        60.0,
        gt=0,
        description="Seconds between two looks at every rollout's stage and health.",
    )
    rollout_confirm_hours: float = Field(
        12.0,
        gt=0,
        description="Hours a device has to come back after staging, or it is missing.",
    )
    rollout_max_missing_percent: float = Field(
        5.0,
        ge=0,
        description="Points of missing devices over the previous release's that halt "
        "a device type.",
    )
    rollout_max_crash_percent: float = Field(
        10.0,
        ge=0,
        description="Crash reports per 100 devices over the previous release's that "
        "halt a device type.",
    )
    rollout_min_devices: int = Field(
        20,
        gt=0,
        description="Devices of a type judged before its health can halt a rollout.",
    )
    device_boards: str = Field(
        "RPi3bplus=0x0d,0x0e",
        description="Specific devices by board type, e.g. RPi3bplus=0x0d,0x0e.",
    )
    devices: str = Field(
        "RPi2=Raspberry Pi 2 / 3,RPi=Raspberry Pi 1 / Zero,RPi3bplus=Raspberry Pi 3 B+",
        description="Device ids with display names, in installer order.",
    )
    record_queue_max: int = Field(
        100_000, gt=0, description="Recorded requests held in memory at most."
    )
    record_flush_seconds: float = Field(
        1.0, gt=0, description="Longest wait before recorded requests are written."
    )
    slack_bot_token: SecretStr | None = Field(None, description="Slack bot token.")
    slack_app_token: SecretStr | None = Field(
        None, description="Slack app token (Socket Mode)."
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Slack signing secret (Events API)."
    )
    slack_api_url: str = Field(
        "https://slack.com/api/", description="Slack Web API base URL."
    )
    slack_channel: str | None = Field(
        None, description="Slack channel for alerts (rollouts, sync failures)."
    )
    slack_max_lines: int = Field(
        15, gt=0, description="Longer chat answers go to a direct message, in lines."
    )
    slack_max_chars: int = Field(
        3000, gt=0, description="Longer chat answers go to a direct message, in chars."
    )
    admins: str = Field("", description="Comma-separated chat user ids of admins.")
    server: str = Field(
        "auto",
        pattern="^(auto|granian|uvicorn)$",
        description="HTTP server: auto (granian when installed), granian or uvicorn.",
    )
    log_format: str = Field(
        "console",
        pattern="^(console|json)$",
        description="Log format: console or json.",
    )
    log_level: str = Field(
        "info", description="Log level: debug, info, warning, error."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("RASBOT_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, Path(config_file)))
        return tuple(sources)

    @field_validator("device_boards")
    @classmethod
    def _check_device_boards(cls, value: str) -> str:
        parse_device_boards(value)
        return value

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, value: str) -> str:
        if not parse_device_names(value):
            raise ValueError("at least one device is needed")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in _split(value):
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @cached_property
    def device_board_map(self) -> dict[str, frozenset[int]]:
        """Specific device id -> board types, from ``device_boards``."""
        return parse_device_boards(self.device_boards)

    @cached_property
    def device_names(self) -> list[tuple[str, str]]:
        """(device id, display name) in installer order, from ``devices``."""
        return parse_device_names(self.devices)

    @cached_property
    def trusted_proxy_networks(
        self,
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks of ``trusted_proxies``."""
        return tuple(
            ipaddress.ip_network(item, strict=False)
            for item in _split(self.trusted_proxies)
        )

    @cached_property
    def stats_origin_set(self) -> frozenset[str]:
        """The origins of ``stats_origins``."""
        return frozenset(item.rstrip("/") for item in _split(self.stats_origins))

    @cached_property
    def admin_ids(self) -> frozenset[str]:
        """The chat user ids of ``admins``."""
        return frozenset(_split(self.admins))


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, raising `SettingsError` that names each bad key and value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read RASBOT_CONFIG_FILE: {exc}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = "RASBOT_" + "_".join(str(part) for part in error["loc"]).upper()
        value = error.get("input")
        shown = "(secret)" if "token" in key or "secret" in key else repr(value)
        lines.append(f"{key}={shown}: {error['msg']}")
    return "; ".join(lines)
