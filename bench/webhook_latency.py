"""Time from a GitHub webhook delivery to the new release being served.

Starts the GitHub stand-in and two `rasbot serve` processes sharing one database
(SQLite here, or RASBOT_TEST_DATABASE_URL under scripts/testdb), publishes a
release on the stand-in, delivers the webhook to instance A and measures when A,
then B, offer it to an updater. Also counts the GitHub requests of N idle polls.

    .venv/bin/python bench/webhook_latency.py [--rounds 5]
    scripts/testdb mariadb .venv/bin/python bench/webhook_latency.py
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import factories
from tests.github_stub import GitHubStub
from tests.serverprocess import ServerProcess

SECRET = "bench-webhook-secret"


def offered(server: ServerProcess) -> str:
    text = httpx.get(server.url + "/update?version=1.0", timeout=5).text
    release = ET.fromstring(text).find("Release")
    return "" if release is None else release.attrib["version"]


def deliver(server: ServerProcess) -> None:
    body = json.dumps(
        {"action": "published", "repository": {"full_name": "RasPlex/RasPlex"}}
    ).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = httpx.post(
        server.url + "/github/webhook",
        content=body,
        headers={
            "X-GitHub-Event": "release",
            "X-Hub-Signature-256": f"sha256={digest}",
        },
    )
    response.raise_for_status()


def wait_until(server: ServerProcess, version: str, started: float) -> float:
    while offered(server) != version:
        if time.perf_counter() - started > 30:
            raise RuntimeError(f"{version} not served after 30 s")
        time.sleep(0.005)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rasbot-webhook-"))
    url = os.environ.get("RASBOT_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{work / 'rasbot.db'}"
    )
    with GitHubStub(factories.history(), page_size=30, token="t") as github:
        env = {
            "RASBOT_GITHUB_API_URL": github.url,
            "RASBOT_GITHUB_TOKEN": "t",
            "RASBOT_DATABASE_URL": url,
            "RASBOT_GITHUB_POLL_SECONDS": "3600",
            "RASBOT_GITHUB_WEBHOOK_SECRET": SECRET,
            "RASBOT_LOG_LEVEL": "warning",
        }
        a = ServerProcess(env, work / "a.log").start()
        b = ServerProcess(env, work / "b.log").start()
        try:
            measure(github, a, b, args.rounds)
        finally:
            a.stop()
            b.stop()


def measure(
    github: GitHubStub, a: ServerProcess, b: ServerProcess, rounds: int
) -> None:
    to_a, to_b = [], []
    for i in range(rounds):
        version = f"9.{i}.0"
        github.add_release(
            factories.release(100 + i, version, published="2030-01-01T00:00:00Z")
        )
        started = time.perf_counter()
        deliver(a)
        to_a.append(wait_until(a, version, started))
        to_b.append(wait_until(b, version, started))
    print(
        f"webhook -> served by the instance it reached: median "
        f"{statistics.median(to_a) * 1000:.0f} ms, max {max(to_a) * 1000:.0f} ms"
    )
    print(
        f"webhook -> served by the other instance:      median "
        f"{statistics.median(to_b) * 1000:.0f} ms, max {max(to_b) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
