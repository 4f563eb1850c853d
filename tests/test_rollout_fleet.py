"""Staged rollouts with simulated fleets, through the real HTTP endpoints.

Thousands of devices ask /update, stage what they are offered and come back (or
not, or crash); the rollout watch runs when the test says, on a clock the test
moves, and its decisions are read back from the rollout state, the audit log and
the alerts (Slack's Web API stand-in where Slack is configured).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rasbot.rollout import WATCH_ACTOR, bucket
from tests.conftest import services
from tests.rolloutfleet import (
    CURRENT,
    KINDS,
    NEW,
    VISITOR,
    Clock,
    Device,
    Fleet,
    crash_rows,
    new_release,
    publish,
)
from tests.test_chat_slack import BOT_TOKEN, SlackStub

RELEASE_ID = 10
FLEET = 2400
OLDER = "1.6.2"
ALERTS = "CALERTS"
#: Small enough for a few dozen devices of a type at 5% of the fleet.
ROLLOUT_SETTINGS: dict[str, Any] = {
    "rollout_check_seconds": 3600,
    "rollout_min_devices": 10,
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def start(
    make_client: Callable[..., TestClient], releases_file: Path, clock: Clock
) -> Callable[..., Fleet]:
    """A running server with a fleet; 1.7.2 published with its plan, watched once."""

    def make(size: int = FLEET, **settings: Any) -> Fleet:
        client = make_client(**ROLLOUT_SETTINGS, **settings)
        services(client).rollouts.clock = clock
        fleet = Fleet.of(client, size)
        for device in fleet.devices[::8]:
            device.version = OLDER
        publish(client, releases_file, new_release())
        fleet.watch()
        return fleet

    return make


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


def in_rollout(serial: str, percent: float) -> bool:
    return bucket(RELEASE_ID, serial) < percent * 100


def expected(device: Device, percent: float, before: str) -> str | None:
    """What a device on ``before`` is offered while 1.7.2 is at ``percent``."""
    if in_rollout(device.serial, percent):
        return NEW
    return CURRENT if before == OLDER else None


def serials(kind: str, inside: bool, percent: float = 5) -> Iterator[Device]:
    """Devices outside the fleet, of ``kind``, in (or out of) the rollout."""
    for number in range(10**6, 10**6 + 10_000):
        device = Device(f"{number:016x}", kind, CURRENT)
        if in_rollout(device.serial, percent) == inside:
            yield device


# --- a healthy rollout ---------------------------------------------------------


def test_healthy_rollout_advances_through_its_stages(
    start: Callable[..., Fleet], clock: Clock
) -> None:
    fleet = start()
    before = {d.serial: d.version for d in fleet.devices}

    first = fleet.round()
    assert first == {d.serial: expected(d, 5, before[d.serial]) for d in fleet.devices}
    assert 0.03 < Counter(first.values())[NEW] / FLEET < 0.07
    assert fleet.watch().stage == 0  # its day has not come

    clock.advance(days=1)
    assert fleet.watch().stage == 1
    second = fleet.round()
    assert {s for s, v in second.items() if v == NEW} == {
        d.serial
        for d in fleet.devices
        if in_rollout(d.serial, 25) and not in_rollout(d.serial, 5)
    }

    clock.advance(days=1)
    assert fleet.watch().stage == 1  # 100% is three days after the start
    clock.advance(days=1)
    assert fleet.watch().stage == 2
    fleet.round()
    assert len(fleet.on(NEW)) == FLEET

    clock.advance(hours=12)
    assert fleet.watch().state == "done"
    decisions = [e.detail for e in fleet.audit() if e.actor == WATCH_ACTOR]
    assert [d.split(":")[0] for d in decisions] == [
        "Rollout of `1.7.2` (stable) started",
        "Rollout of `1.7.2` advanced to 25% (stage 2 of 3)",
        "Rollout of `1.7.2` advanced to 100% (stage 3 of 3)",
        "Rollout of `1.7.2` complete",
    ]
    assert "RPi3bplus: offered" in decisions[1]
    assert len(fleet.alerts) == 4


# --- a device type that never comes back ----------------------------------------


def test_a_device_type_that_never_comes_back_is_halted_with_an_alert(
    start: Callable[..., Fleet], clock: Clock, slack: SlackStub
) -> None:
    fleet = start(
        slack_bot_token=BOT_TOKEN, slack_api_url=slack.url, slack_channel=ALERTS
    )
    fleet.round(broken={"RPi3bplus"})
    clock.advance(hours=11)
    assert not fleet.watch().halted_devices  # they still have an hour to come back

    clock.advance(hours=2)
    row = fleet.watch()

    assert row.halted_devices == {"RPi3bplus"}
    assert row.state == "running"
    (started, halted) = slack.wait_for("chat.postMessage", 2)
    assert started.args["channel"] == halted.args["channel"] == ALERTS
    text = halted.args["text"]
    assert "Rollout of `1.7.2` halted for RPi3bplus" in text
    lost = len([d for d in fleet.devices if not d.alive])
    assert f"RPi3bplus: {lost} of {lost} devices missing 12h after staging" in text
    assert "100.0% against 0.0% before" in text
    assert "```" in text  # the health table
    (entry,) = [e for e in fleet.audit() if "halted for" in e.detail]
    assert entry.actor == WATCH_ACTOR
    assert f"RPi3bplus: offered {lost}, staged {lost}, confirmed 0" in entry.detail


def test_a_halted_device_type_is_offered_the_release_no_more(
    start: Callable[..., Fleet], clock: Clock
) -> None:
    fleet = start()
    fleet.round(broken={"RPi3bplus"})
    clock.advance(hours=13)
    fleet.watch()

    assert fleet.check(next(serials("RPi3bplus", inside=True))) is None
    assert fleet.check(next(serials("RPi2", inside=True))) == NEW
    assert fleet.check(next(serials("RPi2", inside=False))) is None

    clock.advance(days=3)
    assert fleet.watch().stage == 0  # held until an operator decides
    ok, _ = fleet.say("rollout 1.7.2 resume")
    assert ok
    assert fleet.check(next(serials("RPi3bplus", inside=True))) == NEW


# --- a crash spike ------------------------------------------------------------------


def test_a_crash_spike_halts_the_rollout(
    start: Callable[..., Fleet], clock: Clock
) -> None:
    fleet = start()
    fleet.round(crashing=KINDS)
    crashed = len(crash_rows(fleet))
    assert crashed == len(fleet.on(NEW)) > 0

    row = fleet.watch()

    assert row.state == "halted"
    assert row.halted_devices == set(KINDS)
    assert "Rollout of `1.7.2` halted. " in fleet.alerts[-1]
    assert "crash reports from" in fleet.alerts[-1]
    offers = fleet.round()
    assert NEW not in offers.values()
    assert {d.version for d in fleet.devices} == {CURRENT, NEW}


def test_crashes_under_the_threshold_do_not_halt(
    start: Callable[..., Fleet], clock: Clock
) -> None:
    fleet = start()
    fleet.round()
    for device in fleet.on(NEW)[:2]:
        fleet.client.portal.call(fleet._with_http, fleet._crash, device)

    row = fleet.watch()

    assert row.state == "running" and not row.halted_devices
    clock.advance(days=1)
    assert fleet.watch().stage == 1


# --- rollback -------------------------------------------------------------------


def test_rollback_offers_the_older_version_only_to_devices_on_the_halted_one(
    start: Callable[..., Fleet], clock: Clock
) -> None:
    fleet = start()
    fleet.round(crashing=KINDS)
    fleet.watch()
    on_new = fleet.on(NEW)

    refused, _ = fleet.say("rollback stable 1.7.1", VISITOR)
    ok, text = fleet.say("rollback stable 1.7.1")

    assert not refused
    assert ok, text
    assert "Devices on `1.7.2` are offered `1.7.1` from now on." in text
    offers = fleet.round()
    assert {offers[d.serial] for d in on_new} == {CURRENT}
    assert all(offers[d.serial] is None for d in fleet.devices if d not in on_new)
    assert {d.version for d in fleet.devices} == {CURRENT}
    assert set(fleet.round().values()) == {None}  # and no loop back up
    build = Device("00000000abcdef12", "RPi2", "1.7.2.5-abcdef12")
    assert fleet.check(build) == CURRENT
    assert [e.actor for e in fleet.audit() if e.action == "rollback"] == ["slack:U123"]


def test_rollback_after_a_device_type_halt_concerns_that_type_only(
    start: Callable[..., Fleet], clock: Clock
) -> None:
    fleet = start()
    fleet.round(broken={"RPi3bplus"})
    clock.advance(hours=13)
    fleet.watch()

    ok, text = fleet.say("rollback stable 1.7.1")

    assert ok, text
    assert "Devices on `1.7.2` (RPi3bplus) are offered `1.7.1`" in text
    assert fleet.check(Device("00000000000000aa", "RPi3bplus", NEW)) == CURRENT
    assert fleet.check(Device("00000000000000aa", "RPi2", NEW)) is None
    assert fleet.check(Device("00000000000000aa", "RPi3bplus", CURRENT)) is None


def test_rollback_needs_a_halted_release_and_an_earlier_one(
    start: Callable[..., Fleet],
) -> None:
    fleet = start(size=30)

    running = fleet.say("rollback stable 1.7.1")
    fleet.say("rollout 1.7.2 halt")
    upwards = fleet.say("rollback stable 1.7.2")
    beta = fleet.say("rollback stable 1.8.0b")

    assert running == (
        False,
        "No rollback: no halted stable release above `1.7.1`: "
        "halt one first with `rollout <version> halt`.",
    )
    assert not upwards[0] and not beta[0]
    assert fleet.check(Device("00000000000000aa", "RPi2", NEW)) is None


# --- buckets ----------------------------------------------------------------------


def test_devices_keep_their_bucket_as_the_share_grows_and_across_restarts(
    start: Callable[..., Fleet], make_client: Callable[..., TestClient], clock: Clock
) -> None:
    fleet = start(size=1200)
    at_5 = {serial for serial, v in fleet.ask().items() if v == NEW}

    ok, _ = fleet.say("rollout 1.7.2 set 25%, 100% after 2d")
    assert ok
    at_25 = {serial for serial, v in fleet.ask().items() if v == NEW}
    again = Fleet(make_client(**ROLLOUT_SETTINGS), fleet.devices)
    after_restart = {serial for serial, v in again.ask().items() if v == NEW}

    assert at_5 < at_25
    assert at_25 == after_restart
    assert at_25 == {d.serial for d in fleet.devices if in_rollout(d.serial, 25)}
    assert 0.2 < len(at_25) / 1200 < 0.3
