"""Crash dumps sent to POST /crashes.

Revision ID: 0004_crashes
Revises: 0003_audit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rasbot.db import ADDRESS_MAX, CLIENT_VALUE_MAX, CRASH_ID_LENGTH, UtcDateTime

revision = "0004_crashes"
down_revision = "0003_audit"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _client(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(CLIENT_VALUE_MAX))


def upgrade() -> None:
    op.create_table(
        "crashes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("public_id", sa.String(CRASH_ID_LENGTH), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        _client("serial"),
        _client("revision"),
        sa.Column("device", sa.String(64)),
        _client("version"),
        _client("platform"),
        _client("submitter_version"),
        _client("uuid"),
        _client("server_uuid"),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(ADDRESS_MAX)),
        sa.Column("minidump_ok", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crashes"),
        sa.UniqueConstraint("public_id", name="uq_crashes_public_id"),
    )
    op.create_index("ix_crashes_at", "crashes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_crashes_at", table_name="crashes")
    op.drop_table("crashes")
