"""Rollout plans: which share of the devices gets a release, and from when.

A plan is a list of stages, written the same way in a release body's ``rollout:``
section and in chat (docs/rollouts.md)::

    5%, 25% after 1d, 100% after 3d

``after`` counts from the start of the rollout. A stage held back (by its health, a
pause or a halt) delays the later ones by as much: each stage keeps the time the
plan gives it before the next one. Parsing never raises; a plan that cannot be
used comes back as None with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

#: Shares are counted in hundredths of a percent: a device's bucket is 0..9999.
BUCKETS = 10_000
MAX_STAGES = 10
MAX_LENGTH = timedelta(days=366)
#: Channels whose releases may roll out in stages; beta goes to its testers at once.
ROLLOUT_CHANNELS = ("stable", "prerelease")
EXAMPLE = "5%, 25% after 1d, 100% after 3d"

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_STAGE = re.compile(
    r"(?P<percent>\d{1,3}(?:\.\d{1,2})?)\s*%"
    r"(?:\s+(?:after\s+(?P<amount>\d{1,6})\s*(?P<unit>[mhdw])|now|at\s+once))?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Stage:
    """A share of the devices (in hundredths of a percent) and when it starts."""

    share: int
    after: timedelta

    def __str__(self) -> str:
        percent = f"{self.share / 100:g}%"
        return percent if not self.after else f"{percent} after {_duration(self.after)}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The stages of a rollout, in order; the last one reaches every device."""

    stages: tuple[Stage, ...]

    def __str__(self) -> str:
        return ", ".join(str(stage) for stage in self.stages)

    def stage(self, index: int) -> Stage:
        """Stage ``index``, or the last one when the index is past the end."""
        return self.stages[min(index, len(self.stages) - 1)]

    def wait(self, index: int) -> timedelta:
        """How long stage ``index`` runs before the next may begin."""
        if index + 1 >= len(self.stages):
            return timedelta(0)
        return self.stages[index + 1].after - self.stages[index].after


def parse_plan(raw: object) -> tuple[Plan | None, str | None]:
    """A plan from text (``5%, 25% after 1d``) or a YAML list of such stages.

    Returns the plan, or None and the reason it cannot be used.
    """
    items = _items(raw)
    if items is None:
        return None, f"a plan is a list of stages such as `{EXAMPLE}`"
    stages: list[Stage] = []
    for item in items:
        stage = _stage(item)
        if stage is None:
            return None, f"{_shown(item)} is not a stage such as `25% after 1d`"
        stages.append(stage)
    reason = _check(stages)
    return (None, reason) if reason else (Plan(tuple(stages)), None)


def _items(raw: object) -> Sequence[object] | None:
    if isinstance(raw, str):
        return [part for part in raw.split(",") if part.strip()] or None
    if isinstance(raw, list) and raw:
        return raw
    return None


def _stage(item: object) -> Stage | None:
    if _number(item):
        item = f"{item}%"  # YAML reads `- 100` as a number
    if not isinstance(item, str):
        return None
    match = _STAGE.fullmatch(item.strip())
    if match is None:
        return None
    share = round(float(match["percent"]) * 100)
    after = timedelta(0)
    if match["amount"]:
        after = timedelta(**{_UNITS[match["unit"].lower()]: int(match["amount"])})
    return Stage(share, after)


def _check(stages: list[Stage]) -> str | None:
    """Why the stages make no plan, or None when they do."""
    if len(stages) > MAX_STAGES:
        return f"a plan has at most {MAX_STAGES} stages"
    if stages[0].after:
        return "the first stage starts at once: leave out its `after`"
    if any(not 0 < stage.share <= BUCKETS for stage in stages):
        return "each stage's share is more than 0% and at most 100%"
    for earlier, later in pairwise(stages):
        if later.share <= earlier.share or later.after <= earlier.after:
            return "each stage has a larger share and a later `after` than the last"
    if stages[-1].after > MAX_LENGTH:
        return "a plan lasts a year at most"
    if stages[-1].share != BUCKETS:
        return "the last stage is 100%: a rollout ends with every device"
    return None


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _number(item: object) -> bool:
    # Bounded: Python refuses to print integers of thousands of digits.
    if isinstance(item, bool) or not isinstance(item, int | float):
        return False
    return abs(item) < 1e9


def _shown(item: object) -> str:
    text = item.strip() if isinstance(item, str) else None
    if text is None:
        text = str(item) if _number(item) else "(not a stage)"
    return f"`{text[:40]}`"
