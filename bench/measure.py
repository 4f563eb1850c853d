"""The endpoints measured, and one wrk run with the server's resource use."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Usage, peak_rss_mib, wait_idle
from bench.servers import Nginx, Rasbot
from bench.wrk import WrkResult, run_wrk, spread_script

DRAIN_SECONDS = 60.0
# Flushes happen at least this often (RASBOT_RECORD_FLUSH_SECONDS, default 1).
FLUSH_SECONDS = 1.0

# What the in-app updater sends (PROTOCOL.md section 2): a Pi 2 on the stable
# channel. The out-of-date client runs a 1.6.2 build; the up-to-date one runs the
# version rasbot offers the out-of-date one. Each run gets its own serial suffix, so
# the rows it recorded can be counted.
UPDATE_QUERY = (
    "/update?build&channel=16&distribution=rasplex&revision=a02082"
    "&serial={serial}&version={version}"
)
OLD_VERSION = "1.6.2.123-e23a7eef"
PROBE_SERIAL = "00000000abcdef12"


@dataclass(frozen=True)
class Endpoint:
    """One URL measured; ``version`` None means it is not an /update URL."""

    name: str
    path: str
    version: str | None = None

    def url(self, base: str, serial: str, latest: str) -> str:
        """The URL of one run; /update URLs carry the run's serial."""
        if self.version is None:
            return base + self.path
        version = latest if self.version == "latest" else self.version
        return base + UPDATE_QUERY.format(serial=serial, version=version)


def run_serial(run_id: int) -> tuple[str, str]:
    """The serial suffix of a run's /update rows, and the serial of its first
    device: eight hex digits, as devices' serials start, then eight characters
    no device serial has.
    """
    suffix = f"bench{run_id:03d}"
    return suffix, "0" * 8 + suffix


ENDPOINTS = (
    Endpoint("update up-to-date", "/update", version="latest"),
    Endpoint("update out-of-date", "/update", version=OLD_VERSION),
    Endpoint("install", "/install?platform=windows&device=RPi2"),
    Endpoint("devices", "/devices"),
)
NGINX = "nginx static"


@dataclass
class Run:
    """One wrk run against one server, with that server's resource use."""

    endpoint: str
    round: int
    wrk: WrkResult
    cpu_seconds: float
    other_cpu_seconds: float  # other processes on the machine: noise
    peak_rss_mib: float
    serial: str | None = None  # the suffix of the serials of an /update run
    ratio: float | None = None  # req/s over nginx's in the same round
    cpu_ratio: float | None = None  # nginx's CPU time per request over ours
    backlog: int | None = None  # rows rasbot still held when wrk ended
    drain_seconds: float | None = None
    dropped: int | None = None
    rows: int | None = None  # update_checks rows of this run, after the stop
    settle_seconds: float | None = None  # until rasbot's CPU went quiet
    #: The server's CPU seconds by kind of thread (bench.procs.THREAD_KINDS).
    thread_cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def us_per_request(self) -> float:
        """CPU microseconds per answered request: less hurt by noise than req/s."""
        return self.cpu_seconds / max(self.wrk.requests, 1) * 1e6

    def thread_us_per_request(self, kind: str) -> float | None:
        """CPU microseconds per answered request in one kind of thread."""
        seconds = self.thread_cpu_seconds.get(kind)
        if seconds is None:
            return None
        return seconds / max(self.wrk.requests, 1) * 1e6


def measure(
    url: str, pids: Sequence[int], seconds: int, script: Path | None = None
) -> tuple[WrkResult, Usage]:
    """One wrk run and the CPU time the server and everybody else used meanwhile."""
    before = Usage.now(pids)
    result = run_wrk(url, seconds, script)
    return result, Usage.now(pids) - before


def measure_nginx(nginx: Nginx, number: int, seconds: int) -> Run:
    """A run against nginx's copy of the /update answer."""
    pids = nginx.pids()
    result, usage = measure(nginx.url, pids, seconds)
    return Run(NGINX, number, result, usage.server, usage.other, peak_rss_mib(pids))


def measure_rasbot(
    server: Rasbot, endpoint: Endpoint, number: int, context: dict[str, Any]
) -> Run:
    """A run against rasbot, then wait until its recorder has caught up.

    /update runs ask as one device, or as ``context["devices"]`` devices at
    random; their rows are told apart by the run's serial suffix.
    """
    suffix, serial = run_serial(context["run_id"])
    context["run_id"] += 1
    url = endpoint.url(server.base, serial, context["latest"])
    script = None
    if endpoint.version is not None and context["devices"] > 1:
        path = url.removeprefix(server.base)
        file = server.workdir / f"{suffix}.lua"
        script = spread_script(path, serial, suffix, context["devices"], file)

    pids = server.pids()
    result, usage = measure(url, pids, context["seconds"], script)
    run = Run(
        endpoint.name, number, result, usage.server, usage.other, peak_rss_mib(pids)
    )
    run.thread_cpu_seconds = usage.threads
    if endpoint.version is not None:
        run.serial = suffix
    run.backlog = server.recording().get("pending")

    # The next run must not pay for this one's writes or requests left in flight.
    run.drain_seconds, run.dropped = wait_drained(server)
    run.settle_seconds = wait_idle(pids)
    return run


def wait_drained(server: Rasbot) -> tuple[float, int | None]:
    """Seconds until rasbot holds no unwritten rows, and how many it dropped."""
    started = time.monotonic()
    counters = server.recording()
    while counters.get("pending") and time.monotonic() - started < DRAIN_SECONDS:
        time.sleep(0.1)
        counters = server.recording()
    if server.workers > 1:
        # /healthz shows one worker's queue; give the others one flush.
        time.sleep(FLUSH_SECONDS * 1.5)
    return round(time.monotonic() - started, 2), counters.get("dropped")
