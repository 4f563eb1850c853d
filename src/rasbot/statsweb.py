"""GET /json/stats for the web site, and the statistics dashboard.

Both answer from a per-process cache (``RASBOT_STATS_CACHE_SECONDS``), and one
computation at a time per answer: a burst of visitors costs the database one set of
queries. The dashboard is HTML rendered here (Jinja2, no build step) with PNG charts
from rasbot.charts; it shows counts only, never a serial or an address.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Annotated, Generic, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from rasbot import charts, pages, statsreport
from rasbot.catalog import Release
from rasbot.devicefeeds import services
from rasbot.services import Services
from rasbot.settings import Settings
from rasbot.stats import AssetCount, Period, Stats, utc_now
from rasbot.statsreport import CHARTS, MAX_DAYS, AdoptionDay, Summary

if TYPE_CHECKING:
    from jinja2 import Environment

router = APIRouter()

T = TypeVar("T")

#: Entries each cache holds at most: periods and releases asked for are bounded,
#: but by the visitors.
CACHE_ENTRIES = 256
PERIOD_CHOICES = (7, 30, 90, 365)
DEFAULT_DAYS = 30
#: Rows of the per-day table under the charts.
RECENT_DAYS = 14


@cache
def _templates() -> Environment:
    templates = pages.environment()
    templates.filters["iso"] = _iso
    templates.globals["now"] = utc_now
    return templates


Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days to cover.")]


class TtlCache(Generic[T]):
    """Values kept ``seconds``; concurrent misses for one key share one computation."""

    def __init__(self, seconds: float, entries: int = CACHE_ENTRIES) -> None:
        self._seconds = seconds
        self._entries = entries
        self._values: dict[Hashable, tuple[float, T]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def get(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``key``, or ``make()``'s, cached."""
        found = self._fresh(key)
        if found is not None:
            return found[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._fresh(key)
            if found is not None:
                return found[1]
            value = await make()
            self._store(key, value)
            return value

    def _fresh(self, key: Hashable) -> tuple[float, T] | None:
        found = self._values.get(key)
        return found if found is not None and found[0] > time.monotonic() else None

    def _store(self, key: Hashable, value: T) -> None:
        if self._seconds <= 0:
            self._locks.pop(key, None)
            return
        if len(self._values) >= self._entries:
            # Dicts keep insertion order: the first key is the oldest.
            oldest = next(iter(self._values))
            self._values.pop(oldest)
            self._locks.pop(oldest, None)
        self._values[key] = (time.monotonic() + self._seconds, value)


@dataclass
class _Caches:
    json: TtlCache[bytes]
    pages: TtlCache[str]
    charts: TtlCache[bytes]


def _caches(request: Request, settings: Settings) -> _Caches:
    caches: _Caches | None = getattr(request.app.state, "stats_caches", None)
    if caches is None:
        seconds = settings.stats_cache_seconds
        caches = _Caches(TtlCache(seconds), TtlCache(seconds), TtlCache(seconds))
        request.app.state.stats_caches = caches
    return caches


def _unavailable() -> Response:
    return PlainTextResponse("statistics unavailable: database\n", status_code=503)


# -- /json/stats ----------------------------------------------------------------


@router.get(
    "/json/stats",
    summary="Statistics for the web site",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}},
        503: {"description": "database unavailable"},
    },
)
async def json_stats(request: Request) -> Response:
    """Active devices and installs of the last 7 days (PROTOCOL.md 7), with CORS."""
    svc = services(request)
    cors = _cors(request.headers.get("origin"), svc.settings)
    try:
        body = await _caches(request, svc.settings).json.get(
            "json", lambda: _json_body(svc)
        )
    except (SQLAlchemyError, OSError):
        return _unavailable()
    seconds = int(svc.settings.stats_cache_seconds)
    headers = {**cors, "Cache-Control": f"public, max-age={seconds}"}
    return Response(body, media_type="application/json", headers=headers)


async def _json_body(svc: Services) -> bytes:
    document = await Stats(svc.engine).json_stats()
    return json.dumps(document, separators=(",", ":")).encode()


def _cors(origin: str | None, settings: Settings) -> dict[str, str]:
    """CORS headers: the origin echoed when allowed, nothing otherwise."""
    # Vary on every answer, so that a shared cache keeps one per origin.
    headers = {"Vary": "Origin"}
    if origin and origin.rstrip("/") in settings.stats_origin_set:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


# -- the dashboard --------------------------------------------------------------


@dataclass(frozen=True)
class _ChartLink:
    name: str
    title: str
    url: str


@dataclass(frozen=True)
class _Page:
    days: int
    choices: tuple[int, ...]
    summary: Summary
    daily: list[tuple[date, int]]
    weekly: list[tuple[date, int]]
    release: Release | None
    adoption: list[AdoptionDay]
    github: list[AssetCount]
    charts: list[_ChartLink]


def _enabled(svc: Services) -> None:
    if not svc.settings.dashboard:
        raise HTTPException(status_code=404, detail="Not Found")


@router.get(
    "/dashboard",
    summary="Statistics dashboard",
    response_class=HTMLResponse,
    responses={404: {"description": "dashboard turned off"}},
)
async def dashboard(request: Request, days: Days = DEFAULT_DAYS) -> Response:
    """Charts and numbers of the last ``days`` days, as a web page."""
    svc = services(request)
    _enabled(svc)
    try:
        html = await _caches(request, svc.settings).pages.get(
            ("page", days), lambda: _render_page(svc, days)
        )
    except (SQLAlchemyError, OSError):
        return _unavailable()
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


async def _render_page(svc: Services, days: int) -> str:
    page = await _page(Stats(svc.engine), svc, days)
    return _templates().get_template("dashboard.html").render(page=page)


async def _page(stats: Stats, svc: Services, days: int) -> _Page:
    catalog = svc.syncer.catalog
    period = Period.last(days)
    release = statsreport.newest_stable(catalog)
    daily = await stats.active_daily(period)
    adoption = (
        [] if release is None else await statsreport.adoption(stats, release, period)
    )
    github = sorted(await stats.github_totals(), key=lambda a: -a.downloads)
    return _Page(
        days=days,
        choices=PERIOD_CHOICES,
        summary=await statsreport.summary(stats, catalog, days),
        daily=sorted(daily.items(), reverse=True)[:RECENT_DAYS],
        weekly=sorted((await stats.active_weekly(period)).items(), reverse=True),
        release=release,
        adoption=adoption[-RECENT_DAYS:][::-1],
        github=github[:20],
        charts=_chart_links(days, release),
    )


_TITLES = {
    "active": "Active devices per day",
    "versions": "Versions in the field",
    "installs": "Installs per day by platform",
    "downloads": "Downloads per day",
    "adoption": "Adoption of the newest stable release",
    "checks": "Update checks per hour",
}


def _chart_links(days: int, release: Release | None) -> list[_ChartLink]:
    names = [name for name in CHARTS if name != "adoption" or release is not None]
    return [
        _ChartLink(name, _TITLES[name], f"dashboard/{name}.png?days={days}")
        for name in names
    ]


@router.get(
    "/dashboard/{name}.png",
    summary="A chart of the dashboard",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        404: {"description": "no such chart or release, or dashboard turned off"},
    },
)
async def dashboard_chart(
    request: Request,
    name: str,
    days: Days = DEFAULT_DAYS,
    version: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """One chart as PNG; ``version`` picks the release of the adoption chart."""
    svc = services(request)
    _enabled(svc)
    release = _chart_release(svc, name, version)
    key = ("chart", name, days, release.tag if release else None)
    try:
        png = await _caches(request, svc.settings).charts.get(
            key, lambda: _draw(svc, name, days, release)
        )
    except (SQLAlchemyError, OSError):
        return _unavailable()
    seconds = int(svc.settings.stats_cache_seconds)
    return Response(
        png, media_type="image/png", headers={"Cache-Control": f"max-age={seconds}"}
    )


def _chart_release(svc: Services, name: str, version: str | None) -> Release | None:
    if name not in CHARTS:
        raise HTTPException(status_code=404, detail="no such chart")
    if name != "adoption":
        return None
    catalog = svc.syncer.catalog
    if version:
        release = statsreport.find_release(catalog, version)
    else:
        release = statsreport.newest_stable(catalog)
    if release is None:
        raise HTTPException(status_code=404, detail="no such release")
    return release


async def _draw(svc: Services, name: str, days: int, release: Release | None) -> bytes:
    stats, catalog = Stats(svc.engine), svc.syncer.catalog
    chart = await statsreport.chart(name, stats, catalog, Period.last(days), release)
    return await charts.render_async(chart)


def _iso(day: date) -> str:
    return day.isoformat()
