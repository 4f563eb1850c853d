"""Statistics: daily roll-ups, GitHub download counts, a covering index.

Revision ID: 0005_stats
Revises: 0004_crashes
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from rasbot.db import CLIENT_VALUE_MAX, UtcDateTime

revision = "0005_stats"
down_revision = "0004_crashes"
branch_labels = None
depends_on = None

_ROLLUPS = (
    "stats_days",
    "stats_active_daily",
    "stats_active_weekly",
    "stats_checks_hourly",
    "stats_staged_daily",
    "stats_installs_daily",
    "stats_downloads_daily",
    "github_download_counts",
)


def _day() -> sa.Column[Any]:
    return sa.Column("day", sa.Date, nullable=False)


def _text(name: str, length: int = CLIENT_VALUE_MAX) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=False)


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=f"pk_{table}")


def upgrade() -> None:
    # (at, serial) makes (at) redundant: every range scan can use the new one.
    op.drop_index("ix_update_checks_at", table_name="update_checks")
    op.create_index("ix_update_checks_at_serial", "update_checks", ["at", "serial"])
    _create_rollups()
    _create_github_counts()


def _create_rollups() -> None:
    op.create_table(
        "stats_days",
        _day(),
        sa.Column("rolled_up_at", UtcDateTime, nullable=False),
        _pk("stats_days", "day"),
    )
    op.create_table(
        "stats_active_daily",
        _day(),
        _text("channel", 16),
        _text("device", 64),
        _text("client_version"),
        sa.Column("serials", sa.Integer, nullable=False),
        _pk("stats_active_daily", "day", "channel", "device", "client_version"),
    )
    op.create_table(
        "stats_active_weekly",
        sa.Column("week", sa.Date, nullable=False),
        sa.Column("serials", sa.Integer, nullable=False),
        _pk("stats_active_weekly", "week"),
    )
    op.create_table(
        "stats_checks_hourly",
        _day(),
        sa.Column("hour", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("checks", sa.Integer, nullable=False),
        _pk("stats_checks_hourly", "day", "hour"),
    )
    op.create_table(
        "stats_staged_daily",
        _day(),
        _text("version"),
        sa.Column("serials", sa.Integer, nullable=False),
        _pk("stats_staged_daily", "day", "version"),
    )
    op.create_table(
        "stats_installs_daily",
        _day(),
        _text("dimension", 16),
        _text("name"),
        sa.Column("addresses", sa.Integer, nullable=False),
        _pk("stats_installs_daily", "day", "dimension", "name"),
    )
    op.create_table(
        "stats_downloads_daily",
        _day(),
        sa.Column("release_id", sa.BigInteger, nullable=False, autoincrement=False),
        _text("device", 64),
        _text("version"),
        sa.Column("downloads", sa.Integer, nullable=False),
        _pk("stats_downloads_daily", "day", "release_id", "device"),
    )


def _create_github_counts() -> None:
    op.create_table(
        "github_download_counts",
        _day(),
        sa.Column("release_id", sa.BigInteger, nullable=False, autoincrement=False),
        _text("asset"),
        _text("version"),
        sa.Column("device", sa.String(64)),
        sa.Column("kind", sa.String(16)),
        sa.Column("download_count", sa.BigInteger, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        _pk("github_download_counts", "day", "release_id", "asset"),
    )


def downgrade() -> None:
    for table in reversed(_ROLLUPS):
        op.drop_table(table)
    op.drop_index("ix_update_checks_at_serial", table_name="update_checks")
    op.create_index("ix_update_checks_at", "update_checks", ["at"])
