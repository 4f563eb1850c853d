"""Several ``rasbot serve`` processes sharing one database, as behind a load balancer.

Runs on whichever database the suite runs on: a shared SQLite file here, MariaDB or
PostgreSQL with ``RASBOT_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests import factories
from tests.github_stub import GitHubStub
from tests.serverprocess import ServerProcess

pytestmark = pytest.mark.slow

SECRET = "instances-webhook-secret"
LEASE_SECONDS = 2.0


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    with GitHubStub(factories.history(), page_size=3) as stub:
        yield stub


@pytest.fixture
def env(github: GitHubStub, database_url: str) -> dict[str, str]:
    return {
        "RASBOT_GITHUB_API_URL": github.url,
        "RASBOT_DATABASE_URL": database_url,
        "RASBOT_GITHUB_POLL_SECONDS": "3600",
        "RASBOT_POLL_LEASE_SECONDS": str(LEASE_SECONDS),
        "RASBOT_GITHUB_WEBHOOK_SECRET": SECRET,
        "RASBOT_RECORD_FLUSH_SECONDS": "0.1",
    }


@pytest.fixture
def pair(env: dict[str, str], tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers: list[ServerProcess] = []
    for name in ("a", "b"):
        servers.append(ServerProcess(env, tmp_path / f"{name}.log").start())
    yield servers
    for server in servers:
        server.stop()


def health(server: ServerProcess) -> dict[str, object]:
    report: dict[str, object] = httpx.get(server.url + "/healthz", timeout=5).json()
    return report


def sync_of(server: ServerProcess) -> dict[str, object]:
    found = health(server)["sync"]
    assert isinstance(found, dict)
    return found


def offered_version(server: ServerProcess) -> str:
    text = httpx.get(server.url + "/update?version=1.7.1", timeout=5).text
    release = ET.fromstring(text).find("Release")
    return "" if release is None else release.attrib["version"]


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "condition not met in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_exactly_one_instance_polls(pair: list[ServerProcess]) -> None:
    wait_for(lambda: any(sync_of(s)["poller"] for s in pair))

    assert sorted(bool(sync_of(s)["poller"]) for s in pair) == [False, True]


def test_webhook_to_one_instance_reaches_the_other(
    github: GitHubStub, pair: list[ServerProcess]
) -> None:
    a, b = pair
    github.add_release(factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z"))
    body = json.dumps(
        {"action": "published", "repository": {"full_name": "RasPlex/RasPlex"}}
    ).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    response = httpx.post(
        a.url + "/github/webhook",
        content=body,
        headers={"X-GitHub-Event": "release", "X-Hub-Signature-256": signature},
    )

    assert response.status_code == 202
    wait_for(lambda: offered_version(a) == "1.8.1", seconds=5)
    wait_for(lambda: offered_version(b) == "1.8.1", seconds=10)


def test_killed_poller_is_replaced(
    github: GitHubStub, pair: list[ServerProcess]
) -> None:
    wait_for(lambda: any(sync_of(s)["poller"] for s in pair))
    holder = next(s for s in pair if sync_of(s)["poller"])
    other = next(s for s in pair if s is not holder)
    github.reset_counters()

    holder.kill()

    wait_for(lambda: bool(sync_of(other)["poller"]), seconds=LEASE_SECONDS * 5)
    wait_for(lambda: github.counts.requests > 0, seconds=5)


def test_recording_from_both_instances_lands_once(
    pair: list[ServerProcess], database_url: str
) -> None:
    from tests.test_end_to_end import query

    sent = 0
    for i in range(60):
        server = pair[i % 2]
        serial = f"{i:016x}"
        response = httpx.get(f"{server.url}/update?serial={serial}&version=1.0.3")
        assert response.status_code == 200
        sent += 1
    for server in pair:
        server.stop()

    rows = query(database_url, "SELECT serial FROM update_checks")
    assert len(rows) == sent
    assert len({serial for (serial,) in rows}) == sent
