"""Answers already computed for the current catalog snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasbot.catalog import Catalog


class AnswerCache:
    """Answers by key, valid while the catalog snapshot they came from is served.

    Devices ask the same few questions over and over; an answer depends only on
    the catalog and the key, so it is kept until the catalog is replaced. The bound
    keeps clients that send ever new versions from growing it for ever.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._catalog: Catalog | None = None
        self._entries: dict[tuple[Any, ...], Any] = {}
        self._max_entries = max_entries

    def get(
        self, catalog: Catalog, key: tuple[Any, ...], make: Callable[[], Any]
    ) -> Any:
        """The answer for ``key`` in ``catalog``, computed by ``make`` once."""
        if catalog is not self._catalog:
            self._catalog = catalog
            self._entries = {}
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= self._max_entries:
                self._entries = {}
            found = self._entries[key] = make()
        return found
