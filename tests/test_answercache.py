"""The answer cache: kept per catalog snapshot, bounded in entries and in bytes."""

from __future__ import annotations

from rasbot.answercache import AnswerCache
from rasbot.catalog import Catalog


def catalog() -> Catalog:
    return Catalog(releases=(), problems=())


def test_an_answer_is_made_once_per_catalog() -> None:
    cache, made = AnswerCache(), []
    first, second = catalog(), catalog()

    def make() -> bytes:
        made.append(1)
        return b"answer"

    for snapshot in (first, first, second, second):
        assert cache.get(snapshot, ("key",), make) == b"answer"
    assert len(made) == 2


def test_the_bytes_kept_stay_under_the_bound() -> None:
    cache, snapshot = AnswerCache(max_bytes=100_000), catalog()

    for number in range(100):
        cache.get(snapshot, ("install", number), lambda: b"x" * 10_000)
        assert cache.size_bytes <= 100_000
    assert cache.size_bytes > 0


def test_an_answer_too_big_to_keep_is_made_every_time() -> None:
    cache, snapshot, made = AnswerCache(max_bytes=100_000), catalog(), []

    def make() -> bytes:
        made.append(1)
        return b"x" * 60_000

    for _ in range(3):
        assert cache.get(snapshot, ("install",), make) == b"x" * 60_000
    assert len(made) == 3
    assert cache.size_bytes == 0
