"""Throughput and latency of rasbot's device endpoints, with nginx as the yardstick.

Run by hand, never in CI: it installs nginx and wrk from Debian when they are
missing and starts servers on 127.0.0.1 only. See ``bench/README.md``.

    .venv/bin/python bench/run.py [--quick] [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from make_releases import make_releases  # noqa: E402

from bench.make_stats_data import create_schema, fill  # noqa: E402
from bench.measure import (  # noqa: E402
    ENDPOINTS,
    OLD_VERSION,
    PROBE_SERIAL,
    UPDATE_QUERY,
    Run,
    measure_nginx,
    measure_rasbot,
)
from bench.procs import http_get, peak_rss_mib, wait_idle  # noqa: E402
from bench.report import print_report, write_results  # noqa: E402
from bench.servers import (  # noqa: E402
    Nginx,
    Rasbot,
    ensure_tools,
    rasbot_warnings,
)

BIG_CATALOG = 10_000
STORED_DAYS = 30


def bench_catalog(
    name: str, releases: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Start rasbot and nginx for one catalog; alternate wrk runs; check recording."""
    with tempfile.TemporaryDirectory(prefix=f"rasbot-bench-{name}-") as tmp:
        workdir = Path(tmp)
        releases_file = workdir / "releases.json"
        releases_file.write_text(json.dumps(releases), encoding="utf-8")
        server = Rasbot(releases_file, workdir, args.cores, args.workers, args.server)
        if args.stored_rows:
            _store_history(server.database, args.stored_rows)
        print(f"\n{name}: {len(releases)} releases; starting rasbot", flush=True)
        try:
            startup = server.start()
            report = _bench_started(name, releases, server, workdir, args)
        finally:
            server.stop()
        report["startup_seconds"] = round(startup, 1)
        report["log_warnings"] = rasbot_warnings(server)
        _count_rows(server.database, report)
        return report


def _store_history(database: Path, rows: int) -> None:
    """A month of recorded requests, as a server in use has: its indexes are large."""
    print(f"storing {rows:,} update checks of {STORED_DAYS} days ...", flush=True)
    asyncio.run(create_schema(database))
    fill(database, rows, STORED_DAYS)


def _bench_started(
    name: str,
    releases: list[dict[str, Any]],
    server: Rasbot,
    workdir: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    ready_rss_mib = peak_rss_mib(server.pids())
    answer, latest = probe(server)
    sizes = {
        e.name: len(http_get(e.url(server.base, PROBE_SERIAL, latest), 30)[1])
        for e in ENDPOINTS
    }
    report: dict[str, Any] = {
        "catalog": name,
        "releases": len(releases),
        "latest": latest,
        "body_bytes": sizes,
        "ready_rss_mib": ready_rss_mib,
    }
    nginx = Nginx(workdir / "nginx", answer)
    nginx.start()
    # A stored history is rolled up in the background once rasbot has started.
    wait_idle(server.pids())
    try:
        report["runs"] = _rounds(server, nginx, latest, args)
    finally:
        nginx.stop()
    return report


def probe(server: Rasbot) -> tuple[bytes, str]:
    """The out-of-date client's answer, and the version it offers."""
    status, answer = http_get(server.base + _probe_path(OLD_VERSION))
    offered = re.search(rb'<Release [^>]*version="([^"]+)"', answer)
    if status != 200 or offered is None:
        sys.exit(f"bench: /update offers nothing to {OLD_VERSION}: {answer!r}")
    latest = offered.group(1).decode()

    status, current = http_get(server.base + _probe_path(latest))
    if status != 200 or b'size="0"' not in current:
        sys.exit(f"bench: /update offers {latest} an update: {current!r}")
    return answer, latest


def _probe_path(version: str) -> str:
    return UPDATE_QUERY.format(serial=PROBE_SERIAL, version=version)


def _rounds(
    server: Rasbot, nginx: Nginx, latest: str, args: argparse.Namespace
) -> list[Run]:
    context = {
        "run_id": 0,
        "latest": latest,
        "seconds": args.seconds,
        "devices": args.devices,
    }
    runs: list[Run] = []
    for number in range(1, args.rounds + 1):
        yardstick = measure_nginx(nginx, number, args.seconds)
        runs.append(yardstick)
        _print_progress(yardstick)
        for endpoint in ENDPOINTS:
            run = measure_rasbot(server, endpoint, number, context)
            run.ratio = round(run.wrk.rps / yardstick.wrk.rps, 5)
            if run.cpu_seconds > 0:
                cpu_ratio = yardstick.us_per_request / run.us_per_request
                run.cpu_ratio = round(cpu_ratio, 5)
            runs.append(run)
            _print_progress(run)
    return runs


def _print_progress(run: Run) -> None:
    p99 = "-" if run.wrk.p99_ms is None else f"{run.wrk.p99_ms:.2f}"
    print(
        f"  round {run.round} {run.endpoint:<19} {run.wrk.rps:>9.0f} req/s"
        f"  p99 {p99:>8} ms",
        flush=True,
    )


def _count_rows(database: Path, report: dict[str, Any]) -> None:
    """After the graceful stop: the update_checks rows each /update run left."""
    query = (
        "SELECT substr(serial, 9), COUNT(*) FROM update_checks"
        " WHERE serial LIKE '%bench%' GROUP BY 1"
    )
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        counts = dict(conn.execute(query))
    for run in report["runs"]:
        if run.serial is not None:
            run.rows = counts.get(run.serial, 0)


# --- command line ----------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Options; ``--quick`` is one round of three seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="default 3")
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    parser.add_argument("--workers", type=int, default=1, help="rasbot workers")
    parser.add_argument(
        "--cores", help="rasbot's cores (taskset -c); default 1, or 0-1 with workers"
    )
    parser.add_argument("--server", help="passed to `rasbot serve --server`")
    parser.add_argument(
        "--devices",
        type=int,
        default=1,
        help="/update runs ask as this many devices, at random (default 1)",
    )
    parser.add_argument(
        "--stored-rows",
        type=int,
        default=0,
        help="update checks stored before rasbot starts (default none)",
    )
    parser.add_argument(
        "--catalogs",
        default=f"example,{BIG_CATALOG}",
        help="comma-separated: example and/or a number of synthetic releases",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 3
    if args.cores is None:
        args.cores = "1" if args.workers == 1 else "0-1"
    return args


def catalogs(spec: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The example history, and synthetic ones of the sizes asked for."""
    for name in spec.split(","):
        if name == "example":
            path = ROOT / "examples" / "releases.json"
            yield name, json.loads(path.read_text(encoding="utf-8"))
        else:
            yield f"synthetic-{name}", make_releases(int(name), seed=0)


def estimate_seconds(args: argparse.Namespace) -> int:
    """wrk's share of the run time; startups and drains come on top."""
    count = len(args.catalogs.split(","))
    return count * args.rounds * (1 + len(ENDPOINTS)) * args.seconds


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print the tables, write the JSON."""
    args = parse_args(argv)
    ensure_tools()
    started = time.monotonic()
    print(f"wrk alone will take {estimate_seconds(args)} s", flush=True)

    reports = [bench_catalog(name, rel, args) for name, rel in catalogs(args.catalogs)]
    print_report(reports, args)
    print(f"\nresults: {write_results(reports, args).relative_to(ROOT)}")
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
