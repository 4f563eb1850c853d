"""The stored listing in a table of its own, compressed, apart from the bookkeeping.

Every sync that finds nothing changed updates ``fetched_at``; with the listing in
the same row, SQLite rewrote the whole row, megabytes of it, each time. The listing
is zlib-compressed JSON now, about a sixth of the text.

Revision ID: 0007_catalog_listing
Revises: 0006_rollouts
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import op

from rasbot.db import LongBlob, LongText

revision = "0007_catalog_listing"
down_revision = "0006_rollouts"
branch_labels = None
depends_on = None

_state = sa.table(
    "catalog_state", sa.column("name", sa.String), sa.column("pages", sa.Text)
)
_listing = sa.table(
    "catalog_listing",
    sa.column("name", sa.String),
    sa.column("chars", sa.Integer),
    sa.column("pages", sa.LargeBinary),
)


def upgrade() -> None:
    op.create_table(
        "catalog_listing",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("pages", LongBlob, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_catalog_listing"),
    )
    bind = op.get_bind()
    for name, pages in bind.execute(sa.select(_state.c.name, _state.c.pages)).all():
        compressed = zlib.compress(pages.encode())
        op.execute(
            _listing.insert().values(name=name, chars=len(pages), pages=compressed)
        )
    with op.batch_alter_table("catalog_state") as batch:
        batch.drop_column("pages")


def downgrade() -> None:
    with op.batch_alter_table("catalog_state") as batch:
        batch.add_column(sa.Column("pages", LongText, nullable=True))
    bind = op.get_bind()
    for name, pages in bind.execute(sa.select(_listing.c.name, _listing.c.pages)).all():
        text = zlib.decompress(pages).decode()
        op.execute(_state.update().where(_state.c.name == name).values(pages=text))
    op.execute(_state.delete().where(_state.c.pages.is_(None)))
    with op.batch_alter_table("catalog_state") as batch:
        batch.alter_column("pages", existing_type=LongText, nullable=False)
    op.drop_table("catalog_listing")
