"""Shared fixtures: a clean environment, a real database and the application.

Tests run on SQLite in a temporary directory, or on the database named by
``RASBOT_TEST_DATABASE_URL`` (MariaDB or PostgreSQL), emptied before each test.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from rasbot import db
from rasbot.app import create_app
from rasbot.services import Services
from rasbot.settings import Settings, load_settings
from tests import factories

EXTERNAL_DATABASE = os.environ.get("RASBOT_TEST_DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RASBOT_* setting of the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("RASBOT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """An empty database: a fresh SQLite file, or the external one emptied."""
    if EXTERNAL_DATABASE is None:
        return f"sqlite+aiosqlite:///{tmp_path / 'rasbot.db'}"
    asyncio.run(_empty(EXTERNAL_DATABASE))
    return EXTERNAL_DATABASE


async def _empty(url: str) -> None:
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(db.metadata.drop_all)
        await conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()


@pytest.fixture
def releases_file(tmp_path: Path) -> Path:
    """A release listing in GitHub's format, written where the file source reads."""
    path = tmp_path / "releases.json"
    path.write_text(json.dumps(factories.history()))
    return path


@pytest.fixture
def make_settings(
    database_url: str, releases_file: Path, tmp_path: Path
) -> Callable[..., Settings]:
    """Settings on the test database and release file, with overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "releases_file": releases_file,
            "github_poll_seconds": 0,
            "crash_dir": tmp_path / "crashes",
            "record_flush_seconds": 0.05,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def make_client(
    make_settings: Callable[..., Settings],
) -> Iterator[Callable[..., TestClient]]:
    """Start the application (lifespan included) and sync the catalog once."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)))
        client.__enter__()
        clients.append(client)
        client.portal.call(services(client).syncer.refresh)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """The application on the default test settings."""
    return make_client()


def services(client: TestClient) -> Services:
    """The running application's services."""
    found: Services = client.app.state.services  # type: ignore[attr-defined]
    return found


def flush(client: TestClient) -> None:
    """Write what the recorder holds, so a test can read it back."""
    assert client.portal.call(services(client).recorder.flush)


def rows(client: TestClient, table: sa.Table) -> list[dict[str, Any]]:
    """Every row of ``table``, after flushing the recorder."""
    flush(client)

    async def read() -> list[dict[str, Any]]:
        async with services(client).engine.connect() as conn:
            result = await conn.execute(sa.select(table).order_by(table.c.id))
            return [dict(row._mapping) for row in result]

    return client.portal.call(read)
