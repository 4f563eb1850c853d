"""Database schema and engine.

The same tables serve SQLite, MariaDB/MySQL and PostgreSQL. Columns that hold what a
client sent are as wide as the longest value the HTTP layer accepts, and addresses are
wide enough for IPv6, so an insert never fails on length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

#: Longest query parameter value the HTTP layer accepts (PROTOCOL.md 2).
CLIENT_VALUE_MAX = 256
#: Textual IPv6 with a zone index fits in 64 characters.
ADDRESS_MAX = 64

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# MySQL's TEXT holds 64 KiB; a catalog of thousands of releases needs more.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
UtcDateTime = sa.DateTime(timezone=True)


def _client(name: str, **kwargs: Any) -> sa.Column[Any]:
    return sa.Column(name, sa.String(CLIENT_VALUE_MAX), **kwargs)


catalog_state = sa.Table(
    "catalog_state",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("source", sa.String(512), nullable=False),
    sa.Column("pages", LongText, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)

update_checks = sa.Table(
    "update_checks",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    _client("serial"),
    _client("revision"),
    sa.Column("device", sa.String(64)),
    _client("client_version"),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(ADDRESS_MAX)),
    sa.Column("offered", sa.String(CLIENT_VALUE_MAX)),
    sa.Index(None, "serial", "at"),
)

updates_staged = sa.Table(
    "updates_staged",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    _client("serial"),
    _client("revision"),
    sa.Column("device", sa.String(64)),
    _client("from_version"),
    _client("version"),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(ADDRESS_MAX)),
)

installs = sa.Table(
    "installs",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("platform", sa.String(16), nullable=False),
    _client("device"),
    sa.Column("address", sa.String(ADDRESS_MAX)),
)

downloads = sa.Table(
    "downloads",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("release_id", sa.BigInteger, nullable=False),
    sa.Column("version", sa.String(CLIENT_VALUE_MAX), nullable=False),
    sa.Column("asset", sa.String(CLIENT_VALUE_MAX), nullable=False),
    sa.Column("device", sa.String(64)),
    sa.Column("kind", sa.String(16)),
    sa.Column("address", sa.String(ADDRESS_MAX)),
)

whitelist = sa.Table(
    "whitelist",
    metadata,
    sa.Column("serial", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("added_by", sa.String(128), nullable=False),
    sa.Column("added_at", UtcDateTime, nullable=False),
)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets a busy timeout and WAL journaling."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_recycle=3600)


def _ensure_sqlite_dir(url: str) -> None:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the server read while the batch writer or the CLI writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
