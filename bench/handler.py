"""CPU cost of rasbot's own code per device request, without HTTP.

Calls the device endpoints' ASGI handler in a loop, in this process, with the scopes
an HTTP server would pass for the bench's requests, then writes what they recorded,
and prints the CPU time per request (handler) and per recorded row (writer). This
leaves out the HTTP server and the network, which bench/run.py measures, and is
steadier than it on a shared machine: it guides work on rasbot's own code.

    .venv/bin/python bench/handler.py                  # example history
    .venv/bin/python bench/handler.py --catalog 10000  # 10,000 releases
    .venv/bin/python bench/handler.py --profile update-out-of-date
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from make_releases import make_releases  # noqa: E402

from bench.measure import OLD_VERSION, PROBE_SERIAL, UPDATE_QUERY  # noqa: E402
from rasbot.app import create_app  # noqa: E402
from rasbot.services import Services  # noqa: E402
from rasbot.settings import Settings  # noqa: E402

HEADERS = [
    (b"host", b"rasbot.example.org"),
    (b"user-agent", b"Plex Home Theater/1.6.2.123 (RasPlex)"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"x-plex-client-identifier", b"0f7c2d7b-6b1e-4bb5-9d8e-5f1d1a0f2c11"),
    (b"x-forwarded-for", b"198.51.100.23"),
    (b"x-forwarded-proto", b"https"),
]


def update_query(version: str) -> str:
    """The updater's query, as bench/run.py sends it, with the Plex token."""
    query = UPDATE_QUERY.format(serial=PROBE_SERIAL, version=version)
    return query.split("?", 1)[1] + "&X-Plex-Token=bench-token"


def scope(path: str, query: str) -> dict[str, Any]:
    """An ASGI HTTP scope as granian or uvicorn builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    return None


def releases_file(catalog: str, workdir: Path) -> Path:
    if catalog == "example":
        return ROOT / "examples" / "releases.json"
    path = workdir / "releases.json"
    path.write_text(json.dumps(make_releases(int(catalog), seed=0)))
    return path


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'rasbot.db'}",
        releases_file=releases_file(args.catalog, workdir),
        github_poll_seconds=0,
        trusted_proxies="127.0.0.1" if args.behind_proxy else "",
    )
    app = create_app(settings)
    svc = Services.build(settings)
    app.app.state.services = svc
    await svc.open()
    await svc.syncer.refresh("bench")
    svc.recorder.start()
    latest = max(svc.syncer.catalog.releases, key=lambda r: r.version).name
    requests = {
        "update-up-to-date": scope("/update", update_query(latest)),
        "update-out-of-date": scope("/update", update_query(OLD_VERSION)),
        "install": scope("/install", "platform=windows&device=RPi2"),
        "devices": scope("/devices", ""),
    }
    print(
        f"{args.catalog} catalog, latest {latest}; the least CPU time of "
        f"{args.repeat} repeats of {args.requests} requests each"
    )
    print(f"{'endpoint':20} {'handler µs/req':>15} {'writer µs/row':>14}")
    for name, request in requests.items():
        for _ in range(200):  # answers cached, code warm
            await app(request, receive, send)
        handler, writer = [], []
        for _ in range(args.repeat):
            await svc.recorder.flush()
            written = svc.recorder.written
            profile = cProfile.Profile() if args.profile == name else None
            started = time.process_time()
            if profile:
                profile.enable()
            for _ in range(args.requests):
                await app(request, receive, send)
            if profile:
                profile.disable()
            handled = time.process_time()
            await svc.recorder.flush()
            rows = svc.recorder.written - written
            if rows:
                writer.append((time.process_time() - handled) * 1e6 / rows)
            handler.append((handled - started) * 1e6 / args.requests)
        print(f"{name:20} {min(handler):15.1f} {min(writer, default=0.0):14.1f}")
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    await svc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="example", help="example or a count")
    parser.add_argument("--requests", type=int, default=10_000, help="per repeat")
    parser.add_argument(
        "--repeat", type=int, default=5, help="the least of these repeats counts"
    )
    parser.add_argument("--profile", help="print a cProfile of this endpoint")
    parser.add_argument(
        "--behind-proxy",
        action="store_true",
        help="as behind nginx: the peer is a trusted proxy that adds X-Forwarded-For",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rasbot-handler-") as workdir:
        asyncio.run(measure(args, Path(workdir)))


if __name__ == "__main__":
    main()
