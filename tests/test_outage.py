"""A database outage never changes an answer to a device, and loses no recording.

Stops and starts the real MariaDB or PostgreSQL server that ``scripts/testdb``
runs; skipped on SQLite, which has no server to stop.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import factories
from tests.github_stub import GitHubStub
from tests.serverprocess import ServerProcess
from tests.test_end_to_end import query

CONTROL = os.environ.get("RASBOT_TEST_DATABASE_CONTROL")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CONTROL is None, reason="needs a database server to stop"),
]

QUERIES = [
    "/update?channel=16&revision=a02082&serial=00000000abcdef12&version=1.0.3",
    "/update?channel=2&revision=0010&serial=00000000abcdef13&version=0.5.10",
    "/install?platform=windows&device=RPi2",
    "/devices",
]


def database(action: str) -> None:
    assert CONTROL is not None
    subprocess.run([*shlex.split(CONTROL), action], check=True, timeout=60)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with GitHubStub(factories.history(), page_size=3) as github:
        env = {
            "RASBOT_GITHUB_API_URL": github.url,
            "RASBOT_DATABASE_URL": database_url,
            "RASBOT_RECORD_FLUSH_SECONDS": "0.2",
        }
        with ServerProcess(env, tmp_path / "serve.log") as process:
            yield process
        database("start")  # whatever the test did, leave the server running


def answers(server: ServerProcess) -> list[tuple[int, str]]:
    found = []
    for path in QUERIES:
        response = httpx.get(server.url + path, timeout=10)
        found.append((response.status_code, response.text))
    return found


def test_answers_stay_and_recording_waits_for_the_database(
    server: ServerProcess, database_url: str
) -> None:
    before = answers(server)

    database("stop")
    during = [answers(server) for _ in range(5)]
    health = httpx.get(server.url + "/healthz", timeout=10)
    database("start")

    assert all(found == before for found in during)
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["database"]["reachable"] is False

    # Six rounds of two update checks: every one of them must land.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = httpx.get(server.url + "/healthz", timeout=10).json()
        if report["recording"]["pending"] == 0 and report["database"]["reachable"]:
            break
        time.sleep(0.2)
    rows = query(database_url, "SELECT COUNT(*) FROM update_checks")
    assert rows == [(12,)]
    assert report["recording"]["dropped"] == 0
