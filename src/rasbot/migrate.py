"""Schema migrations with Alembic, run on rasbot's own async engine.

Alembic (with Mako and Pygments) costs a server process about 10 MiB for good, and
most starts find the schema already at head: that is checked first, from the
scripts' text and the ``alembic_version`` table, and Alembic is imported only when
there is something to migrate.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPTS = Path(__file__).parent / "migrations"
# `revision = "0002_leases"`, `down_revision: str | None = ("a", "b")` ...
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic configuration that migrates over ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


@cache
def head_revisions() -> frozenset[str]:
    """The revisions no script builds on, read from the scripts' text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (_SCRIPTS / "versions").glob("*.py"):
        for name, value in _ASSIGNMENT.findall(script.read_text(encoding="utf-8")):
            found = _QUOTED.findall(value)
            (revisions if name == "revision" else parents).update(found)
    return frozenset(revisions - parents)


async def current_revisions(engine: AsyncEngine) -> frozenset[str]:
    """The revisions the database is at; empty when it was never migrated."""

    def read(conn: sa.Connection) -> frozenset[str]:
        if not sa.inspect(conn).has_table("alembic_version"):
            return frozenset()
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        return frozenset(str(row[0]) for row in rows)

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    """Migrate the database up to ``target``."""
    if target == "head" and await current_revisions(engine) == head_revisions():
        return
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), target))


async def downgrade(engine: AsyncEngine, target: str) -> None:
    """Migrate the database down to ``target`` (``base`` removes every table)."""
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(
            lambda sync: command.downgrade(alembic_config(sync), target)
        )
