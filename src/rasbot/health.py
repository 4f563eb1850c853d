"""GET /healthz: can this process answer devices, and how fresh is what it says."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from rasbot.devicefeeds import services
from rasbot.services import Services

router = APIRouter()

DATABASE_CHECK_SECONDS = 2.0


@router.get(
    "/healthz",
    summary="Health",
    responses={503: {"description": "no catalog to answer devices with"}},
)
async def healthz(request: Request) -> JSONResponse:
    """Catalog, sync, rate-limit, database and recording state.

    200 while devices get answers from a catalog, even if GitHub or the database is
    away (``status`` is then ``degraded``); 503 when there is no catalog at all.
    """
    svc = services(request)
    database = await _database_reachable(svc)
    report = _report(svc, database)
    serving = svc.syncer.catalog.revision > 0
    degraded = not database or svc.syncer.status.last_error is not None
    report["status"] = (
        "unavailable" if not serving else ("degraded" if degraded else "ok")
    )
    return JSONResponse(report, status_code=200 if serving else 503)


async def _database_reachable(svc: Services) -> bool:
    async def ping() -> None:
        async with svc.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), DATABASE_CHECK_SECONDS)
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True


def _report(svc: Services, database: bool) -> dict[str, Any]:
    catalog, status = svc.syncer.catalog, svc.syncer.status
    limit = svc.syncer.source.rate_limit
    now = datetime.now(UTC)
    return {
        "catalog": {
            "revision": catalog.revision,
            "releases": len(catalog.releases),
            "problems": len(catalog.problems),
            "fetched_at": _iso(catalog.fetched_at),
            "changed_at": _iso(catalog.changed_at),
            "age_seconds": _age(catalog.fetched_at, now),
        },
        "sync": {
            "source": svc.syncer.source.description,
            "last_attempt": _iso(status.last_attempt),
            "last_success": _iso(status.last_success),
            "last_error": status.last_error,
            "consecutive_failures": status.consecutive_failures,
            "paused_seconds": round(svc.syncer.rate_limited_for(), 1),
            # Of the processes sharing the database, one polls the source.
            "poller": svc.poller is not None and svc.poller.held,
        },
        "rate_limit": {
            "limit": limit.limit,
            "remaining": limit.remaining,
            "reset_in_seconds": (
                None
                if limit.reset_at is None
                else max(0, round(limit.reset_at - time.time()))
            ),
        },
        "database": {"reachable": database},
        "recording": {
            "pending": svc.recorder.pending,
            "written": svc.recorder.written,
            "dropped": svc.recorder.dropped,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _age(moment: datetime | None, now: datetime) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None
