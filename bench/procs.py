"""Local processes: free ports, HTTP probes, CPU time and memory from /proc."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_SECONDS = 60.0
IDLE_SAMPLE_SECONDS = 0.5
IDLE_LIMIT_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body; connection failures are status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (uvicorn's workers when there are many)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                children.setdefault(_ppid(entry), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _ppid(proc: Path) -> int:
    stat = (proc / "stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of the processes, summed."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += _stat(Path(f"/proc/{pid}/stat"))[1]
    return total / _TICKS


def _stat(path: Path) -> tuple[str, int]:
    """A process's or thread's name and its user plus system CPU ticks."""
    stat = path.read_text()
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, int(fields[11]) + int(fields[12])


#: Where a server's CPU time goes, by kind of thread (see `thread_cpu_seconds`).
THREAD_KINDS = ("python", "http i/o", "other")


def thread_cpu_seconds(pids: Sequence[int]) -> dict[str, float]:
    """User plus system CPU time of the processes' threads, by kind of thread.

    ``python`` is each process's main thread, where the event loop and the
    application run; ``http i/o`` is granian's Rust runtime (threads named
    tokio-*), which reads requests and writes answers; ``other`` is the rest: the
    SQLite connections' threads that write the recorded rows, and granian's helper.
    """
    totals = dict.fromkeys(THREAD_KINDS, 0)
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    name, ticks = _stat(task / "stat")
                    totals[_thread_kind(int(task.name) == pid, name)] += ticks
    return {kind: ticks / _TICKS for kind, ticks in totals.items()}


def _thread_kind(main: bool, name: str) -> str:
    if main:
        return "python"
    return "http i/o" if name.startswith("tokio") else "other"


def peak_rss_mib(pids: Sequence[int]) -> float:
    """VmHWM (peak resident memory) of the processes, summed, in MiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            total += int(found.group(1)) if found else 0
    return round(total / 1024, 1)


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (/proc/stat, idle and iowait out)."""
    with open("/proc/stat") as stat:
        fields = [int(n) for n in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


@dataclass(frozen=True)
class Usage:
    """CPU seconds of the server measured, and of everything else on the machine."""

    server: float
    other: float
    #: The server's CPU seconds by kind of thread (`thread_cpu_seconds`).
    threads: dict[str, float]

    @classmethod
    def now(cls, pids: Sequence[int]) -> Usage:
        """Totals so far; subtract two to get a run's share."""
        server = cpu_seconds(pids)
        threads = thread_cpu_seconds(pids)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = children.ru_utime + children.ru_stime  # wrk, once it has ended
        return cls(server, machine_busy_seconds() - server - load, threads)

    def __sub__(self, earlier: Usage) -> Usage:
        other = max(self.other - earlier.other, 0.0)
        threads = {
            kind: round(seconds - earlier.threads.get(kind, 0.0), 2)
            for kind, seconds in self.threads.items()
        }
        return Usage(round(self.server - earlier.server, 2), round(other, 2), threads)


def stop_process(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` and wait; kill when it does not end in time."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"  pid {process.pid} did not stop in time: killed", flush=True)
        process.kill()
        process.wait()


def wait_idle(pids: Sequence[int]) -> float:
    """Seconds until the processes use under 5 % of a core (at most a minute)."""
    started = time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - started < IDLE_LIMIT_SECONDS:
        time.sleep(IDLE_SAMPLE_SECONDS)
        after = cpu_seconds(pids)
        if after - before < IDLE_SAMPLE_SECONDS * 0.05:
            break
        before = after
    return round(time.monotonic() - started, 2)
