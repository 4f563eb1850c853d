"""Staged rollouts: the state of each release's rollout.

Revision ID: 0006_rollouts
Revises: 0005_stats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rasbot.db import CLIENT_VALUE_MAX, UtcDateTime

revision = "0006_rollouts"
down_revision = "0005_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("release_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("version", sa.String(CLIENT_VALUE_MAX), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(512)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.SmallInteger, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("stage_started_at", UtcDateTime, nullable=False),
        sa.Column("judged_from", UtcDateTime, nullable=False),
        sa.Column("halted_devices", sa.String(512), nullable=False),
        sa.Column("rollback_to", sa.String(CLIENT_VALUE_MAX)),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("release_id", name="pk_rollouts"),
    )


def downgrade() -> None:
    op.drop_table("rollouts")
