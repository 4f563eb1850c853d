"""Changes to a rollout, by operators (chat, CLI) and by the watch.

Each change is an `Edit` of the stored row, applied by `Rollouts.change` inside one
transaction: it sees the row as it is in the database, not as this process last
read it, and raises `RolloutError` with a reason for the user when the change
makes no sense in that state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from rasbot.catalog import Catalog, Release
from rasbot.rollout import (
    DONE,
    HALTED,
    PAUSED,
    RUNNING,
    Edit,
    RolloutError,
    RolloutRow,
    Rollouts,
    effective_plan,
    release_named,
)
from rasbot.rolloutplan import ROLLOUT_CHANNELS, Plan
from rasbot.selection import LADDER


def check_rollable(release: Release) -> None:
    """Raise `RolloutError` unless ``release`` is on a channel that rolls out."""
    if release.channel not in ROLLOUT_CHANNELS:
        raise RolloutError(
            f"`{release.name}` is a {release.channel} release: it goes to its "
            "testers at once, without a rollout"
        )


def _planned(release: Release, row: RolloutRow) -> Plan:
    plan = effective_plan(release, row)
    if plan is None:
        raise RolloutError(
            f"`{release.name}` has no rollout plan, so it goes to every device: "
            "`set` a plan, or `halt` it"
        )
    return plan


# --- by operators ------------------------------------------------------------


def pause(release: Release) -> Edit:
    """Hold the rollout at its share: it advances no more until resumed."""

    def edit(row: RolloutRow) -> RolloutRow:
        _planned(release, row)
        if row.state != RUNNING:
            raise RolloutError(f"the rollout of `{release.name}` is {row.state}")
        return replace(row, state=PAUSED, reason="paused")

    return edit


def resume(release: Release, now: datetime) -> Edit:
    """Lift a pause or halt; health is judged afresh from now."""

    def edit(row: RolloutRow) -> RolloutRow:
        if row.state not in (PAUSED, HALTED) and not row.halted_devices:
            raise RolloutError(f"the rollout of `{release.name}` is {row.state}")
        return replace(
            row,
            state=RUNNING,
            halted_devices=frozenset(),
            rollback_to=None,
            stage_started_at=now,
            judged_from=now,
            reason="resumed",
        )

    return edit


def halt(release: Release) -> Edit:
    """Offer the release to no device any more (those on it keep it)."""

    def edit(row: RolloutRow) -> RolloutRow:
        if row.state == HALTED:
            raise RolloutError(f"the rollout of `{release.name}` is halted already")
        return replace(row, state=HALTED, reason="halted by hand")

    return edit


def set_plan(release: Release, plan: Plan, now: datetime) -> Edit:
    """Replace the plan; the rollout goes on from the new plan's first stage."""

    def edit(row: RolloutRow) -> RolloutRow:
        state = RUNNING if row.state == DONE else row.state
        return replace(
            row,
            plan=str(plan),
            stage=0,
            state=state,
            stage_started_at=now,
            reason=f"plan set: {plan}",
        )

    return edit


def roll_back_to(target: Release) -> Edit:
    """Offer ``target`` to the devices on the halted release."""

    def edit(row: RolloutRow) -> RolloutRow:
        if not row.stopped:
            raise RolloutError(f"`{row.version}` is not halted")
        return replace(
            row, rollback_to=target.name, reason=f"rollback to {target.name}"
        )

    return edit


async def roll_back(
    rollouts: Rollouts, catalog: Catalog, channel: str, version: str, actor: str
) -> tuple[Release, list[Release]]:
    """Roll the halted releases of ``channel`` back to ``version``.

    Returns the release rolled back to and the halted ones rolled back from.
    """
    if channel not in ROLLOUT_CHANNELS:
        raise RolloutError(f"`{channel}` is not a channel: stable or prerelease")
    target = release_named(catalog, version)
    if target is None or target.channel not in LADDER[channel]:
        raise RolloutError(f"no {channel} release `{version}` in the catalog")
    halted = [
        release
        for release in catalog.on_channels((channel,))
        if release.version > target.version and _stopped(rollouts, release)
    ]
    if not halted:
        raise RolloutError(
            f"no halted {channel} release above `{target.name}`: "
            "halt one first with `rollout <version> halt`"
        )
    for release in halted:
        await rollouts.change(release, actor, roll_back_to(target))
    return target, halted


def _stopped(rollouts: Rollouts, release: Release) -> bool:
    row = rollouts.row(release.id)
    return row is not None and row.stopped


# --- by the watch ------------------------------------------------------------


def start(row: RolloutRow) -> RolloutRow | None:
    """Begin the rollout at its first stage, unless it has begun already.

    `Rollouts.change` stores the new row it offers; an existing one stays.
    """
    return None


def advance(release: Release, seen: RolloutRow, now: datetime) -> Edit:
    """Go to the next stage, if nobody changed the rollout since ``seen``."""

    def edit(row: RolloutRow) -> RolloutRow | None:
        if row.state != RUNNING or row.stage != seen.stage or row.halted_devices:
            return None
        stage = _planned(release, row).stage(row.stage + 1)
        return replace(
            row,
            stage=row.stage + 1,
            stage_started_at=now,
            reason=f"advanced to {stage.share / 100:g}%",
        )

    return edit


def complete(seen: RolloutRow) -> Edit:
    """Mark the rollout done: every device has had it long enough."""

    def edit(row: RolloutRow) -> RolloutRow | None:
        if row.state != RUNNING or row.stage != seen.stage or row.halted_devices:
            return None
        return replace(row, state=DONE, reason="complete")

    return edit


def halt_devices(devices: Iterable[str], every: Iterable[str], reason: str) -> Edit:
    """Stop offering the release to ``devices``; halt it when that is ``every`` type.

    ``reason`` names the devices and their numbers.
    """
    wanted = frozenset(devices)

    def edit(row: RolloutRow) -> RolloutRow | None:
        if row.state in (HALTED, DONE) or wanted <= row.halted_devices:
            return None
        halted = row.halted_devices | wanted
        state = HALTED if halted >= frozenset(every) else row.state
        return replace(
            row, state=state, halted_devices=halted, reason=f"halted: {reason}"
        )

    return edit
