"""`rollouts`, `rollout <version> status|pause|resume|halt|set <plan>`, `rollback`.

`rollout <version>` shows the stage and health of a release's rollout to anyone;
its changes are for admins, and checked here because they share the command's
name with the status. Every change is in the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from rasbot.catalog import Release
from rasbot.chat import texts
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Reply, table
from rasbot.rollout import (
    HALTED,
    RolloutError,
    current_share,
    effective_plan,
    halted_names,
    release_named,
)
from rasbot.rolloutcontrol import (
    check_rollable,
    halt,
    pause,
    resume,
    roll_back,
    set_plan,
)
from rasbot.rolloutplan import EXAMPLE, ROLLOUT_CHANNELS, parse_plan
from rasbot.rolloutreport import (
    Thresholds,
    health_table,
    make_report,
    share_text,
    status_lines,
)

log = structlog.get_logger(__name__)

family = Family("rollout")

#: The audit log's action for a refused command, as the dispatcher writes it.
REFUSED_ACTION = "refused"


@family.command(
    "rollouts",
    help="Every staged rollout: its state, share and stage.",
)
async def rollouts(ctx: Context) -> Reply:
    """One line per release with a plan or a stored rollout."""
    state = ctx.services.rollouts
    await state.reload()
    rows = []
    for release in ctx.services.syncer.catalog.on_channels(ROLLOUT_CHANNELS):
        row = state.row(release.id)
        plan = effective_plan(release, row)
        if row is None and plan is None:
            continue
        stages = len(plan.stages) if plan else 1
        stage = min(row.stage if row else 0, stages - 1) + 1
        since = row.stage_started_at if row else release.published_at
        rows.append(
            (
                release.name,
                release.channel,
                row.state if row else texts.ROLLOUT_NOT_STARTED,
                share_text(current_share(release, row)),
                f"{stage}/{stages}",
                texts.when(since),
            )
        )
    if not rows:
        return Reply.say(texts.ROLLOUTS_NONE)
    return Reply.say(table(texts.ROLLOUTS_COLUMNS, rows))


@family.command(
    "rollout",
    args=(
        r"(?P<version>\S+)"
        r"(?:\s+(?P<action>status|pause|resume|halt)|\s+set\s+(?P<plan>.+))?"
    ),
    usage="rollout <version> [status|pause|resume|halt|set <plan>]",
    help=(
        "A release's staged rollout: its stage and health per device type; "
        f"admins pause, resume, halt it or set its plan (`{EXAMPLE}`)."
    ),
)
async def rollout(ctx: Context) -> Reply:
    """The status of a rollout, or one change to it."""
    release = release_named(ctx.services.syncer.catalog, ctx.arg("version"))
    if release is None:
        return Reply.error(texts.NO_SUCH_RELEASE.format(version=ctx.arg("version")))
    action = ctx.arg("action").lower() or ("set" if ctx.arg("plan") else "status")
    if action == "status":
        return await _status(ctx, release)
    if not ctx.caller.is_admin:
        return await _refuse(ctx, f"rollout {release.name} {action}")
    try:
        check_rollable(release)
        reply = await _CHANGES[action](ctx, release)
    except RolloutError as exc:
        return Reply.error(texts.ROLLOUT_FAILED.format(reason=exc))
    if reply.ok:
        await ctx.record(f"{release.name} {action} {ctx.arg('plan')}".strip())
    return reply


async def _status(ctx: Context, release: Release) -> Reply:
    svc = ctx.services
    await svc.rollouts.reload()
    row = svc.rollouts.row(release.id)
    lines = status_lines(release, row)
    if row is None and effective_plan(release, row) is None:
        return Reply.say(*lines)
    report = await make_report(
        svc.engine,
        svc.rollouts,
        svc.syncer.catalog,
        release,
        Thresholds.from_settings(svc.settings),
        svc.rollouts.clock(),
    )
    return Reply.say("\n".join(lines), health_table(report))


async def _refuse(ctx: Context, line: str) -> Reply:
    # As the dispatcher refuses admin commands: the log, and the audit log.
    log.warning("chat.refused", command=line, actor=ctx.caller.id)
    await ctx.audit.record(ctx.caller.id, REFUSED_ACTION, line)
    return Reply.error(texts.REFUSED.format(name=line))


async def _pause(ctx: Context, release: Release) -> Reply:
    _, row = await ctx.services.rollouts.change(release, ctx.caller.id, pause(release))
    share = share_text(current_share(release, row))
    return Reply.say(texts.ROLLOUT_PAUSED.format(version=release.name, share=share))


async def _resume(ctx: Context, release: Release) -> Reply:
    rollouts = ctx.services.rollouts
    edit = resume(release, rollouts.clock())
    _, row = await rollouts.change(release, ctx.caller.id, edit)
    share = share_text(current_share(release, row))
    return Reply.say(texts.ROLLOUT_RESUMED.format(version=release.name, share=share))


async def _halt(ctx: Context, release: Release) -> Reply:
    await ctx.services.rollouts.change(release, ctx.caller.id, halt(release))
    return Reply.say(
        texts.ROLLOUT_HALTED_BY_HAND.format(
            version=release.name, channel=release.channel
        )
    )


async def _set(ctx: Context, release: Release) -> Reply:
    plan, reason = parse_plan(ctx.arg("plan"))
    if plan is None:
        return Reply.error(
            texts.ROLLOUT_BAD_PLAN.format(plan=ctx.arg("plan"), reason=reason)
        )
    rollouts = ctx.services.rollouts
    edit = set_plan(release, plan, rollouts.clock())
    _, row = await rollouts.change(release, ctx.caller.id, edit)
    share = share_text(current_share(release, row))
    return Reply.say(
        texts.ROLLOUT_PLAN_SET.format(version=release.name, plan=plan, share=share)
    )


_CHANGES: dict[str, Callable[[Context, Release], Awaitable[Reply]]] = {
    "pause": _pause,
    "resume": _resume,
    "halt": _halt,
    "set": _set,
}


@family.command(
    "rollback",
    args=r"(?P<channel>\S+)\s+(?P<version>\S+)",
    usage="rollback <channel> <version>",
    changes=True,
    help=(
        "Offer an earlier release to the devices on the halted release of a "
        "channel (the only way a lower version is ever offered)."
    ),
)
async def rollback(ctx: Context) -> Reply:
    """Point the halted releases of a channel back at an earlier one."""
    svc = ctx.services
    await svc.rollouts.reload()
    try:
        target, halted = await roll_back(
            svc.rollouts,
            svc.syncer.catalog,
            ctx.arg("channel").lower(),
            ctx.arg("version"),
            ctx.caller.id,
        )
    except RolloutError as exc:
        return Reply.error(texts.ROLLBACK_FAILED.format(reason=exc))
    lines = [_rolled_back(ctx, release, target) for release in halted]
    channel = ctx.arg("channel").lower()
    await ctx.record(f"{channel} to {target.name}: " + " ".join(lines))
    return Reply.say(*lines)


def _rolled_back(ctx: Context, release: Release, target: Release) -> str:
    row = ctx.services.rollouts.row(release.id)
    devices = ""
    if row is not None and row.state != HALTED:
        devices = f" ({halted_names(row.halted_devices)})"
    return texts.ROLLBACK_DONE.format(
        halted=release.name, devices=devices, target=target.name
    )
