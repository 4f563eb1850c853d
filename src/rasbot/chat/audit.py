"""The audit log: who changed what, through chat or the CLI, and what syncs changed.

Writing an entry never undoes or fails the change it describes: when the database
refuses the entry, the failure is logged as an error instead, so that it is seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import db
from rasbot.clock import as_utc
from rasbot.sync import SyncResult

log = structlog.get_logger(__name__)

_ELLIPSIS = "…"


@dataclass(frozen=True)
class AuditEntry:
    """One change."""

    id: int
    at: datetime
    actor: str
    action: str
    detail: str


class AuditLog:
    """The ``audit_log`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, actor: str, action: str, detail: str) -> None:
        """Append an entry; a database failure is logged, not raised."""
        values = {
            "at": datetime.now(UTC),
            "actor": _clip(actor, 128),
            "action": _clip(action, 64),
            "detail": _clip(detail, db.AUDIT_DETAIL_MAX),
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(db.audit_log).values(**values))
        except (SQLAlchemyError, OSError) as exc:
            log.error("audit.write_failed", actor=actor, action=action, error=str(exc))

    async def sync_changed(self, trigger: str, result: SyncResult) -> None:
        """Observer of the syncer: record a refresh that changed the catalog."""
        if not result.changes:
            return
        detail = f"revision {result.revision}: " + "; ".join(result.changes)
        await self.record(f"sync:{trigger}", "sync", detail)

    async def recent(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        return await self._select(sa.true(), limit)

    async def since(self, moment: datetime, limit: int) -> list[AuditEntry]:
        """Entries at or after ``moment``, newest first."""
        return await self._select(db.audit_log.c.at >= moment, limit)

    async def search(self, text: str, limit: int) -> list[AuditEntry]:
        """Entries whose actor, action or detail contains ``text``, any case."""
        needle = text.lower()
        columns = (db.audit_log.c.actor, db.audit_log.c.action, db.audit_log.c.detail)
        # autoescape: a `%` or `_` typed in chat is looked for, not a wildcard.
        found = sa.or_(
            *(sa.func.lower(c).contains(needle, autoescape=True) for c in columns)
        )
        return await self._select(found, limit)

    async def _select(
        self, where: sa.ColumnElement[bool], limit: int
    ) -> list[AuditEntry]:
        table = db.audit_log
        query = (
            sa.select(table)
            .where(where)
            .order_by(table.c.at.desc(), table.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
            return [
                AuditEntry(r.id, as_utc(r.at), r.actor, r.action, r.detail)
                for r in rows
            ]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS
