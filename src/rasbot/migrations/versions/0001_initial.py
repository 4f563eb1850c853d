"""Catalog state, recorded requests and the beta whitelist.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rasbot.db import ADDRESS_MAX, CLIENT_VALUE_MAX, LongText, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _client(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(CLIENT_VALUE_MAX))


def upgrade() -> None:
    op.create_table(
        "catalog_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("pages", LongText, nullable=False),
        sa.Column("fetched_at", UtcDateTime, nullable=False),
        sa.Column("changed_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_catalog_state"),
    )
    op.create_table(
        "update_checks",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        _client("serial"),
        _client("revision"),
        sa.Column("device", sa.String(64)),
        _client("client_version"),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(ADDRESS_MAX)),
        sa.Column("offered", sa.String(CLIENT_VALUE_MAX)),
        sa.PrimaryKeyConstraint("id", name="pk_update_checks"),
    )
    op.create_index("ix_update_checks_at", "update_checks", ["at"])
    op.create_index("ix_update_checks_serial_at", "update_checks", ["serial", "at"])
    op.create_table(
        "updates_staged",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        _client("serial"),
        _client("revision"),
        sa.Column("device", sa.String(64)),
        _client("from_version"),
        _client("version"),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(ADDRESS_MAX)),
        sa.PrimaryKeyConstraint("id", name="pk_updates_staged"),
    )
    op.create_index("ix_updates_staged_at", "updates_staged", ["at"])
    op.create_table(
        "installs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        _client("device"),
        sa.Column("address", sa.String(ADDRESS_MAX)),
        sa.PrimaryKeyConstraint("id", name="pk_installs"),
    )
    op.create_index("ix_installs_at", "installs", ["at"])
    op.create_table(
        "downloads",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("release_id", sa.BigInteger, nullable=False),
        sa.Column("version", sa.String(CLIENT_VALUE_MAX), nullable=False),
        sa.Column("asset", sa.String(CLIENT_VALUE_MAX), nullable=False),
        sa.Column("device", sa.String(64)),
        sa.Column("kind", sa.String(16)),
        sa.Column("address", sa.String(ADDRESS_MAX)),
        sa.PrimaryKeyConstraint("id", name="pk_downloads"),
    )
    op.create_index("ix_downloads_at", "downloads", ["at"])
    op.create_table(
        "whitelist",
        sa.Column("serial", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("serial", name="pk_whitelist"),
    )


def downgrade() -> None:
    for table in (
        "whitelist",
        "downloads",
        "installs",
        "updates_staged",
        "update_checks",
        "catalog_state",
    ):
        op.drop_table(table)
