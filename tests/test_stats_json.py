"""GET /json/stats: PROTOCOL.md 7's shape, CORS for the configured origins, caching."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from rasbot.stats import Stats
from rasbot.statsweb import TtlCache
from tests.conftest import flush

SITE = "https://www.rasplex.com"
UPDATE = "/update?channel=16&revision=a02082&version=1.6.2&serial={serial}"


def visit(client: TestClient, *serials: str, installs: tuple[str, ...] = ()) -> None:
    """Devices asking /update, installers asking /install, all written."""
    for serial in serials:
        assert client.get(UPDATE.format(serial=serial)).status_code == 200
    for platform in installs:
        assert client.get(f"/install?platform={platform}").status_code == 200
    flush(client)


def test_shape_is_the_web_sites(client: TestClient) -> None:
    response = client.get("/json/stats")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert set(document) == {"users", "installs", "last_update"}
    days = [str(n) for n in range(1, 8)]
    assert list(document["users"]["days_ago"]) == days
    assert document["users"]["total"] == 0
    assert list(document["installs"]["days_ago"]) == days
    for counts in [*document["installs"]["days_ago"].values()]:
        assert counts == {"windows": 0, "linux": 0, "osx": 0}
    assert document["installs"]["total"] == {"windows": 0, "linux": 0, "osx": 0}
    assert datetime.fromisoformat(document["last_update"]).utcoffset() is not None


def test_counts_distinct_serials_and_install_addresses(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(stats_cache_seconds=0)
    visit(client, "aa", "bb", "aa", installs=("windows", "windows", "osx", "beos"))

    document = client.get("/json/stats").json()

    assert document["users"]["days_ago"]["1"] == 2
    assert document["users"]["days_ago"]["2"] == 0
    assert document["users"]["total"] == 2
    # One address (the test client's) on two platforms; an unknown one left out.
    assert document["installs"]["days_ago"]["1"] == {
        "windows": 1,
        "linux": 0,
        "osx": 1,
    }
    assert document["installs"]["total"] == {"windows": 1, "linux": 0, "osx": 1}


def test_answer_is_cached_for_the_configured_time(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(stats_cache_seconds=300)
    first = client.get("/json/stats")
    visit(client, "aa")

    second = client.get("/json/stats")

    assert second.content == first.content
    assert second.headers["cache-control"] == "public, max-age=300"


def test_no_caching_when_turned_off(make_client: Callable[..., TestClient]) -> None:
    client = make_client(stats_cache_seconds=0)
    client.get("/json/stats")
    visit(client, "aa")

    assert client.get("/json/stats").json()["users"]["total"] == 1


def test_allowed_origin_is_echoed(make_client: Callable[..., TestClient]) -> None:
    client = make_client(stats_origins=f"http://www.rasplex.com, {SITE}/")

    response = client.get("/json/stats", headers={"Origin": SITE})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SITE
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_other_origins_get_no_cors_header(
    make_client: Callable[..., TestClient], origin: str | None
) -> None:
    client = make_client(stats_origins=SITE)
    headers = {"Origin": origin} if origin else {}

    response = client.get("/json/stats", headers=headers)

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"


def test_database_away_is_503_and_not_cached(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def away(self: Stats) -> None:
        raise OperationalError("SELECT", {}, Exception("gone"))

    monkeypatch.setattr(Stats, "json_stats", away)
    response = client.get("/json/stats")

    assert response.status_code == 503
    assert response.text == "statistics unavailable: database\n"
    monkeypatch.undo()
    assert client.get("/json/stats").status_code == 200


def test_openapi_schema_describes_the_statistics(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert (
        "application/json" in paths["/json/stats"]["get"]["responses"]["200"]["content"]
    )
    assert "/dashboard" in paths
    chart = paths["/dashboard/{name}.png"]["get"]
    assert "image/png" in chart["responses"]["200"]["content"]
    assert "/metrics" in paths


async def test_cache_computes_once_for_concurrent_misses() -> None:
    cache: TtlCache[int] = TtlCache(60)
    calls = 0

    async def make() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    found = await asyncio.gather(*(cache.get("k", make) for _ in range(5)))

    assert found == [1] * 5
    assert calls == 1


async def test_cache_of_zero_seconds_keeps_nothing() -> None:
    cache: TtlCache[int] = TtlCache(0)
    values = iter(range(10))

    async def make() -> int:
        return next(values)

    assert [await cache.get("k", make) for _ in range(3)] == [0, 1, 2]


async def test_cache_forgets_the_oldest_entry_when_full() -> None:
    cache: TtlCache[str] = TtlCache(60, entries=2)

    async def make(value: str) -> str:
        return value

    for key in ("a", "b", "c"):
        await cache.get(key, lambda key=key: make(key))

    assert await cache.get("a", lambda: make("again")) == "again"
    assert await cache.get("c", lambda: make("again")) == "c"
