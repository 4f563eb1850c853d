"""The tables printed at the end, and the JSON written to bench/results/."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import ENDPOINTS, NGINX, Run
from bench.procs import THREAD_KINDS
from bench.servers import NGINX_CORE, ROOT
from bench.wrk import WRK_CONNECTIONS, WRK_CORE

RESULTS_DIR = ROOT / "bench" / "results"
# Other processes may use this share of one core before the figures are suspect.
NOISY_SHARE = 0.1

# Columns after the endpoint and the round: title, width, format, and how the
# rounds combine into the "med" line.
COLUMNS = (
    ("req/s", 8, ".0f", statistics.median),
    ("p50 ms", 7, ".2f", statistics.median),
    ("p99 ms", 8, ".2f", statistics.median),
    ("×nginx", 7, ".3g", statistics.median),
    ("cpu s", 6, ".2f", statistics.median),
    ("µs/req", 7, ".0f", statistics.median),
    ("cpu×ng", 7, ".3g", statistics.median),
    ("RSS MiB", 8, ".1f", max),
    ("errors", 6, "d", sum),
    ("other", 6, ".2f", statistics.median),
    ("settle", 6, ".1f", statistics.median),
)
HEADER = f"{'endpoint':<19} {'round':>5} " + " ".join(
    f"{title:>{width}}" for title, width, _, _ in COLUMNS
)


def print_report(reports: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """One table per catalog, then the recording check."""
    print(f"\nwrk -t1 -c{WRK_CONNECTIONS} -d{args.seconds}s on core {WRK_CORE};")
    print(
        f"rasbot: {args.workers} worker(s) on core(s) {args.cores}; "
        f"nginx: 1 worker on core {NGINX_CORE}; {args.rounds} round(s)"
    )
    if WRK_CORE in _cores(args.cores):
        print("NOTE: wrk shares the 2 cores with rasbot: req/s understate both.")
    _warn_noise(reports, args.seconds)
    for report in reports:
        _print_catalog(report)


def _warn_noise(reports: list[dict[str, Any]], seconds: int) -> None:
    # The "other" column: CPU time of processes that are neither wrk nor the server.
    others = [run.other_cpu_seconds for r in reports for run in r["runs"]]
    busiest = max(others, default=0.0)
    if busiest > NOISY_SHARE * seconds:
        print(
            f"WARNING: other processes used up to {busiest:.1f} CPU s during a "
            f"{seconds} s run: the figures are noisy; rerun on a quiet machine."
        )


def _cores(spec: str) -> set[str]:
    cores: set[str] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cores.update(str(c) for c in range(int(low), int(high or low) + 1))
    return cores


def _print_catalog(report: dict[str, Any]) -> None:
    print(
        f"\n== {report['catalog']}: {report['releases']} releases, latest "
        f"{report['latest']}, rasbot ready in {report['startup_seconds']} s "
        f"at {report['ready_rss_mib']} MiB"
    )
    print(HEADER)
    for name in (NGINX, *(e.name for e in ENDPOINTS)):
        runs = [r for r in report["runs"] if r.endpoint == name]
        for run in runs:
            print(_line(name, str(run.round), _cells(run)))
        print(_line(name, "med", _median_cells(runs)))
    _print_errors(report["runs"])
    _print_threads(report["runs"])
    _print_recording(report)
    if report["log_warnings"]:
        print("rasbot's log (it runs at warning level):\n" + report["log_warnings"])


def _cells(run: Run) -> list[float | None]:
    return [
        run.wrk.rps,
        run.wrk.p50_ms,
        run.wrk.p99_ms,
        run.ratio,
        run.cpu_seconds,
        run.us_per_request,
        run.cpu_ratio,
        run.peak_rss_mib,
        run.wrk.errors,
        run.other_cpu_seconds,
        run.settle_seconds,
    ]


def _median_cells(runs: list[Run]) -> list[float | None]:
    columns = zip(*(_cells(run) for run in runs), strict=True)
    combined: list[float | None] = []
    for (_, _, _, combine), values in zip(COLUMNS, columns, strict=True):
        present = [v for v in values if v is not None]
        combined.append(combine(present) if present else None)
    return combined


def _line(name: str, label: str, cells: list[float | None]) -> str:
    parts = [f"{name:<19}", f"{label:>5}"]
    for (_, width, spec, _), value in zip(COLUMNS, cells, strict=True):
        parts.append(" " * width if value is None else f"{value:>{width}{spec}}")
    return " ".join(parts)


def _print_threads(runs: list[Run]) -> None:
    # Where rasbot's CPU time per request went, median of the rounds: the event
    # loop and the application, granian's HTTP reading and writing, and the rest
    # (SQLite writing recorded rows, granian's helper thread).
    print("rasbot's CPU µs/req by thread (median): " + " / ".join(THREAD_KINDS))
    for endpoint in ENDPOINTS:
        ours = [r for r in runs if r.endpoint == endpoint.name]
        cells = []
        for kind in THREAD_KINDS:
            found = (r.thread_us_per_request(kind) for r in ours)
            values = [v for v in found if v is not None]
            cells.append(f"{statistics.median(values):5.1f}" if values else "    -")
        print(f"  {endpoint.name:<19} " + " / ".join(cells))


def _print_errors(runs: list[Run]) -> None:
    for run in runs:
        if run.wrk.errors:
            failed = {k: v for k, v in run.wrk.socket_errors.items() if v}
            print(
                f"  round {run.round} {run.endpoint}: non-2xx {run.wrk.non_2xx}, "
                f"socket errors {failed or 'none'} (wrk times out at 2 s)"
            )


def _print_recording(report: dict[str, Any]) -> None:
    print(
        "recording (/update runs): wrk responses vs update_checks rows after "
        f"SIGTERM; up to {WRK_CONNECTIONS} more rows than responses is expected "
        "(requests in flight when wrk stops)"
    )
    for run in report["runs"]:
        if run.rows is None:
            continue
        extra = run.rows - run.wrk.requests
        verdict = "ok" if 0 <= extra <= WRK_CONNECTIONS else "MISMATCH"
        print(
            f"  round {run.round} {run.endpoint:<19} wrk {run.wrk.requests:>7}"
            f"  rows {run.rows:>7}  ({extra:+d}) {verdict}; backlog at end "
            f"{run.backlog}, drained in {run.drain_seconds} s, "
            f"dropped {run.dropped}"
        )


def write_results(reports: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    """``bench/results/<timestamp>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}.json"
    document = {
        "when": stamp,
        "options": vars(args),
        "wrk": {"core": WRK_CORE, "threads": 1, "connections": WRK_CONNECTIONS},
        "nginx": {"core": NGINX_CORE, "workers": 1},
        "catalogs": [
            {**r, "runs": [asdict(run) for run in r["runs"]]} for r in reports
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
