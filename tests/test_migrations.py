"""Alembic migrations: up from empty, down and up again, and in step with db.py."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from rasbot import db, migrate


async def table_names(engine: Any) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


async def differences(engine: Any) -> list[Any]:
    def compare(sync: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, db.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def test_upgrade_from_empty_creates_every_table(database_url: str) -> None:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)

    assert await table_names(engine) == set(db.metadata.tables)
    await engine.dispose()


async def test_models_and_migrations_agree(database_url: str) -> None:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)

    assert await differences(engine) == []
    await engine.dispose()


async def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)

    await migrate.downgrade(engine, "base")
    assert await table_names(engine) == set()

    await migrate.upgrade(engine)
    assert await table_names(engine) == set(db.metadata.tables)
    await engine.dispose()


async def test_upgrade_twice_is_harmless(database_url: str) -> None:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)
    await migrate.upgrade(engine)

    assert await table_names(engine) == set(db.metadata.tables)
    await engine.dispose()


def test_heads_read_from_the_scripts_are_alembics() -> None:
    with_alembic = ScriptDirectory(str(migrate._SCRIPTS)).get_heads()

    assert migrate.head_revisions() == frozenset(with_alembic)


async def test_a_database_at_head_is_seen_as_such(database_url: str) -> None:
    engine = db.create_engine(database_url)
    assert migrate.head_revisions() != await migrate.current_revisions(engine)

    await migrate.upgrade(engine)

    assert await migrate.current_revisions(engine) == migrate.head_revisions()
    await engine.dispose()


async def test_the_stored_listing_moves_to_its_own_table_and_back(
    database_url: str,
) -> None:
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine, "0006_rollouts")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO catalog_state (name, revision, digest, source, pages,"
                " fetched_at, changed_at) VALUES ('main', 3, 'd', 's', '[]', :t, :t)"
            ),
            {"t": datetime(2026, 1, 2, tzinfo=UTC)},
        )

    await migrate.upgrade(engine)
    async with engine.connect() as conn:
        moved = (await conn.execute(sa.select(db.catalog_listing))).one()
    assert (moved.name, moved.chars) == ("main", 2)
    assert zlib.decompress(moved.pages) == b"[]"

    await migrate.downgrade(engine, "0006_rollouts")
    async with engine.connect() as conn:
        back = await conn.scalar(sa.text("SELECT pages FROM catalog_state"))
    assert back == "[]"
    await engine.dispose()
