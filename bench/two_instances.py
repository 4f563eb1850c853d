"""Two `rasbot serve` instances sharing one database under load from wrk.

Prints update checks per second across both, and the rows recorded against the
responses wrk counted (the difference is at most the requests in flight when wrk
stopped: 64 connections each). Bounded by --seconds; traffic only to 127.0.0.1.

    scripts/testdb mariadb .venv/bin/python bench/two_instances.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.serverprocess import ServerProcess

from rasbot import db

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "releases.json"
QUERY = "/update?channel=16&revision=a02082&serial=00000000abcdef12&version=1.0.3"


def wrk(url: str, seconds: int) -> subprocess.Popen[str]:
    command = ["wrk", "-t1", "-c64", f"-d{seconds}s", url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def responses(output: str) -> tuple[int, float]:
    count = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert count and rate, output
    return int(count.group(1)), float(rate.group(1))


async def recorded(url: str) -> int:
    engine = db.create_engine(url)
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).select_from(db.update_checks)
        )
    await engine.dispose()
    return int(found or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rasbot-two-"))
    url = os.environ.get("RASBOT_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{work / 'rasbot.db'}"
    )
    env = {
        "RASBOT_RELEASES_FILE": str(EXAMPLES),
        "RASBOT_GITHUB_POLL_SECONDS": "0",
        "RASBOT_DATABASE_URL": url,
        "RASBOT_LOG_LEVEL": "warning",
    }
    servers = [ServerProcess(env, work / f"{n}.log").start() for n in "ab"]
    loads = [wrk(server.url + QUERY, args.seconds) for server in servers]
    outputs = [load.communicate()[0] for load in loads]
    for server in servers:
        server.stop()

    counted = [responses(output) for output in outputs]
    total = sum(count for count, _ in counted)
    rate = sum(per_second for _, per_second in counted)
    rows = asyncio.run(recorded(url))
    print(f"database: {url.split('://')[0]}; {args.seconds} s of wrk -c64 on each")
    print(f"update checks per second across both instances: {rate:.0f}")
    print(
        f"responses counted by wrk: {total}; rows recorded: {rows}; "
        f"difference {rows - total} (at most 128 in flight)"
    )


if __name__ == "__main__":
    main()
