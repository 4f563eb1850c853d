"""The statistics dashboard: numbers, charts, privacy, and a real browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from rasbot import db, migrate
from tests.conftest import flush
from tests.serverprocess import ServerProcess

SERIAL = "00000000abcdef12"
PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def visit(client: TestClient) -> None:
    """Two devices, one of them twice, an install and a download; all written."""
    for serial, version in (
        (SERIAL, "1.6.2"),
        ("00000000abcdef13", "1.7.1"),
        (SERIAL, "1.7.1"),
    ):
        update = f"/update?channel=16&revision=a02082&serial={serial}&version={version}"
        assert client.get(update).status_code == 200
    assert client.get("/updated?serial=x&version=<script>1</script>").status_code == 200
    assert client.get("/install?platform=osx&device=RPi2").status_code == 200
    download = "/download/1.7.1/RasPlex-RPi2.RP-1.7.1.tar.gz"
    assert client.get(download, follow_redirects=False).status_code == 302
    flush(client)


def images(html: str) -> list[str]:
    """The chart URLs of a dashboard page, as the browser resolves them."""
    return [
        "/" + src.replace("&amp;", "&")
        for src in re.findall(r'<img src="([^"]+)"', html)
    ]


def test_page_shows_numbers_and_links_charts(client: TestClient) -> None:
    visit(client)

    response = client.get("/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))
    assert "2 devices active, last 24 hours" in text
    assert "1.7.1 2 100.0 %" in text  # versions in the field
    assert "osx 1" in text
    assert len(images(response.text)) == 6


def test_every_chart_is_a_png(client: TestClient) -> None:
    visit(client)
    charts = images(client.get("/dashboard?days=7").text)

    for url in charts:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(PNG)


def test_page_never_shows_serials_addresses_or_client_markup(
    client: TestClient,
) -> None:
    visit(client)

    html = client.get("/dashboard").text

    assert SERIAL not in html
    assert "testclient" not in html  # the test client's address
    assert "<script" not in html


@pytest.mark.parametrize("days", ["0", "731", "soon"])
def test_bad_periods_are_refused(client: TestClient, days: str) -> None:
    assert client.get(f"/dashboard?days={days}").status_code == 422
    assert client.get(f"/dashboard/active.png?days={days}").status_code == 422


def test_chosen_period_is_marked(client: TestClient) -> None:
    html = client.get("/dashboard?days=90").text

    assert '<a href="?days=90" aria-current="page">' in html
    assert "dashboard/active.png?days=90" in html


def test_adoption_chart_of_a_named_release(client: TestClient) -> None:
    assert client.get("/dashboard/adoption.png?version=1.6.2").status_code == 200
    assert client.get("/dashboard/adoption.png?version=9.9.9").status_code == 404


def test_unknown_chart_is_404(client: TestClient) -> None:
    assert client.get("/dashboard/serials.png").status_code == 404


def test_setting_turns_the_dashboard_off(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(dashboard=False)

    assert client.get("/dashboard").status_code == 404
    assert client.get("/dashboard/active.png").status_code == 404
    assert client.get("/json/stats").status_code == 200


# -- in a browser ---------------------------------------------------------------


async def _history(database_url: str) -> None:
    """Five weeks of update checks and installs before the server starts."""
    engine = db.create_engine(database_url)
    await migrate.upgrade(engine)
    now = datetime.now(UTC)
    checks, installs = [], []
    for day in range(35):
        moment = now - timedelta(days=day, hours=1)
        for n in range(20 + day % 7):
            version = "1.7.1" if n < 35 - day else "1.6.2"
            checks.append(_check(moment, f"{n:016x}", version))
        installs.append(
            {
                "at": moment,
                "platform": "windows",
                "device": "RPi2",
                "address": f"10.0.0.{day}",
            }
        )
    async with engine.begin() as conn:
        await conn.execute(sa.insert(db.update_checks), checks)
        await conn.execute(sa.insert(db.installs), installs)
    await engine.dispose()


def _check(moment: datetime, serial: str, version: str) -> dict[str, Any]:
    return {
        "at": moment,
        "serial": serial,
        "client_version": version,
        "channel": "stable",
        "device": "RPi2",
        "address": "192.0.2.7",
    }


@pytest.fixture
def server(
    database_url: str, releases_file: Path, tmp_path: Path
) -> Iterator[ServerProcess]:
    """`rasbot serve` on a database with some history."""
    asyncio.run(_history(database_url))
    env = {
        "RASBOT_DATABASE_URL": database_url,
        "RASBOT_RELEASES_FILE": str(releases_file),
        "RASBOT_GITHUB_POLL_SECONDS": "0",
        "RASBOT_RECORD_FLUSH_SECONDS": "0.1",
    }
    with ServerProcess(env, tmp_path / "server.log") as process:
        yield process


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)
def test_dashboard_in_chromium(server: ServerProcess) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")
    httpx.get(f"{server.url}/install?platform=linux", timeout=5)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            desktop = _load(browser, server.url, {"width": 1200, "height": 900})
            phone = _load(browser, server.url, {"width": 390, "height": 844})
        finally:
            browser.close()

    for seen in (desktop, phone):
        assert seen["errors"] == []
        assert len(seen["images"]) == 6
        assert all(width > 0 for _, width in seen["images"]), seen["images"]
    # On a phone nothing sticks out sideways: the page scrolls one way only.
    assert phone["overflow"] <= 0
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 0


def _load(browser: Any, url: str, viewport: dict[str, int]) -> dict[str, Any]:
    """Open the dashboard; what the console said, the images, and a screenshot."""
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    response = page.goto(f"{url}/dashboard?days=30", wait_until="load")
    assert response is not None and response.status == 200
    found = page.eval_on_selector_all(
        "img", "all => all.map(i => [i.src, i.naturalWidth])"
    )
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    name = "dashboard.png" if viewport["width"] > 600 else "dashboard-phone.png"
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.close()
    return {"errors": errors, "images": found, "overflow": overflow}
