"""A simulated fleet of RasPlex devices, driven through the real HTTP endpoints.

Each device asks `/update` as the updater does; when it is offered a release it
reports `/updated` and, unless its type is told to break, reboots into the release
and asks `/update` again from it (and may send a crash report). The rollout watch
runs when a test says so, on a clock the test moves.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from starlette.testclient import TestClient

from rasbot import db
from rasbot.chat.audit import AuditEntry, AuditLog
from rasbot.chat.dispatcher import Dispatcher
from rasbot.chat.registry import Caller
from rasbot.chat.replies import Reply
from rasbot.chat.terminal import render
from rasbot.rollout import RolloutRow
from rasbot.services import Services
from tests import factories
from tests.conftest import flush, services

#: A revision code of each device type (PROTOCOL.md 2.2).
REVISIONS = {"RPi": "000e", "RPi2": "a01041", "RPi3bplus": "a020d3"}
KINDS = tuple(REVISIONS)
PLAN = "5%, 25% after 1d, 100% after 3d"
NEW = "1.7.2"
CURRENT = "1.7.1"
ADMIN = Caller("slack:U123", is_admin=True)
VISITOR = Caller("slack:U999", is_admin=False)
MINIDUMP = b"MDMP" + bytes(60)

T = TypeVar("T")


class Clock:
    """The rollouts' time: the real time moved on by the test, never slept.

    Real time goes on underneath, so that requests recorded a moment ago are never
    in the rollouts' future.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def new_release(plan: str | None = PLAN, release_id: int = 10) -> dict[str, Any]:
    """1.7.2 for RPi and RPi2 (the 3B+ gets RPi2's), with a `rollout:` section."""
    text = factories.body("stable", ["RPi", "RPi2"], NEW, ["A fix"])
    if plan is not None:
        text += f"\nrollout: {plan}\n"
    return factories.release(
        release_id, NEW, published="2017-09-01T10:00:00Z", body_text=text
    )


def publish(client: TestClient, releases_file: Path, *releases: dict[str, Any]) -> None:
    """Publish ``releases`` above the test history and sync."""
    listing = [*releases, *factories.history()]
    releases_file.write_text(json.dumps(listing))
    result = client.portal.call(services(client).syncer.refresh, "test")
    assert result.ok


def offered(text: str) -> str | None:
    """The version an /update answer offers, or None."""
    release = ET.fromstring(text).find("Release")
    return None if release is None else release.attrib["version"]


@dataclass
class Device:
    """One device in the field."""

    serial: str
    kind: str
    version: str
    alive: bool = True

    def query(self) -> str:
        return (
            f"channel=16&revision={REVISIONS[self.kind]}&serial={self.serial}"
            f"&version={self.version}"
        )


@dataclass
class Fleet:
    """Devices of every type, and what happened to them."""

    client: TestClient
    devices: list[Device]
    alerts: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, client: TestClient, size: int, version: str = CURRENT) -> Fleet:
        """``size`` devices, the types taking turns, all on ``version``."""
        devices = [
            Device(f"{i + 1:016x}", KINDS[i % len(KINDS)], version) for i in range(size)
        ]
        fleet = cls(client, devices)
        watch = fleet.svc.rollout_watch
        tell = watch.alert

        async def alert(reply: Reply) -> None:
            fleet.alerts.append(render(reply))
            await tell(reply)

        watch.alert = alert
        return fleet

    @property
    def svc(self) -> Services:
        return services(self.client)

    def check(self, device: Device) -> str | None:
        """One update check; the version offered."""
        return self.client.portal.call(self._with_http, self._check, device)

    def round(
        self, *, broken: Collection[str] = (), crashing: Collection[str] = ()
    ) -> dict[str, str | None]:
        """Every live device checks once and installs what it is offered.

        Devices of a ``broken`` type never come back from 1.7.2; those of a
        ``crashing`` type send a crash report from it. Returns each device's offer.
        """

        async def run(http: httpx.AsyncClient) -> dict[str, str | None]:
            return {
                device.serial: await self._update(http, device, broken, crashing)
                for device in self.devices
                if device.alive
            }

        offers = self.client.portal.call(self._with_http, run)
        flush(self.client)
        return offers

    def ask(self) -> dict[str, str | None]:
        """Every device checks once and installs nothing; each device's offer."""

        async def run(http: httpx.AsyncClient) -> dict[str, str | None]:
            return {d.serial: await self._check(http, d) for d in self.devices}

        return self.client.portal.call(self._with_http, run)

    async def _with_http(self, job: Callable[..., Awaitable[T]], *args: Any) -> T:
        # The running application, called in its own event loop: thousands of
        # requests without a thread hop each (TestClient makes eight).
        transport = httpx.ASGITransport(app=self.client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver"
        ) as http:
            return await job(http, *args)

    async def _check(self, http: httpx.AsyncClient, device: Device) -> str | None:
        response = await http.get(f"/update?build&{device.query()}")
        assert response.status_code == 200
        return offered(response.text)

    async def _update(
        self,
        http: httpx.AsyncClient,
        device: Device,
        broken: Collection[str],
        crashing: Collection[str],
    ) -> str | None:
        version = await self._check(http, device)
        if version is None:
            return None
        staged = await http.get(
            f"/updated?channel=16&fromVersion={device.version}"
            f"&revision={REVISIONS[device.kind]}&serial={device.serial}"
            f"&version={version}"
        )
        assert staged.status_code == 200
        if device.kind in broken and version == NEW:
            device.alive = False
            return version
        device.version = version
        await self._check(http, device)
        if device.kind in crashing and version == NEW:
            await self._crash(http, device)
        return version

    async def _crash(self, http: httpx.AsyncClient, device: Device) -> None:
        body = "dumpfileb64=" + base64.b64encode(MINIDUMP).decode()
        response = await http.post(
            f"/crashes?version={device.version}&platform=RaspberryPi"
            f"&serial={device.serial}&revision={REVISIONS[device.kind]}",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200

    def on(self, version: str, kinds: Iterable[str] = KINDS) -> list[Device]:
        """Devices of ``kinds`` on ``version``."""
        wanted = set(kinds)
        return [d for d in self.devices if d.version == version and d.kind in wanted]

    def watch(self) -> RolloutRow:
        """Write what was recorded, let the watch look once; the 1.7.2 rollout row."""
        flush(self.client)
        self.client.portal.call(self.svc.rollout_watch.check)
        release = self.svc.syncer.catalog.by_tag(NEW)
        assert release is not None
        row = self.svc.rollouts.row(release.id)
        assert row is not None
        return row

    def say(self, text: str, caller: Caller = ADMIN) -> tuple[bool, str]:
        """A chat command; whether it succeeded and its text."""
        reply = self.client.portal.call(Dispatcher(self.svc).run, text, caller)
        return reply.ok, render(reply)

    def audit(self) -> list[AuditEntry]:
        """The audit log, oldest first."""
        entries = self.client.portal.call(AuditLog(self.svc.engine).recent, 200)
        return entries[::-1]

    def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        """Every row of ``table``."""

        async def read() -> list[dict[str, Any]]:
            async with self.svc.engine.connect() as conn:
                result = await conn.execute(sa.select(table))
                return [dict(row._mapping) for row in result]

        flush(self.client)
        return self.client.portal.call(read)


def crash_rows(fleet: Fleet) -> list[dict[str, Any]]:
    """The stored crash reports."""
    return fleet.rows(db.crashes)
