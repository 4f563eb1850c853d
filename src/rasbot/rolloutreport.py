"""A rollout's health next to the previous release's, and what it means.

A `Report` holds the numbers of a release per device type (rasbot.rollouthealth)
since its rollout started, or was last resumed, and the previous release's numbers
over the same length of time from its own start. `verdicts` says which device types
are over the thresholds; the chat, the alerts and the dashboard show the same
report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot.catalog import Catalog, Release
from rasbot.chat import texts
from rasbot.chat.replies import Table, table
from rasbot.rollout import (
    HALTED,
    RUNNING,
    RolloutRow,
    Rollouts,
    current_share,
    effective_plan,
    halted_names,
)
from rasbot.rollouthealth import Health, Window, release_health
from rasbot.rolloutplan import Plan
from rasbot.selection import LADDER
from rasbot.settings import Settings

NO_VALUE = "-"


@dataclass(frozen=True)
class Thresholds:
    """When a device type's health halts a rollout (the RASBOT_ROLLOUT_* settings)."""

    confirm: timedelta = timedelta(hours=12)
    max_missing_percent: float = 5.0
    max_crash_percent: float = 10.0
    min_devices: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """The thresholds the settings give."""
        return cls(
            confirm=timedelta(hours=settings.rollout_confirm_hours),
            max_missing_percent=settings.rollout_max_missing_percent,
            max_crash_percent=settings.rollout_max_crash_percent,
            min_devices=settings.rollout_min_devices,
        )


@dataclass(frozen=True)
class Report:
    """The health of a release since ``window.start``, and of the one before it."""

    release: Release
    window: Window
    current: dict[str, Health]
    previous_release: Release | None
    previous: dict[str, Health]

    def before(self, device: str) -> Health:
        """The previous release's numbers on ``device`` (zeros when unknown)."""
        return self.previous.get(device) or Health(device)

    @property
    def devices(self) -> list[str]:
        """Device types that staged the release."""
        return [d for d, health in self.current.items() if health.staged]


def previous_release(catalog: Catalog, release: Release) -> Release | None:
    """The highest release below ``release`` that its devices could have had."""
    return next(
        (
            r
            for r in catalog.on_channels(LADDER[release.channel])
            if r.version < release.version
        ),
        None,
    )


async def make_report(
    engine: AsyncEngine,
    rollouts: Rollouts,
    catalog: Catalog,
    release: Release,
    thresholds: Thresholds,
    now: datetime,
) -> Report:
    """The report of ``release`` in ``catalog`` up to ``now``."""
    row = rollouts.row(release.id)
    start = row.judged_from if row else now
    window = Window(start, now, thresholds.confirm)
    current = await release_health(engine, release, window)

    # The previous release over as long from its own start: like with like.
    previous = previous_release(catalog, release)
    before: dict[str, Health] = {}
    if previous is not None:
        began = _start_of(previous, rollouts.row(previous.id))
        earlier = Window(began, began + (now - start), thresholds.confirm)
        before = await release_health(engine, previous, earlier)
    return Report(release, window, current, previous, before)


def _start_of(release: Release, row: RolloutRow | None) -> datetime:
    return row.started_at if row is not None else release.published_at


# --- judging ---------------------------------------------------------------


def verdicts(report: Report, thresholds: Thresholds) -> dict[str, str]:
    """The device types over a threshold, each with the reason."""
    found: dict[str, str] = {}
    for device, health in report.current.items():
        before = report.before(device)
        reason = _missing(health, before, thresholds) or _crashing(
            health, before, thresholds
        )
        if reason:
            found[device] = reason
    return found


def _baseline(rate: float | None, devices: int, thresholds: Thresholds) -> float:
    # A handful of devices says nothing about the previous release: count it as 0.
    return rate if rate is not None and devices >= thresholds.min_devices else 0.0


def _missing(health: Health, before: Health, thresholds: Thresholds) -> str | None:
    rate = health.missing_rate
    if rate is None or health.judged < thresholds.min_devices:
        return None
    base = _baseline(before.missing_rate, before.judged, thresholds)
    if (rate - base) * 100 <= thresholds.max_missing_percent:
        return None
    return texts.ROLLOUT_MISSING.format(
        device=health.device,
        missing=health.missing,
        judged=health.judged,
        hours=f"{thresholds.confirm.total_seconds() / 3600:g}",
        rate=percent(rate),
        before=percent(base),
    )


def _crashing(health: Health, before: Health, thresholds: Thresholds) -> str | None:
    rate = health.crash_rate
    if rate is None or health.confirmed < thresholds.min_devices:
        return None
    base = _baseline(before.crash_rate, before.confirmed, thresholds)
    if (rate - base) * 100 <= thresholds.max_crash_percent:
        return None
    return texts.ROLLOUT_CRASHING.format(
        device=health.device,
        crashes=health.crashes,
        confirmed=health.confirmed,
        rate=f"{rate * 100:.1f}",
        before=f"{base * 100:.1f}",
    )


# --- showing -----------------------------------------------------------------


def percent(rate: float | None) -> str:
    """A rate as a percentage for people; `-` when there is none."""
    return NO_VALUE if rate is None else f"{rate * 100:.1f}%"


def share_text(share: int) -> str:
    """A share in hundredths of a percent as `25%`."""
    return f"{share / 100:g}%"


def health_table(report: Report) -> Table:
    """The report as a table: one row per device type that was offered the release."""
    title = texts.ROLLOUT_HEALTH.format(since=texts.when(report.window.start))
    if report.previous_release is not None:
        hours = (report.window.end - report.window.start).total_seconds() / 3600
        title += texts.ROLLOUT_HEALTH_BEFORE.format(
            previous=report.previous_release.name, hours=f"{hours:.0f}"
        )
    rows = [_row(health, report.before(d)) for d, health in report.current.items()]
    return table(texts.ROLLOUT_HEALTH_COLUMNS, rows, title)


def _row(health: Health, before: Health) -> tuple[object, ...]:
    return (
        health.device,
        health.offered,
        health.staged,
        health.confirmed,
        f"{health.missing}/{health.judged} {percent(health.missing_rate)}",
        f"{health.crashes} {_per_hundred(health.crash_rate)}",
        percent(before.missing_rate),
        _per_hundred(before.crash_rate),
    )


def _per_hundred(rate: float | None) -> str:
    return NO_VALUE if rate is None else f"{rate * 100:.1f}/100"


def health_summary(report: Report) -> str:
    """The numbers on one line, for the audit log."""
    return "; ".join(
        f"{h.device}: offered {h.offered}, staged {h.staged}, confirmed "
        f"{h.confirmed}, missing {h.missing}/{h.judged}, crashes {h.crashes}"
        for h in report.current.values()
    )


def status_lines(release: Release, row: RolloutRow | None) -> list[str]:
    """Where a rollout stands, in a few sentences."""
    plan = effective_plan(release, row)
    if plan is None and row is None:
        return [
            texts.ROLLOUT_NO_PLAN.format(version=release.name, channel=release.channel)
        ]
    stages = len(plan.stages) if plan else 1
    stage = min(row.stage if row else 0, stages - 1)
    lines = [
        texts.ROLLOUT_STATUS.format(
            version=release.name,
            channel=release.channel,
            state=row.state if row else texts.ROLLOUT_NOT_STARTED,
            share=share_text(current_share(release, row)),
            stage=stage + 1,
            stages=stages,
            since=texts.when(row.stage_started_at if row else release.published_at),
        )
    ]
    if plan is not None and row is not None:
        lines += _plan_lines(plan, row, stage)
    if row is not None:
        lines += _stop_lines(row)
    elif plan is not None:
        lines.append(texts.ROLLOUT_PLAN.format(plan=plan, source=_source(row)))
    return lines


def _plan_lines(plan: Plan, row: RolloutRow, stage: int) -> list[str]:
    lines = []
    if row.state == RUNNING and not row.halted_devices and stage + 1 < len(plan.stages):
        at = row.stage_started_at + plan.wait(stage)
        share = share_text(plan.stages[stage + 1].share)
        lines.append(texts.ROLLOUT_NEXT.format(share=share, at=texts.when(at)))
    lines.append(texts.ROLLOUT_PLAN.format(plan=plan, source=_source(row)))
    return lines


def _source(row: RolloutRow | None) -> str:
    if row is None or not row.plan:
        return texts.ROLLOUT_PLAN_FROM_BODY
    return texts.ROLLOUT_PLAN_FROM_CHAT


def _stop_lines(row: RolloutRow) -> list[str]:
    lines = []
    if row.halted_devices and row.state != HALTED:
        devices = halted_names(row.halted_devices)
        lines.append(texts.ROLLOUT_HALTED_FOR.format(devices=devices))
    if row.rollback_to and row.stopped:
        lines.append(texts.ROLLOUT_ROLLBACK.format(target=row.rollback_to))
    lines.append(
        texts.ROLLOUT_LAST_CHANGE.format(
            reason=row.reason, who=row.changed_by, when=texts.when(row.changed_at)
        )
    )
    return lines
