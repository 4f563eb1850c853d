"""The command families rasbot speaks, in the order `help` lists them.

To add commands (`stats`, `graph`, `crashes`, `crash <id>`, ...): write a module
with a `family = Family("stats")` whose handlers are registered with
`@family.command(...)`, and add its family to `FAMILIES`, or pass it to
`default_registry` where only one adapter should have it.
"""

from __future__ import annotations

from rasbot.chat import (
    boards,
    downloads,
    history,
    releases,
    rollout,
    stats,
    whitelist,
)
from rasbot.chat import help as help_
from rasbot.chat.registry import Family, Registry

FAMILIES: tuple[Family, ...] = (
    help_.family,
    releases.family,
    downloads.family,
    whitelist.family,
    boards.family,
    history.family,
    stats.family,
    rollout.family,
)


def default_registry(*extra: Family) -> Registry:
    """Every family of `FAMILIES`, then ``extra`` ones."""
    return Registry((*FAMILIES, *extra))
