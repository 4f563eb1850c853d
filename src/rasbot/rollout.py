"""Staged rollouts: which devices a release is offered to, and the state behind it.

A release with a plan (its body's ``rollout:`` section, or one set from chat) is
offered to a growing share of the devices. A device's place in a release's rollout
is a bucket from 0 to 9999, a hash of the release id and its serial: the same device
stays in while the share grows, on every process and after restarts. A device
outside the rollout is offered what it would have been offered without that release.

The state of each rollout is a row in the database (stage, paused, halted, device
types halted, rollback). Each process keeps the rows in memory, reloads them every
few seconds like the whitelist, and derives a `RolloutView` from them and the
catalog: an immutable snapshot that /update reads without any I/O.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rasbot import db
from rasbot.catalog import EMPTY, Catalog, Release
from rasbot.clock import as_utc
from rasbot.devices import DeviceMatch
from rasbot.rolloutplan import BUCKETS, ROLLOUT_CHANNELS, Plan, parse_plan
from rasbot.selection import LADDER, Offer, select_update
from rasbot.versions import Version

log = structlog.get_logger(__name__)

RUNNING, PAUSED, HALTED, DONE = "running", "paused", "halted", "done"

#: Who the rows name when rasbot itself changed a rollout.
WATCH_ACTOR = "rollout-watch"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, in UTC: the default clock of the rollouts."""
    return datetime.now(UTC)


class RolloutError(ValueError):
    """A rollout change that cannot be made, with the reason for the user."""


def bucket(release_id: int, serial: str | None) -> int:
    """A device's place in a release's rollout, 0..9999, the same for ever.

    A device without a serial is the last bucket: it gets the release at 100%.
    """
    normal = (serial or "").strip().lower()
    if not normal:
        return BUCKETS - 1
    digest = hashlib.sha256(f"{release_id}:{normal}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def device_type(device: DeviceMatch) -> str:
    """The device type statistics and rollouts count a board as."""
    return device.specific or device.general


def is_build_of(reported: Version | None, release: Release) -> bool:
    """Whether a client's version is ``release`` or a build of it."""
    return reported is not None and reported.key[:3] == release.version.key[:3]


# --- the stored state --------------------------------------------------------


@dataclass(frozen=True)
class RolloutRow:
    """The state of one release's rollout, as stored in ``rollouts``."""

    release_id: int
    version: str
    channel: str
    plan: str | None
    state: str
    stage: int
    started_at: datetime
    stage_started_at: datetime
    judged_from: datetime
    halted_devices: frozenset[str]
    rollback_to: str | None
    reason: str
    changed_by: str
    changed_at: datetime

    @classmethod
    def new(cls, release: Release, now: datetime, actor: str) -> RolloutRow:
        """A rollout starting ``now`` at its first stage."""
        return cls(
            release_id=release.id,
            version=release.name,
            channel=release.channel,
            plan=None,
            state=RUNNING,
            stage=0,
            started_at=now,
            stage_started_at=now,
            judged_from=now,
            halted_devices=frozenset(),
            rollback_to=None,
            reason="started",
            changed_by=actor,
            changed_at=now,
        )

    @property
    def stopped(self) -> bool:
        """Whether the release is kept from some devices by a halt."""
        return self.state == HALTED or bool(self.halted_devices)


def effective_plan(release: Release, row: RolloutRow | None) -> Plan | None:
    """The plan in force: the one set from chat, else the release body's."""
    if row is not None and row.plan:
        plan, _ = parse_plan(row.plan)
        return plan
    return release.rollout


def current_share(release: Release, row: RolloutRow | None) -> int:
    """The share of devices (0..10000) offered ``release`` now."""
    plan = effective_plan(release, row)
    if row is None:
        return plan.stages[0].share if plan else BUCKETS
    if row.state == HALTED:
        return 0
    if row.state == DONE or plan is None:
        return BUCKETS
    return plan.stage(row.stage).share


# --- what /update reads --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Limit:
    """A release offered to part of the devices only."""

    release_id: int
    channel: str
    share: int
    halted: frozenset[str]

    def admits(self, serial: str, kind: str) -> bool:
        """Whether a device of type ``kind`` with ``serial`` is offered the release."""
        if kind in self.halted:
            return False
        return self.share >= BUCKETS or bucket(self.release_id, serial) < self.share


@dataclass(frozen=True, slots=True)
class _Rollback:
    """Devices on ``halted`` (of ``devices``, or all) are offered ``target``."""

    halted: Release
    devices: frozenset[str] | None
    target: Release

    def applies(self, kind: str, client: Version) -> bool:
        """Whether a device of type ``kind`` on ``client`` is rolled back."""
        in_devices = self.devices is None or kind in self.devices
        return in_devices and is_build_of(client, self.halted)


@dataclass(frozen=True)
class RolloutView:
    """The rollouts of one catalog as /update needs them: no I/O, no clock.

    ``generation`` changes whenever what a device may be offered changes, so that
    it can be part of a cache key.
    """

    catalog: Catalog
    generation: int
    limits: tuple[_Limit, ...]
    rollbacks: tuple[_Rollback, ...]

    def excluded(
        self, serial: str, device: DeviceMatch, channel: str
    ) -> tuple[int, ...]:
        """Ids of the releases on the client's ladder that leave this device out."""
        if not self.limits:
            return ()
        # A plain loop: this runs on every /update while a rollout is on.
        ladder, kind = LADDER[channel], device.specific or device.general
        found = []
        for limit in self.limits:
            if limit.channel in ladder and not limit.admits(serial, kind):
                found.append(limit.release_id)
        return tuple(found)

    def select(
        self,
        channel: str,
        device: DeviceMatch,
        client: Version | None,
        excluded: tuple[int, ...],
    ) -> Offer | None:
        """The offer of `select_update`, or a rollback from a halted release."""
        offer = select_update(self.catalog, channel, device, client, excluded)
        if offer is None and self.rollbacks and client is not None:
            return self._rolled_back(channel, device, client)
        return offer

    def _rolled_back(
        self, channel: str, device: DeviceMatch, client: Version
    ) -> Offer | None:
        # The only lower version rasbot offers: to devices on a halted release.
        kind = device_type(device)
        for rollback in self.rollbacks:
            target = rollback.target
            if target.channel in LADDER[channel] and rollback.applies(kind, client):
                package = target.update_package(device.general, device.specific)
                return Offer(target, package) if package else None
        return None

    @property
    def signature(self) -> tuple[object, ...]:
        """What devices may be offered, for telling two views apart."""
        rollbacks = [(r.halted.id, r.devices, r.target.id) for r in self.rollbacks]
        return (self.limits, tuple(rollbacks))


def build_view(
    catalog: Catalog, rows: Mapping[int, RolloutRow], generation: int
) -> RolloutView:
    """The view of ``catalog`` with the rollout state of ``rows``."""
    limits: list[_Limit] = []
    rollbacks: list[_Rollback] = []
    for release in catalog.releases:
        row = rows.get(release.id)
        if release.channel not in ROLLOUT_CHANNELS:
            continue
        if row is None and release.rollout is None:
            continue
        share = current_share(release, row)
        halted = row.halted_devices if row else frozenset()
        if share < BUCKETS or halted:
            limits.append(_Limit(release.id, release.channel, share, halted))
        rollback = _rollback(catalog, release, row)
        if rollback is not None:
            rollbacks.append(rollback)
    return RolloutView(catalog, generation, tuple(limits), tuple(rollbacks))


def _rollback(
    catalog: Catalog, release: Release, row: RolloutRow | None
) -> _Rollback | None:
    if row is None or not row.rollback_to or not row.stopped:
        return None
    target = release_named(catalog, row.rollback_to)
    if target is None or target.version >= release.version:
        return None
    devices = None if row.state == HALTED else row.halted_devices
    return _Rollback(release, devices, target)


def release_named(catalog: Catalog, name: str) -> Release | None:
    """The release named or tagged ``name``, in any case."""
    wanted = name.strip().lower()
    return next(
        (r for r in catalog.releases if wanted in (r.name.lower(), r.tag.lower())),
        None,
    )


# --- the rows in the database and in memory ------------------------------------


#: A change to one rollout: the new row, or None to leave it as it is.
Edit = Callable[[RolloutRow], RolloutRow | None]


class Rollouts:
    """The rollout rows in the database, their copy in memory, and the view."""

    def __init__(
        self,
        engine: AsyncEngine,
        catalog: Callable[[], Catalog],
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        #: Replaceable, so that tests can move time on.
        self.clock = clock
        self._rows: dict[int, RolloutRow] = {}
        self._view = RolloutView(EMPTY, 0, (), ())
        self._generation = 0

    def view(self, catalog: Catalog) -> RolloutView:
        """The view of ``catalog``; rebuilt, without I/O, when the catalog changed."""
        view = self._view
        if view.catalog is not catalog:
            view = self._rebuild(catalog)
        return view

    def row(self, release_id: int) -> RolloutRow | None:
        """The stored state of a release's rollout, as last read."""
        return self._rows.get(release_id)

    @property
    def rows(self) -> list[RolloutRow]:
        """Every stored rollout, as last read."""
        return list(self._rows.values())

    def _rebuild(self, catalog: Catalog) -> RolloutView:
        fresh = build_view(catalog, self._rows, self._generation)
        if fresh.signature != self._view.signature:
            self._generation += 1
            fresh = replace(fresh, generation=self._generation)
        self._view = fresh
        return fresh

    async def reload(self) -> None:
        """Read the rows again; on a database error keep the ones we had."""
        try:
            async with self._engine.connect() as conn:
                result = await conn.execute(sa.select(db.rollouts))
                self._rows = {r.release_id: _from_db(r) for r in result}
        except (SQLAlchemyError, OSError) as exc:
            log.warning("rollouts.reload_failed", error=str(exc))
            return
        self._rebuild(self._catalog())

    async def reload_forever(self, seconds: float) -> None:
        """Reload every ``seconds``."""
        while True:
            await asyncio.sleep(seconds)
            await self.reload()

    async def change(
        self, release: Release, actor: str, edit: Edit
    ) -> tuple[RolloutRow | None, RolloutRow]:
        """Apply ``edit`` to the stored row (a new one if none); (before, after).

        The row is read and written in one transaction, so that an operator and
        the watch cannot both change it from the same state. `RolloutError` from
        ``edit`` leaves everything as it was.
        """
        for attempt in range(2):
            try:
                before, after = await self._change(release, actor, edit)
            except IntegrityError:
                # Another process created the row first: edit that one.
                if attempt:
                    raise
                continue
            break
        self._rows[release.id] = after
        self._rebuild(self._catalog())
        return before, after

    async def _change(
        self, release: Release, actor: str, edit: Edit
    ) -> tuple[RolloutRow | None, RolloutRow]:
        now = self.clock()
        async with self._engine.begin() as conn:
            before = await _read(conn, release.id)
            base = before or RolloutRow.new(release, now, actor)
            edited = edit(base)
            if edited is None:
                if before is not None:
                    return before, before
                edited = base
            after = replace(edited, changed_by=actor[:128], changed_at=now)
            await _write(conn, after, exists=before is not None)
        return before, after


async def _read(conn: AsyncConnection, release_id: int) -> RolloutRow | None:
    table = db.rollouts
    query = sa.select(table).where(table.c.release_id == release_id)
    found = (await conn.execute(query.with_for_update())).first()
    return None if found is None else _from_db(found)


async def _write(conn: AsyncConnection, row: RolloutRow, *, exists: bool) -> None:
    table = db.rollouts
    values = _to_db(row)
    if exists:
        await conn.execute(
            sa.update(table).where(table.c.release_id == row.release_id).values(values)
        )
    else:
        await conn.execute(sa.insert(table).values(values))


def _to_db(row: RolloutRow) -> dict[str, object]:
    return {
        "release_id": row.release_id,
        "version": row.version[: db.CLIENT_VALUE_MAX],
        "channel": row.channel,
        "plan": row.plan,
        "state": row.state,
        "stage": row.stage,
        "started_at": row.started_at,
        "stage_started_at": row.stage_started_at,
        "judged_from": row.judged_from,
        "halted_devices": ",".join(sorted(row.halted_devices)),
        "rollback_to": row.rollback_to,
        "reason": _clip(row.reason, db.ROLLOUT_REASON_MAX),
        "changed_by": row.changed_by,
        "changed_at": row.changed_at,
    }


def _from_db(found: Any) -> RolloutRow:
    """A row as the database driver returned it."""
    halted = found.halted_devices or ""
    return RolloutRow(
        release_id=int(found.release_id),
        version=found.version,
        channel=found.channel,
        plan=found.plan,
        state=found.state,
        stage=int(found.stage),
        started_at=as_utc(found.started_at),
        stage_started_at=as_utc(found.stage_started_at),
        judged_from=as_utc(found.judged_from),
        halted_devices=frozenset(d for d in halted.split(",") if d),
        rollback_to=found.rollback_to,
        reason=found.reason,
        changed_by=found.changed_by,
        changed_at=as_utc(found.changed_at),
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def halted_names(devices: Iterable[str]) -> str:
    """Device types as a list for people: `RPi, RPi2`."""
    return ", ".join(sorted(devices))
