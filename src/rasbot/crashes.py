"""Crash dumps: storing them, finding them again, and letting them go.

A dump is a file in ``RASBOT_CRASH_DIR`` under a name the server chooses, and a row
in the ``crashes`` table with a short public id: the id the updater shows its user,
and the one operators ask chat about (``crashes [n]``, ``crash <id>``). Rows and
files are removed after ``RASBOT_CRASH_KEEP_DAYS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db
from rasbot.clock import as_utc

log = structlog.get_logger(__name__)

# Crockford's base32 in lower case: no i, l, o or u to misread when a user
# copies the id from the screen.
PUBLIC_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# 40 random bits: a clash is possible among millions of dumps, so a clash
# (the unique index says so) is retried with a new id.
_ID_ATTEMPTS = 5

#: Uploads in progress are written to files with this prefix and suffix.
PART_PREFIX, PART_SUFFIX = ".upload-", ".part"
_DUMP_SUFFIX = ".dmp"
# An upload file this old belongs to a process that died mid-upload.
_ABANDONED_PART_SECONDS = 3600.0
_CLEAN_BATCH = 1000


class NotStored(Exception):
    """The dump could not be stored; the client should send it again later."""


@dataclass(frozen=True)
class CrashReport:
    """What the client says about a crash (the query of POST /crashes)."""

    serial: str | None
    revision: str | None
    device: str | None
    version: str | None
    platform: str | None
    submitter_version: str | None
    uuid: str | None
    server_uuid: str | None
    address: str | None


@dataclass(frozen=True)
class Crash:
    """One stored crash dump."""

    id: str
    at: datetime
    report: CrashReport
    size: int
    file_name: str
    minidump_ok: bool


def new_public_id() -> str:
    """A fresh short id, as the user will see it."""
    return "".join(
        secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(db.CRASH_ID_LENGTH)
    )


def normalise_public_id(text: str) -> str:
    """An id as typed by a person: case and surrounding space do not matter."""
    return text.strip().lower()


async def store(
    engine: AsyncEngine,
    part: Path,
    report: CrashReport,
    *,
    size: int,
    minidump_ok: bool,
) -> str:
    """Give the uploaded dump ``part`` its final name, record it; the public id.

    On failure nothing is left behind and `NotStored` is raised: the client is
    told to retry, and a dump it will send again must not be kept twice.
    """
    final = part.with_name(f"crash-{uuid.uuid4().hex}{_DUMP_SUFFIX}")
    try:
        await anyio.to_thread.run_sync(_move_durably, part, final)
        return await _insert(engine, _row(report, final.name, size, minidump_ok))
    except (SQLAlchemyError, OSError, NotStored) as exc:
        for path in (part, final):
            path.unlink(missing_ok=True)
        log.warning("crash.not_stored", error=str(exc))
        raise NotStored(str(exc)) from exc


def _move_durably(part: Path, final: Path) -> None:
    # The answer promises the dump is kept: the rename must survive a power cut.
    os.replace(part, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _row(
    report: CrashReport, file_name: str, size: int, minidump_ok: bool
) -> dict[str, Any]:
    return {
        **asdict(report),
        "at": datetime.now(UTC),
        "size": size,
        "file_name": file_name,
        "minidump_ok": minidump_ok,
    }


async def _insert(engine: AsyncEngine, row: dict[str, Any]) -> str:
    for _ in range(_ID_ATTEMPTS):
        public_id = new_public_id()
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.insert(db.crashes).values(public_id=public_id, **row)
                )
        except IntegrityError:
            continue  # the id is taken: the row was rolled back, try another
        return public_id
    raise NotStored(f"no free crash id in {_ID_ATTEMPTS} attempts")


async def recent_crashes(engine: AsyncEngine, n: int = 10) -> list[Crash]:
    """The ``n`` newest crashes, newest first."""
    table = db.crashes
    query = sa.select(table).order_by(table.c.at.desc(), table.c.id.desc())
    async with engine.connect() as conn:
        rows = await conn.execute(query.limit(max(0, n)))
        return [_crash(row._mapping) for row in rows]


async def crash(engine: AsyncEngine, public_id: str) -> Crash | None:
    """The crash with this public id (as the user read it out), or None."""
    table = db.crashes
    wanted = normalise_public_id(public_id)
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(table).where(table.c.public_id == wanted))
        ).first()
    return None if row is None else _crash(row._mapping)


def _crash(row: Any) -> Crash:
    report = CrashReport(
        serial=row["serial"],
        revision=row["revision"],
        device=row["device"],
        version=row["version"],
        platform=row["platform"],
        submitter_version=row["submitter_version"],
        uuid=row["uuid"],
        server_uuid=row["server_uuid"],
        address=row["address"],
    )
    return Crash(
        id=row["public_id"],
        at=as_utc(row["at"]),
        report=report,
        size=row["size"],
        file_name=row["file_name"],
        minidump_ok=bool(row["minidump_ok"]),
    )


async def remove_expired(
    engine: AsyncEngine,
    directory: Path,
    keep_days: float,
    *,
    now: datetime | None = None,
) -> int:
    """Remove crashes older than ``keep_days``, files first; the rows removed.

    Files go before rows: should the database fail in between, the next run
    finds the rows again, whereas a file without its row would never be found.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    removed = 0
    while batch := await _expired(engine, cutoff):
        await anyio.to_thread.run_sync(_unlink, directory, list(batch.values()))
        async with engine.begin() as conn:
            table = db.crashes
            await conn.execute(sa.delete(table).where(table.c.id.in_(list(batch))))
        removed += len(batch)
    await anyio.to_thread.run_sync(_sweep, directory, cutoff.timestamp())
    return removed


async def _expired(engine: AsyncEngine, cutoff: datetime) -> dict[int, str]:
    table = db.crashes
    query = sa.select(table.c.id, table.c.file_name).where(table.c.at < cutoff)
    async with engine.connect() as conn:
        rows = await conn.execute(query.limit(_CLEAN_BATCH))
        return {row.id: row.file_name for row in rows}


def _unlink(directory: Path, file_names: list[str]) -> None:
    for file_name in file_names:
        (directory / file_name).unlink(missing_ok=True)


def _sweep(directory: Path, cutoff: float) -> None:
    # Files no row points at: uploads cut short by a dying process, and dumps of
    # rows another host removed (each host has its own crash directory).
    if not directory.is_dir():
        return
    abandoned = time.time() - _ABANDONED_PART_SECONDS
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            modified = path.stat().st_mtime
            is_part = path.name.startswith(PART_PREFIX) and path.suffix == PART_SUFFIX
            if (is_part and modified < abandoned) or (
                path.suffix == _DUMP_SUFFIX and modified < cutoff
            ):
                path.unlink()


async def remove_expired_forever(
    engine: AsyncEngine, directory: Path, keep_days: float, seconds: float
) -> None:
    """Run `remove_expired` now and every ``seconds``; a failure waits for the next."""
    while True:
        try:
            removed = await remove_expired(engine, directory, keep_days)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("crash.cleanup_failed", error=str(exc))
        else:
            if removed:
                log.info("crash.cleanup", removed=removed)
        await asyncio.sleep(seconds)
