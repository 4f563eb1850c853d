"""The beta whitelist: device serials entitled to the beta channel.

The database holds the list; each process keeps a copy in memory for `/update` and
reloads it every few seconds, so a change made anywhere (chat, CLI, another
instance) reaches every process without a restart.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db
from rasbot.clock import as_utc

log = structlog.get_logger(__name__)

_SERIAL = re.compile(r"[0-9a-f]{16}")


class WhitelistError(ValueError):
    """A whitelist change that cannot be made, with the reason for the user."""


def normalise_serial(text: str | None) -> str | None:
    """A Raspberry Pi serial as 16 lowercase hex digits, or None if it is not one."""
    serial = (text or "").strip().lower()
    return serial if _SERIAL.fullmatch(serial) else None


@dataclass(frozen=True)
class Entry:
    """One whitelisted device."""

    name: str
    serial: str
    added_by: str
    added_at: datetime


class Whitelist:
    """The whitelist in the database and its in-memory copy."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._serials: frozenset[str] = frozenset()

    def __contains__(self, serial: object) -> bool:
        return isinstance(serial, str) and serial.lower() in self._serials

    async def reload(self) -> None:
        """Read the serials again; on a database error keep the ones we had."""
        try:
            async with self._engine.connect() as conn:
                rows = await conn.execute(sa.select(db.whitelist.c.serial))
                self._serials = frozenset(row.serial for row in rows)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("whitelist.reload_failed", error=str(exc))

    async def reload_forever(self, seconds: float) -> None:
        """Reload every ``seconds``."""
        while True:
            await asyncio.sleep(seconds)
            await self.reload()

    async def entries(self) -> list[Entry]:
        """Every entry, by name."""
        table = db.whitelist
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(table).order_by(table.c.name))
            return [
                Entry(r.name, r.serial, r.added_by, as_utc(r.added_at)) for r in rows
            ]

    async def add(self, name: str, serial: str, added_by: str) -> Entry:
        """Whitelist ``serial`` under ``name``; raise WhitelistError if it cannot be."""
        normal = _checked(serial)
        if not name.strip():
            raise WhitelistError("a name is needed, e.g. the tester's name")
        entry = Entry(name.strip()[:128], normal, added_by[:128], datetime.now(UTC))
        async with self._engine.begin() as conn:
            found = await conn.scalar(
                sa.select(db.whitelist.c.name).where(db.whitelist.c.serial == normal)
            )
            if found is not None:
                raise WhitelistError(f"{normal} is already whitelisted as {found}")
            await conn.execute(
                sa.insert(db.whitelist).values(
                    serial=entry.serial,
                    name=entry.name,
                    added_by=entry.added_by,
                    added_at=entry.added_at,
                )
            )
        await self.reload()
        return entry

    async def remove(self, name: str, serial: str) -> None:
        """Remove ``serial``; the name must match, to catch a mistyped serial."""
        normal = _checked(serial)
        table = db.whitelist
        async with self._engine.begin() as conn:
            found = await conn.scalar(
                sa.select(table.c.name).where(table.c.serial == normal)
            )
            if found is None:
                raise WhitelistError(f"{normal} is not whitelisted")
            if found.lower() != name.strip().lower():
                raise WhitelistError(f"{normal} is whitelisted as {found}, not {name}")
            await conn.execute(sa.delete(table).where(table.c.serial == normal))
        await self.reload()


def _checked(serial: str) -> str:
    normal = normalise_serial(serial)
    if normal is None:
        raise WhitelistError(f"{serial!r} is not a serial: 16 hex digits are needed")
    return normal
