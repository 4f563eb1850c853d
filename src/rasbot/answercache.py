"""Answers already computed for the current catalog snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasbot.catalog import Catalog

#: What an entry costs besides the text it holds: the key, the dict slot, objects.
ENTRY_OVERHEAD_BYTES = 256


class AnswerCache:
    """Answers by key, valid while the catalog snapshot they came from is served.

    Devices ask the same few questions over and over; an answer depends only on
    the catalog and the key, so it is kept until the catalog is replaced. The bounds
    keep clients that send ever new versions (or Host headers, which /install
    answers of megabytes quote) from growing it for ever: when either would be
    passed, the cache starts again empty. An answer larger than half the byte
    bound is not kept: it would push the others out.
    """

    def __init__(
        self, max_entries: int = 4096, max_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self._catalog: Catalog | None = None
        self._entries: dict[tuple[Any, ...], Any] = {}
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """About how many bytes the kept answers take."""
        return self._bytes

    def get(
        self, catalog: Catalog, key: tuple[Any, ...], make: Callable[[], Any]
    ) -> Any:
        """The answer for ``key`` in ``catalog``, computed by ``make`` once."""
        if catalog is not self._catalog:
            self._catalog = catalog
            self._clear()
        found = self._entries.get(key)
        if found is None:
            found = make()
            self._keep(key, found)
        return found

    def _keep(self, key: tuple[Any, ...], answer: Any) -> None:
        size = _size(key) + _size(answer) + ENTRY_OVERHEAD_BYTES
        if size > self._max_bytes // 2:
            return
        full = len(self._entries) >= self._max_entries
        if full or self._bytes + size > self._max_bytes:
            self._clear()
        self._entries[key] = answer
        self._bytes += size

    def _clear(self) -> None:
        self._entries = {}
        self._bytes = 0


def _size(value: Any) -> int:
    """The length of the text in an answer or key: what grows with the catalog."""
    if isinstance(value, bytes | str):
        return len(value)
    if isinstance(value, tuple | frozenset):
        return sum(_size(item) for item in value)
    return 0
