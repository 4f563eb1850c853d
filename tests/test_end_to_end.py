"""``rasbot serve`` as a real process, syncing from a GitHub stand-in on 127.0.0.1,
answering the exact requests the updater and the installer send."""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rasbot import db
from tests import factories
from tests.github_stub import GitHubStub
from tests.serverprocess import ServerProcess

pytestmark = pytest.mark.slow

TOKEN = "ghp_e2eSecretToken0123456789"
PLEX_TOKEN = "plexSecretToken42"
UPDATER = (
    "/update?build&channel=16&distribution=rasplex&revision={revision}"
    "&serial=00000000abcdef12&version={version}&X-Plex-Token=" + PLEX_TOKEN
)


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    """The stand-in, three releases a page so that pagination is exercised."""
    with GitHubStub(factories.history(), page_size=3, token=TOKEN) as stub:
        yield stub


@pytest.fixture
def server_env(github: GitHubStub, database_url: str) -> dict[str, str]:
    return {
        "RASBOT_GITHUB_API_URL": github.url,
        "RASBOT_GITHUB_TOKEN": TOKEN,
        "RASBOT_DATABASE_URL": database_url,
        "RASBOT_GITHUB_POLL_SECONDS": "300",
        "RASBOT_RECORD_FLUSH_SECONDS": "0.1",
        # createdAt must not depend on the server's time zone.
        "TZ": "America/New_York",
    }


def answers(server: ServerProcess) -> dict[str, str]:
    """What the clients in the field get, keyed by request."""
    requests = [
        UPDATER.format(revision="a02082", version="1.0.3"),
        UPDATER.format(revision="0010", version="1.6.2.123-e23a7eef"),
        UPDATER.format(revision="a020d3", version=""),
        "/updated?channel=16&fromVersion=1.0.3&revision=a02082"
        "&serial=00000000abcdef12&version=1.7.1",
        "/devices",
        "/install?platform=windows",
        "/install?platform=osx&device=RPi2",
    ]
    headers = {"X-Plex-Token": PLEX_TOKEN, "User-Agent": "Plex Home Theater"}
    found = {}
    for path in requests:
        response = httpx.get(server.url + path, headers=headers, timeout=5)
        assert response.status_code == 200, (path, response.text)
        found[path] = response.text
    return found


def release_of(xml_text: str) -> dict[str, str]:
    root = ET.fromstring(xml_text)
    assert root.tag == "MediaContainer"
    release = root.find("Release")
    assert release is not None
    package = release.find("Package")
    assert package is not None
    return {**release.attrib, **{f"package.{k}": v for k, v in package.attrib.items()}}


def test_real_clients_get_exact_answers(
    github: GitHubStub, server_env: dict[str, str], tmp_path: Path
) -> None:
    with ServerProcess(server_env, tmp_path / "serve.log") as server:
        found = answers(server)
        log = server.log()

    rpi2 = release_of(found[UPDATER.format(revision="a02082", version="1.0.3")])
    assert rpi2 == {
        "id": "7",
        "version": "1.7.1",
        "added": "",
        "fixed": "",
        "live": "true",
        "autoupdate": "true",
        "createdAt": "2017-07-01 10:00:00 UTC",
        "package.file": f"{server.url}/download/1.7.1/RasPlex-RPi2.RP-1.7.1.tar.gz",
        "package.fileHash": factories.sha1("RasPlex-RPi2.RP-1.7.1.tar.gz"),
        "package.fileName": "RasPlex-RPi2.RP-1.7.1.tar.gz",
        "package.delta": "false",
    }
    rpi1 = release_of(
        found[UPDATER.format(revision="0010", version="1.6.2.123-e23a7eef")]
    )
    assert rpi1["version"] == "1.7.1"
    assert rpi1["package.fileName"] == "RasPlex-RPi.RP-1.7.1.tar.gz"
    plus = release_of(found[UPDATER.format(revision="a020d3", version="")])
    assert plus["package.fileName"] == "RasPlex-RPi2.RP-1.7.1.tar.gz"

    assert '"id":"RPi2"' in found["/devices"]
    windows = httpx.Response(200, text=found["/install?platform=windows"]).json()
    assert [e["version"] for e in windows] == [
        "1.7.1",
        "1.6.3",
        "1.6.2",
        "1.0.3",
        "0.5.10",
    ]
    osx = httpx.Response(200, text=found["/install?platform=osx&device=RPi2"]).json()
    assert osx[0]["time"] == "2017-07-01T10:00:00+00:00"
    assert osx[1]["version"] == "1.7.0-rc1"

    # Every page was read, through the Link URLs, with the token in its header only.
    paths = [r.path for r in github.requests]
    assert any(p.startswith("/repositories/") for p in paths)
    assert github.token_leaks == []
    assert TOKEN not in log
    assert PLEX_TOKEN not in log


def test_requests_are_recorded_without_secrets(
    server_env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    with ServerProcess(server_env, tmp_path / "serve.log") as server:
        answers(server)

    checks = query(
        database_url,
        "SELECT serial, revision, device, client_version, channel, address, offered"
        " FROM update_checks ORDER BY id",
    )
    installs = query(database_url, "SELECT platform, device FROM installs")
    staged = query(database_url, "SELECT from_version, version FROM updates_staged")
    everything = [
        query(database_url, f"SELECT * FROM {table}") for table in db.metadata.tables
    ]

    assert checks[0] == (
        "00000000abcdef12", "a02082", "RPi2", "1.0.3", "stable", "127.0.0.1", "1.7.1",
    )  # fmt: skip
    assert [c[2] for c in checks] == ["RPi2", "RPi", "RPi3bplus"]
    assert sorted(installs) == [("osx", "RPi2"), ("windows", "RPi")]
    assert staged == [("1.0.3", "1.7.1")]
    assert TOKEN not in repr(everything)
    assert PLEX_TOKEN not in repr(everything)


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the test database, whichever it is."""

    async def run() -> list[tuple[Any, ...]]:
        engine = db.create_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(sa.text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_restart_while_github_fails_serves_the_same_answers(
    github: GitHubStub, server_env: dict[str, str], tmp_path: Path
) -> None:
    with ServerProcess(server_env, tmp_path / "serve.log") as server:
        before = answers(server)

    github.fail(503)
    github.reset_counters()
    with ServerProcess(server_env, tmp_path / "serve.log") as server:
        after = answers(server)
        health = httpx.get(server.url + "/healthz").json()

    assert _without_port(after) == _without_port(before)
    assert github.counts.requests >= 1
    assert health["status"] == "degraded"
    assert "503" in health["sync"]["last_error"]


def _without_port(found: dict[str, str]) -> dict[str, str]:
    # The tracked download URLs name the server's port, which differs per start.
    return {p: _strip_port(t) for p, t in found.items()}


def _strip_port(text: str) -> str:
    return re.sub(r"http://127\.0\.0\.1:\d+/", "http://127.0.0.1:PORT/", text)


def test_rejected_token_serves_nothing_and_is_not_logged(
    github: GitHubStub, server_env: dict[str, str], tmp_path: Path
) -> None:
    wrong = "ghp_WrongToken987654321"
    env = {**server_env, "RASBOT_GITHUB_TOKEN": wrong}

    with ServerProcess(env, tmp_path / "serve.log").start(ready="/") as server:
        deadline = time.monotonic() + 20
        while not github.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        health = httpx.get(server.url + "/healthz", timeout=5)
        log = server.log()

    assert github.requests[0].status == 401
    assert health.status_code == 503
    assert "401" in health.json()["sync"]["last_error"]
    assert wrong not in log
