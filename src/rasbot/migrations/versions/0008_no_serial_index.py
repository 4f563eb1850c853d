"""Update checks without an index led by the serial.

Devices' serials are random, so every recorded check wrote to a random place of
that index: with a month of checks stored, SQLite spent more CPU time on that
index than on answering the request (bench/run.py --devices --stored-rows).
Rollout health, its one reader, finds a release's devices through the (at,
serial) index of the window it looks at.

Revision ID: 0008_no_serial_index
Revises: 0007_catalog_listing
"""

from __future__ import annotations

from alembic import op

revision = "0008_no_serial_index"
down_revision = "0007_catalog_listing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_update_checks_serial_at", table_name="update_checks")


def downgrade() -> None:
    op.create_index("ix_update_checks_serial_at", "update_checks", ["serial", "at"])
