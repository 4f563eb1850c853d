"""Rollout plans: the `rollout:` section of a release body, chat's plans, buckets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rasbot import cli
from rasbot.catalog import build_catalog
from rasbot.releasebody import parse_body
from rasbot.rollout import bucket
from rasbot.rolloutplan import Plan, Stage, parse_plan
from tests import factories

DAY = timedelta(days=1)
BODY = factories.body("stable", ["RPi2"], "1.7.2", ["A fix"])


def test_a_plan_in_one_line() -> None:
    plan, reason = parse_plan("5%, 25% after 1d, 100% after 3d")

    assert reason is None
    assert plan == Plan(
        (Stage(500, timedelta(0)), Stage(2500, DAY), Stage(10_000, 3 * DAY))
    )
    assert str(plan) == "5%, 25% after 1d, 100% after 3d"


def test_each_stage_waits_for_its_share_of_the_plan() -> None:
    plan, _ = parse_plan("5%, 25% after 1d, 100% after 3d")

    assert plan is not None
    assert [plan.wait(i) for i in range(3)] == [DAY, 2 * DAY, timedelta(0)]
    assert plan.stage(7) == plan.stages[-1]


def test_a_plan_as_a_yaml_list_with_units_and_fractions() -> None:
    plan, _ = parse_plan(
        ["0.5% now", "10% after 90m", "50% AFTER 36h", "100% after 2d"]
    )
    numbers, _ = parse_plan([5, "100% after 1w"])

    assert plan is not None
    assert [s.share for s in plan.stages] == [50, 1000, 5000, 10_000]
    assert str(plan) == "0.5%, 10% after 90m, 50% after 36h, 100% after 2d"
    assert str(numbers) == "5%, 100% after 1w"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "a plan is a list of stages"),
        ({"5%": 1}, "a plan is a list of stages"),
        ("5 percent", "`5 percent` is not a stage"),
        ("5% after 1d, 100% after 2d", "the first stage starts at once"),
        ("0%, 100% after 1d", "more than 0% and at most 100%"),
        ("5%, 150% after 1d", "more than 0% and at most 100%"),
        ("50%, 25% after 1d, 100% after 2d", "a larger share and a later `after`"),
        ("5%, 25% after 2d, 100% after 1d", "a larger share and a later `after`"),
        ("5%, 25% after 1d", "the last stage is 100%"),
        ("5%, 100% after 53w", "a year at most"),
        (", ".join(f"{n}% after {n}h" for n in range(1, 12)), "at most 10 stages"),
    ],
)
def test_a_plan_that_cannot_be_used_says_why(raw: object, reason: str) -> None:
    plan, found = parse_plan(raw)

    assert plan is None
    assert found is not None and reason in found


@given(
    st.lists(st.integers(1, 9_999), max_size=9, unique=True),
    st.integers(1, 60 * 24 * 14),
)
def test_written_plans_read_back_the_same(shares: list[int], minutes: int) -> None:
    every = [*sorted(shares), 10_000]
    plan = Plan(
        tuple(
            Stage(share, timedelta(minutes=i * minutes))
            for i, share in enumerate(every)
        )
    )

    assert parse_plan(str(plan)) == (plan, None)


def test_the_body_carries_its_plan() -> None:
    body = parse_body(BODY + "\nrollout:\n  - 5%\n  - 100% after 2d\n")

    assert body.usable
    assert str(body.rollout) == "5%, 100% after 2d"
    assert body.problems == ()


def test_a_broken_plan_keeps_the_release_from_devices() -> None:
    raw = factories.release(10, "1.7.2", body_text=BODY + "\nrollout: soon\n")

    releases, problems = build_catalog([raw], devices=["RPi2"])

    assert releases == ()
    assert [str(p) for p in problems] == [
        "1.7.2: rollout: `soon` is not a stage such as `25% after 1d`; "
        "not served until the plan is fixed"
    ]


def test_a_beta_release_goes_to_its_testers_at_once() -> None:
    text = factories.body("beta", ["RPi2"], "1.8.0b", []) + "rollout: 5%, 100% after 1d"

    body = parse_body(text)

    assert body.usable
    assert body.rollout is None
    assert body.problems == ("rollout: a beta release goes to its testers at once",)


def test_buckets_are_pinned_for_ever() -> None:
    # Changing the hash would move every device in every rollout running.
    assert bucket(10, "00000000abcdef12") == bucket(10, " 00000000ABCDEF12 ")
    assert [bucket(10, f"{n:016x}") for n in range(1, 6)] == PINNED
    assert bucket(11, "00000000abcdef12") != bucket(10, "00000000abcdef12")


def test_a_device_without_a_serial_is_the_last_bucket() -> None:
    assert bucket(10, "") == bucket(10, None) == 9999


@given(st.integers(0, 2**40), st.text(min_size=1, max_size=40))
def test_buckets_are_within_the_range(release_id: int, serial: str) -> None:
    assert 0 <= bucket(release_id, serial) < 10_000


PINNED = [5392, 1771, 5872, 7381, 9603]


def test_check_release_shows_the_plan_or_why_it_cannot_be_used(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(BODY + "rollout: 5%, 100% after 1d\n")
    bad.write_text(BODY + "rollout: 5%\n")

    fine = CliRunner().invoke(cli.main, ["check-release", str(good)])
    broken = CliRunner().invoke(cli.main, ["check-release", str(bad)])

    assert fine.exit_code == 0, fine.output
    assert "rollout: 5%, 100% after 1d" in fine.output
    assert broken.exit_code == 1
    assert (
        "problem: rollout: the last stage is 100%: a rollout ends with every device; "
        "not served until the plan is fixed"
    ) in broken.output


_YAML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.just("5%, 100% after 1d"),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_YAML_VALUES)
def test_any_rollout_section_is_read_without_raising(raw: object) -> None:
    plan, reason = parse_plan(raw)

    assert (plan is None) != (reason is None)


def test_a_huge_number_is_not_a_stage() -> None:
    # YAML reads hex digits into an integer Python will not print.
    body = parse_body(BODY + "\nrollout: [0x" + "f" * 4000 + "]\n")

    assert not body.usable
    assert "`(not a stage)` is not a stage" in body.problems[-1]
