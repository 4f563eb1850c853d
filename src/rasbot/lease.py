"""A lease in the database: one process among many does a job at a time.

The holder renews it well before it expires; when the holder dies, the lease runs
out and another process takes it over. Taking and renewing is one conditional
UPDATE, so two processes can never both believe they hold it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db

log = structlog.get_logger(__name__)


def process_name() -> str:
    """Host, process id and a random part: unique even across container restarts."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease called ``name``, held for ``seconds`` at a time."""

    def __init__(self, engine: AsyncEngine, name: str, seconds: float) -> None:
        self._engine = engine
        self.name = name
        self.seconds = seconds
        self.holder = process_name()
        self.held = False

    async def acquire(self) -> bool:
        """Take or renew the lease if it is free or ours; False if another has it."""
        try:
            held = await self._take()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("lease.unavailable", lease=self.name, error=str(exc))
            held = False
        if held != self.held:
            log.info("lease.changed", lease=self.name, held=held, holder=self.holder)
        self.held = held
        return held

    async def _take(self) -> bool:
        now = _now_ms()
        expires = now + int(self.seconds * 1000)
        table = db.leases
        async with self._engine.begin() as conn:
            taken = await conn.execute(
                sa.update(table)
                .where(table.c.name == self.name)
                .where(sa.or_(table.c.holder == self.holder, table.c.expires_ms < now))
                .values(holder=self.holder, expires_ms=expires)
            )
            if taken.rowcount == 1:
                return True
            exists = await conn.scalar(
                sa.select(table.c.name).where(table.c.name == self.name)
            )
        if exists is not None:
            return False
        return await self._create(expires)

    async def _create(self, expires: int) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    sa.insert(db.leases).values(
                        name=self.name, holder=self.holder, expires_ms=expires
                    )
                )
        except IntegrityError:
            return False  # another process created it first
        return True

    async def release(self) -> None:
        """Give the lease up, so another process need not wait for it to expire."""
        if not self.held:
            return
        table = db.leases
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    sa.delete(table)
                    .where(table.c.name == self.name)
                    .where(table.c.holder == self.holder)
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("lease.release_failed", lease=self.name, error=str(exc))
        self.held = False


def _now_ms() -> int:
    return int(time.time() * 1000)
