"""Naming what clients report, adoption, and the charts' data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rasbot.catalog import build_catalog
from rasbot.charts import Chart, Series, render, top
from rasbot.statsreport import OTHERS, UNKNOWN, VersionNames
from tests import factories

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def names() -> VersionNames:
    releases, _ = build_catalog(factories.history(), devices=["RPi", "RPi2"])
    return VersionNames(releases)


@pytest.mark.parametrize(
    ("reported", "named"),
    [
        ("1.7.1", "1.7.1"),
        ("1.7.1.123-e23a7eef", "1.7.1"),  # a build of 1.7.1
        ("1.8.0.0b-573b6d73", "1.8.0b"),  # a build of the beta
        ("1.7.0-rc1", "1.7.0-rc1"),
        ("1.9.2.5-abcdef12", "1.9.2"),  # no such release: its version
        ("", UNKNOWN),
        ("wip-build", OTHERS),
        ("<script>", OTHERS),
    ],
)
def test_reported_versions_are_named_after_their_release(
    names: VersionNames, reported: str, named: str
) -> None:
    assert names(reported) == named


def test_top_adds_up_the_rest() -> None:
    pairs = [("a", 5), ("b", 9), ("c", 1), ("d", 2)]

    assert top(pairs, 3, "rest") == [("b", 9), ("a", 5), ("rest", 3)]
    assert top(pairs, 4, "rest") == [("b", 9), ("a", 5), ("d", 2), ("c", 1)]


@pytest.mark.parametrize("kind", ["line", "stacked", "barh"])
def test_every_kind_of_chart_draws(kind: str) -> None:
    days = (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC))
    x = ("1.7.1", "$1.6$") if kind == "barh" else days
    chart = Chart("Title with $dollars$", kind, x, (Series("n", (3, 4)),))

    png = render(chart)

    assert png.startswith(PNG)
    assert render(chart) == png  # the same chart, the same bytes


def test_an_empty_chart_says_so() -> None:
    chart = Chart("Nothing", "line", (), ())

    assert chart.empty
    assert render(chart).startswith(PNG)
