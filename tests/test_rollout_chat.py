"""Operating rollouts: chat commands, the CLI, several instances, the dashboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from rasbot import cli
from rasbot.chat.audit import AuditLog
from rasbot.rollout import bucket
from tests.conftest import services
from tests.rolloutfleet import (
    CURRENT,
    NEW,
    VISITOR,
    Clock,
    Device,
    Fleet,
    new_release,
    publish,
)

SETTINGS = {"rollout_check_seconds": 3600, "rollout_min_devices": 10}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet(
    make_client: Callable[..., TestClient], releases_file: Path, clock: Clock
) -> Fleet:
    """600 devices on 1.7.1, 1.7.2 published with its plan and watched once."""
    client = make_client(**SETTINGS)
    services(client).rollouts.clock = clock
    found = Fleet.of(client, 600)
    publish(client, releases_file, new_release())
    found.watch()
    return found


def inside(percent: float) -> Device:
    """A device of the fleet's kind, on 1.7.1, within ``percent`` of 1.7.2's rollout."""
    for number in range(10**6, 10**6 + 10_000):
        serial = f"{number:016x}"
        if bucket(10, serial) < percent * 100:
            return Device(serial, "RPi2", CURRENT)
    raise AssertionError("no such serial")


def audit(fleet: Fleet) -> list[tuple[str, str, str]]:
    entries = fleet.client.portal.call(AuditLog(fleet.svc.engine).recent, 50)
    return [(e.actor, e.action, e.detail) for e in reversed(entries)]


# --- status -----------------------------------------------------------------------


def test_status_shows_stage_plan_and_health_per_device_type(fleet: Fleet) -> None:
    fleet.round()
    staged = len(fleet.on(NEW, ["RPi2"]))

    ok, text = fleet.say("rollout 1.7.2")

    assert ok
    assert re.search(r"`1.7.2` \(stable\): running at 5%, stage 1 of 3 since", text)
    assert "Next: 25% from " in text
    assert "Plan: `5%, 25% after 1d, 100% after 3d` (from the release body)." in text
    assert "before: `1.7.1` over its first 0h" in text
    (row,) = [line.split() for line in text.splitlines() if line.startswith("RPi2 ")]
    assert row[:5] == ["RPi2", str(staged), str(staged), str(staged), "0/0"]


def test_status_of_a_release_without_a_plan(fleet: Fleet) -> None:
    ok, text = fleet.say("rollout 1.7.1 status")

    assert ok
    assert text == "`1.7.1` (stable) has no rollout plan: every device gets it."


def test_unknown_release_is_an_error(fleet: Fleet) -> None:
    ok, text = fleet.say("rollout 9.9.9")

    assert not ok
    assert "No release `9.9.9`" in text


def test_rollouts_lists_them(fleet: Fleet) -> None:
    ok, text = fleet.say("rollouts")

    assert ok
    assert re.search(r"1\.7\.2\s+stable\s+running\s+5%\s+1/3", text)


# --- changes -------------------------------------------------------------------


def test_only_admins_change_a_rollout_and_refusals_are_audited(fleet: Fleet) -> None:
    status, _ = fleet.say("rollout 1.7.2 status", VISITOR)
    refused, text = fleet.say("rollout 1.7.2 halt", VISITOR)

    assert status
    assert not refused
    assert "only its admins may run it" in text
    assert audit(fleet)[-1] == ("slack:U999", "refused", "rollout 1.7.2 halt")
    assert fleet.check(inside(5)) == NEW


def test_a_paused_rollout_holds_until_resumed(fleet: Fleet, clock: Clock) -> None:
    ok, text = fleet.say("rollout 1.7.2 pause")
    assert ok, text
    again, again_text = fleet.say("rollout 1.7.2 pause")

    clock.advance(days=2)
    assert fleet.watch().stage == 0
    assert fleet.check(inside(5)) == NEW  # the share holds
    resumed, _ = fleet.say("rollout 1.7.2 resume")
    assert fleet.watch().stage == 0  # the stage runs its day again
    clock.advance(days=1)

    assert fleet.watch().stage == 1
    assert not again
    assert "the rollout of `1.7.2` is paused" in again_text
    assert resumed
    by_hand = [detail for actor, _, detail in audit(fleet) if actor == "slack:U123"]
    assert by_hand == ["1.7.2 pause", "1.7.2 resume"]
    assert "advanced to 25%" in audit(fleet)[-1][2]


def test_a_plan_set_from_chat_overrides_the_body(fleet: Fleet) -> None:
    bad, bad_text = fleet.say("rollout 1.7.2 set 50%")
    ok, text = fleet.say("rollout 1.7.2 set 50%, 100% after 2d")
    _, status = fleet.say("rollout 1.7.2")

    assert not bad
    assert "`50%` is not a plan: the last stage is 100%" in bad_text
    assert ok
    assert text == "Rollout of `1.7.2` follows `50%, 100% after 2d` from now, at 50%."
    assert "(set from chat or the CLI)" in status
    assert fleet.check(inside(50)) == NEW


def test_halting_by_hand_passes_over_the_release(
    make_client: Callable[..., TestClient],
) -> None:
    fleet = Fleet(make_client(**SETTINGS), [])
    older = Device("00000000abcdef12", "RPi2", "1.6.2")
    assert fleet.check(older) == "1.7.1"

    ok, text = fleet.say("rollout 1.7.1 halt")

    assert ok, text
    assert fleet.check(older) == "1.6.3"  # as if 1.7.1 were not published
    resumed, _ = fleet.say("rollout 1.7.1 resume")
    assert resumed
    assert fleet.check(older) == "1.7.1"


def test_beta_releases_do_not_roll_out(fleet: Fleet) -> None:
    ok, text = fleet.say("rollout 1.8.0b halt")

    assert not ok
    assert "`1.8.0b` is a beta release: it goes to its testers at once" in text


def test_a_plan_needs_a_plan_to_pause(
    make_client: Callable[..., TestClient],
) -> None:
    fleet = Fleet(make_client(**SETTINGS), [])

    ok, text = fleet.say("rollout 1.7.1 pause")

    assert not ok
    assert "`1.7.1` has no rollout plan" in text


# --- several instances, and the CLI -----------------------------------------------


def test_every_instance_follows_a_change_made_on_one(
    fleet: Fleet, make_client: Callable[..., TestClient]
) -> None:
    other = Fleet(make_client(**SETTINGS), [])
    device = inside(5)
    assert other.check(device) == NEW

    fleet.say("rollout 1.7.2 halt")
    other.client.portal.call(other.svc.rollouts.reload)  # its reload, every 5 s

    assert other.check(device) is None


def test_the_cli_controls_rollouts(
    fleet: Fleet,
    database_url: str,
    releases_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RASBOT_DATABASE_URL", database_url)
    monkeypatch.setenv("RASBOT_RELEASES_FILE", str(releases_file))
    runner = CliRunner()

    status = runner.invoke(cli.main, ["rollout", "1.7.2"])
    wrong = runner.invoke(cli.main, ["rollout", "1.7.2", "halt", "5%"])
    halted = runner.invoke(cli.main, ["rollout", "1.7.2", "halt"])
    back = runner.invoke(cli.main, ["rollback", "stable", "1.7.1"])
    fleet.client.portal.call(fleet.svc.rollouts.reload)

    assert status.exit_code == 0, status.output
    assert "running at 5%" in status.output
    assert wrong.exit_code == 2
    assert halted.exit_code == 0, halted.output
    assert back.exit_code == 0, back.output
    assert "Devices on `1.7.2` are offered `1.7.1` from now on." in back.output
    assert fleet.check(Device("00000000abcdef12", "RPi", NEW)) == CURRENT
    actors = {actor for actor, action, _ in audit(fleet) if action == "rollback"}
    assert len(actors) == 1 and actors.pop().startswith("terminal:")


# --- the dashboard ------------------------------------------------------------------


def test_the_rollout_page_shows_stage_share_and_health(fleet: Fleet) -> None:
    fleet.round()
    staged = len(fleet.on(NEW, ["RPi3bplus"]))

    page = fleet.client.get("/dashboard/rollout/1.7.2")
    chart = fleet.client.get("/dashboard/rollout/1.7.2/missing.png")

    assert page.status_code == 200
    assert "5% <span" in page.text
    assert "<code>5%, 25% after 1d, 100% after 3d</code>" in page.text
    cell = f'<td class="n">{staged}</td>'
    assert f"<td>RPi3bplus</td>{cell}{cell}" in page.text
    assert "Compared with 1.7.1" in page.text
    assert chart.status_code == 200
    assert chart.content.startswith(b"\x89PNG")


def test_the_rollout_page_of_an_unknown_release_is_404(
    fleet: Fleet, make_client: Callable[..., TestClient]
) -> None:
    off = make_client(dashboard=False)

    assert fleet.client.get("/dashboard/rollout/9.9.9").status_code == 404
    assert off.get("/dashboard/rollout/1.7.2").status_code == 404
