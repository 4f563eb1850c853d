"""The rollout page of the dashboard: `/dashboard/rollout/<version>`.

Stage, share and the health numbers per device type next to the previous
release's, as chat's `rollout <version>` shows them, and a chart of the missing
devices. Counts only: never a serial or an address. Read fresh on every visit: a
rollout is watched while it may halt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError

from rasbot import charts, pages
from rasbot.catalog import Release
from rasbot.devicefeeds import services
from rasbot.rollout import RolloutRow, current_share, effective_plan, release_named
from rasbot.rolloutplan import Plan
from rasbot.rolloutreport import (
    Report,
    Thresholds,
    make_report,
    percent,
    share_text,
    status_lines,
)
from rasbot.services import Services

if TYPE_CHECKING:
    from jinja2 import Environment

router = APIRouter()


@cache
def _templates() -> Environment:
    templates = pages.environment()
    templates.filters["code"] = _code
    return templates


@dataclass(frozen=True)
class _Page:
    release: Release
    row: RolloutRow | None
    plan: Plan | None
    share: str
    status: list[str]
    report: Report
    thresholds: Thresholds

    def rate(self, value: float | None) -> str:
        """A rate as a percentage."""
        return percent(value)

    def per_hundred(self, value: float | None) -> str:
        """A rate per 100 devices."""
        return "-" if value is None else f"{value * 100:.1f}"


def _found(svc: Services, version: str) -> Release:
    release = release_named(svc.syncer.catalog, version)
    if not svc.settings.dashboard or release is None:
        raise HTTPException(status_code=404, detail="no such release")
    return release


async def _report(svc: Services, release: Release) -> Report:
    await svc.rollouts.reload()
    return await make_report(
        svc.engine,
        svc.rollouts,
        svc.syncer.catalog,
        release,
        Thresholds.from_settings(svc.settings),
        svc.rollouts.clock(),
    )


def _unavailable() -> Response:
    return PlainTextResponse("rollout unavailable: database\n", status_code=503)


@router.get(
    "/dashboard/rollout/{version}/missing.png",
    summary="Missing devices of a rollout, per device type",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        404: {"description": "no such release, or dashboard turned off"},
    },
)
async def rollout_chart(request: Request, version: str) -> Response:
    """The share of staged devices that did not come back, per device type."""
    svc = services(request)
    release = _found(svc, version)
    try:
        report = await _report(svc, release)
    except (SQLAlchemyError, OSError):
        return _unavailable()
    judged = [h for h in report.current.values() if h.missing_rate is not None]
    chart = charts.Chart(
        title=f"{release.name}: % of staged devices missing",
        kind="barh",
        x=tuple(h.device for h in judged),
        series=(
            charts.Series(
                "missing", tuple(round(100 * (h.missing_rate or 0), 1) for h in judged)
            ),
        ),
        unit="%",
    )
    png = await charts.render_async(chart)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get(
    "/dashboard/rollout/{version}",
    summary="A release's staged rollout",
    response_class=HTMLResponse,
    responses={
        404: {"description": "no such release, or dashboard turned off"},
        503: {"description": "database unavailable"},
    },
)
async def rollout_page(request: Request, version: str) -> Response:
    """Stage, share and health per device type of one release's rollout."""
    svc = services(request)
    release = _found(svc, version)
    try:
        report = await _report(svc, release)
    except (SQLAlchemyError, OSError):
        return _unavailable()
    row = svc.rollouts.row(release.id)
    page = _Page(
        release=release,
        row=row,
        plan=effective_plan(release, row),
        share=share_text(current_share(release, row)),
        status=status_lines(release, row),
        report=report,
        thresholds=Thresholds.from_settings(svc.settings),
    )
    html = _templates().get_template("rollout.html").render(page=page)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _code(text: str) -> Markup:
    """Chat text for HTML: `backticks` become code."""
    parts = str(escape(text)).split("`")
    return Markup(  # noqa: S704 (each part was escaped above)
        "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    )
