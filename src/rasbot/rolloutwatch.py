"""The rollout watch: rollouts start, advance and stop by themselves.

One process at a time (the ``rollouts`` lease) looks at every rollout every
``RASBOT_ROLLOUT_CHECK_SECONDS``:

- a release with a plan and no stored state starts at its first stage;
- a device type whose devices go missing after staging, or crash, more than the
  previous release's did (by the thresholds of the settings) is halted: the
  release is offered to that type no more, and the rollout stops advancing;
  when every type that staged it is halted, the whole rollout is;
- a healthy, running rollout advances when its stage has run its time, and is
  complete once its last stage has run ``RASBOT_ROLLOUT_CONFIRM_HOURS``.

Each decision is written to the audit log with its reason and numbers, and told to
the operators (the Slack alert channel when there is one, the log always).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot.catalog import Catalog, Release
from rasbot.chat import texts
from rasbot.chat.audit import AuditLog
from rasbot.chat.replies import Part, Reply
from rasbot.lease import Lease
from rasbot.rollout import (
    DONE,
    HALTED,
    PAUSED,
    RUNNING,
    WATCH_ACTOR,
    RolloutRow,
    Rollouts,
    current_share,
    effective_plan,
    halted_names,
)
from rasbot.rolloutcontrol import advance, complete, halt_devices, start
from rasbot.rolloutplan import ROLLOUT_CHANNELS
from rasbot.rolloutreport import (
    Report,
    Thresholds,
    health_summary,
    health_table,
    make_report,
    share_text,
    verdicts,
)

log = structlog.get_logger(__name__)

#: Tells the operators something: the alert channel and the log.
Alert = Callable[[Reply], Awaitable[None]]

#: The audit log's action for the watch's decisions.
AUDIT_ACTION = "rollout"


def watched(catalog: Catalog, rollouts: Rollouts) -> list[Release]:
    """Releases whose rollout may still start, advance or halt."""
    found = []
    for release in catalog.releases:
        row = rollouts.row(release.id)
        if release.channel not in ROLLOUT_CHANNELS:
            continue
        if effective_plan(release, row) is None:
            continue
        if row is None or row.state in (RUNNING, PAUSED):
            found.append(release)
    return found


class RolloutWatch:
    """Judges every rollout and acts on it; `check` once, or `watch_forever`."""

    def __init__(
        self,
        rollouts: Rollouts,
        engine: AsyncEngine,
        catalog: Callable[[], Catalog],
        audit: AuditLog,
        alert: Alert,
        thresholds: Thresholds,
    ) -> None:
        self.rollouts = rollouts
        self._engine = engine
        self._catalog = catalog
        self._audit = audit
        #: Replaceable, like the clock of the rollouts.
        self.alert = alert
        self.thresholds = thresholds

    async def watch_forever(self, seconds: float, lease: Lease) -> None:
        """Check every ``seconds`` while this process holds ``lease``."""
        while True:
            await asyncio.sleep(seconds)
            if not await lease.acquire():
                continue
            try:
                await self.check()
            except Exception as exc:
                # A bug must not end the watch: the next round may do better.
                log.error("rollout.watch_failed", exc_info=exc)

    async def check(self) -> None:
        """Look at every rollout once: start, judge, then halt or advance."""
        await self.rollouts.reload()
        catalog = self._catalog()
        for release in watched(catalog, self.rollouts):
            try:
                await self._check(catalog, release)
            except (SQLAlchemyError, OSError) as exc:
                log.warning(
                    "rollout.check_failed", version=release.name, error=str(exc)
                )

    async def _check(self, catalog: Catalog, release: Release) -> None:
        row = self.rollouts.row(release.id) or await self._start(release)
        now = self.rollouts.clock()
        report = await make_report(
            self._engine, self.rollouts, catalog, release, self.thresholds, now
        )
        bad = {
            device: reason
            for device, reason in verdicts(report, self.thresholds).items()
            if device not in row.halted_devices
        }
        if bad:
            await self._halt(release, report, bad)
        elif row.state == RUNNING and not row.halted_devices:
            await self._advance(release, row, report, now)

    async def _start(self, release: Release) -> RolloutRow:
        before, row = await self.rollouts.change(release, WATCH_ACTOR, start)
        if before is None:
            text = texts.ROLLOUT_STARTED.format(
                version=release.name,
                channel=release.channel,
                share=share_text(current_share(release, row)),
                plan=effective_plan(release, row),
            )
            await self._tell(text)
        return row

    async def _halt(
        self, release: Release, report: Report, bad: dict[str, str]
    ) -> None:
        edit = halt_devices(bad, report.devices, "; ".join(bad.values()))
        before, after = await self.rollouts.change(release, WATCH_ACTOR, edit)
        if after == before:
            return
        message = (
            texts.ROLLOUT_HALTED_ALL
            if after.state == HALTED
            else texts.ROLLOUT_HALTED_DEVICES
        )
        text = message.format(
            version=release.name,
            channel=release.channel,
            devices=halted_names(bad),
            reasons="; ".join(bad.values()),
            share=share_text(current_share(release, after)),
        )
        log.warning("rollout.halted", version=release.name, devices=sorted(bad))
        await self._tell(text, report)

    async def _advance(
        self, release: Release, row: RolloutRow, report: Report, now: datetime
    ) -> None:
        plan = effective_plan(release, row)
        if plan is None:
            return
        if row.stage + 1 >= len(plan.stages):
            await self._complete(release, row, now)
            return
        if now < row.stage_started_at + plan.wait(row.stage):
            return
        _, after = await self.rollouts.change(
            release, WATCH_ACTOR, advance(release, row, now)
        )
        if after.stage == row.stage:
            return
        text = texts.ROLLOUT_ADVANCED.format(
            version=release.name,
            share=share_text(current_share(release, after)),
            stage=after.stage + 1,
            stages=len(plan.stages),
        )
        await self._tell(text, report)

    async def _complete(self, release: Release, row: RolloutRow, now: datetime) -> None:
        if now - row.stage_started_at < self.thresholds.confirm:
            return
        _, after = await self.rollouts.change(release, WATCH_ACTOR, complete(row))
        if after.state == DONE:
            await self._tell(texts.ROLLOUT_COMPLETE.format(version=release.name))

    async def _tell(self, text: str, report: Report | None = None) -> None:
        """Record a decision in the audit log and tell the operators."""
        detail = text if report is None else f"{text} [{health_summary(report)}]"
        await self._audit.record(WATCH_ACTOR, AUDIT_ACTION, detail)
        parts: Iterable[str | Part] = (text,)
        if report is not None and report.current:
            parts = (text, health_table(report))
        await self.alert(Reply.say(*parts))
