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
LongBlob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
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
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)

# The listing of the catalog_state row of the same name, as zlib-compressed JSON:
# megabytes, kept apart so that the bookkeeping is read and updated without it.
catalog_listing = sa.Table(
    "catalog_listing",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    # Length of the listing's JSON text, read without reading the listing.
    sa.Column("chars", sa.Integer, nullable=False),
    sa.Column("pages", LongBlob, nullable=False),
)

update_checks = sa.Table(
    "update_checks",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    _client("serial"),
    _client("revision"),
    sa.Column("device", sa.String(64)),
    _client("client_version"),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(ADDRESS_MAX)),
    sa.Column("offered", sa.String(CLIENT_VALUE_MAX)),
    # Covers the statistics (rasbot.stats): distinct serials in a time range and
    # the moment of each serial's latest check are read from this index alone.
    # There is no index led by the serial: serials are random, so its upkeep
    # would cost each recorded check a write at a random place.
    sa.Index(None, "at", "serial"),
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

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    # Epoch milliseconds: compared the same way by every database and time zone.
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
)

#: Longest audit detail kept; MySQL's TEXT holds 64 KiB of UTF-8 at 4 bytes a char.
AUDIT_DETAIL_MAX = 4000

# Every change made through chat or the CLI, and every sync that changed the catalog.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

#: Length of the crash id a user reads back to us (rasbot.crashes).
CRASH_ID_LENGTH = 8

# Crash dumps sent to POST /crashes; the dump itself is a file in RASBOT_CRASH_DIR.
crashes = sa.Table(
    "crashes",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("public_id", sa.String(CRASH_ID_LENGTH), nullable=False, unique=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
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
)

# Daily roll-ups of the recorded requests (rasbot.retention). A UTC day is rolled
# up once it is over and listed in `stats_days`; the statistics read a rolled-up day
# from the roll-ups only, so the raw rows of such a day may go. Text that a client
# did not send is '' rather than NULL, because these columns are primary keys.
stats_days = sa.Table(
    "stats_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rolled_up_at", UtcDateTime, nullable=False),
)

# Each serial counts once a day, in the group of its last update check that day.
stats_active_daily = sa.Table(
    "stats_active_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("client_version", sa.String(CLIENT_VALUE_MAX), primary_key=True),
    sa.Column("serials", sa.Integer, nullable=False),
)

# Distinct serials of a whole ISO week (from its Monday), kept when its rows go.
stats_active_weekly = sa.Table(
    "stats_active_weekly",
    metadata,
    sa.Column("week", sa.Date, primary_key=True),
    sa.Column("serials", sa.Integer, nullable=False),
)

stats_checks_hourly = sa.Table(
    "stats_checks_hourly",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("hour", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("checks", sa.Integer, nullable=False),
)

# Distinct serials that staged an update to ``version`` that day.
stats_staged_daily = sa.Table(
    "stats_staged_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("version", sa.String(CLIENT_VALUE_MAX), primary_key=True),
    sa.Column("serials", sa.Integer, nullable=False),
)

# Distinct addresses asking /install, by ``dimension`` 'platform' or 'device'.
stats_installs_daily = sa.Table(
    "stats_installs_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("dimension", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(CLIENT_VALUE_MAX), primary_key=True),
    sa.Column("addresses", sa.Integer, nullable=False),
)

stats_downloads_daily = sa.Table(
    "stats_downloads_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("release_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(CLIENT_VALUE_MAX), nullable=False),
    sa.Column("downloads", sa.Integer, nullable=False),
)

# GitHub's running download count of each release asset, as the last sync of each
# UTC day saw it (rasbot.githubcounts); a day's increase is the difference.
github_download_counts = sa.Table(
    "github_download_counts",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("release_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("asset", sa.String(CLIENT_VALUE_MAX), primary_key=True),
    sa.Column("version", sa.String(CLIENT_VALUE_MAX), nullable=False),
    sa.Column("device", sa.String(64)),
    sa.Column("kind", sa.String(16)),
    sa.Column("download_count", sa.BigInteger, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)

#: Longest rollout plan and reason kept (rasbot.rollout).
ROLLOUT_PLAN_MAX, ROLLOUT_REASON_MAX = 512, 1000

# Staged rollouts (rasbot.rollout): a row per release whose rollout has begun or
# was changed by hand. Every process keeps a copy in memory for /update.
rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("release_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("version", sa.String(CLIENT_VALUE_MAX), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    # Set from chat or the CLI; NULL means the plan of the release body.
    sa.Column("plan", sa.String(ROLLOUT_PLAN_MAX)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("stage", sa.SmallInteger, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("stage_started_at", UtcDateTime, nullable=False),
    # Health counts from here: the start, or the last `resume`.
    sa.Column("judged_from", UtcDateTime, nullable=False),
    # Device types the release is no longer offered to, comma-separated.
    sa.Column("halted_devices", sa.String(512), nullable=False),
    sa.Column("rollback_to", sa.String(CLIENT_VALUE_MAX)),
    sa.Column("reason", sa.String(ROLLOUT_REASON_MAX), nullable=False),
    sa.Column("changed_by", sa.String(128), nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets a busy timeout and WAL journaling.

    Errors leave out the statement's parameters: they are devices' serials and
    addresses, and they would go to the log with the error.
    """
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, hide_parameters=True
        )
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_pre_ping=True, pool_recycle=3600, hide_parameters=True
    )


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
