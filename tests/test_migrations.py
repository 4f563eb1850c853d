"""Alembic migrations: up from empty, down and up again, and in step with db.py."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
