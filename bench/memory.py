"""Peak memory of a ``rasbot serve`` worker: first sync, restart, changed listing.

Run by hand, never in CI: it starts servers on 127.0.0.1 only and prints
VmHWM/VmRSS of the worker at each stage. See ``bench/README.md``.

    .venv/bin/python bench/memory.py [--catalogs example,10000] [--imports]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from bench.procs import http_get, process_tree  # noqa: E402
from bench.run import catalogs  # noqa: E402
from bench.servers import RASBOT, Rasbot  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
# A few requests of each device endpoint, as the installer and updater send them.
REQUESTS = (
    "/update?build&channel=16&distribution=rasplex&revision=a02082"
    "&serial=memory&version=1.6.2.123-e23a7eef",
    "/update?build&channel=2&distribution=rasplex&revision=a02082&serial=memory",
    "/install?platform=windows&device=RPi2",
    "/install?platform=linux&device=RPi",
    "/install?platform=osx&device=RPi3bplus",
    "/devices",
)
IMPORTS = (
    "fastapi",
    "sqlalchemy.ext.asyncio",
    "alembic.command",
    "httpx",
    "prometheus_client",
    "yaml",
    "structlog",
    "jinja2",
    "matplotlib",
    "rasbot.app",
)


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", status, re.MULTILINE)
    return {name: int(kib) for name, kib in found}


def _mib(kib: int) -> str:
    return f"{kib / 1024:6.1f}"


def measure_catalog(
    name: str, releases: list[Any], workdir: Path, server_name: str | None
) -> None:
    """A first sync from an empty database, a restart on it, then a changed listing."""
    releases_file = workdir / "releases.json"
    releases_file.write_text(json.dumps(releases))
    print(f"\n{name} ({len(releases)} releases)   VmHWM MiB  VmRSS MiB")
    for start in ("first sync", "restart"):
        server = Rasbot(releases_file, workdir, "0-1", 1, server_name)
        server.start()
        try:
            _wait_synced(server)
            _print_stage(f"{start}: healthy", server)
            _send_requests(server)
            _print_stage(f"{start}: after requests", server)
            if start == "restart":
                _change_listing(server, releases, releases_file)
                _print_stage("listing changed: rebuilt", server)
        finally:
            server.stop()


def _send_requests(server: Rasbot) -> None:
    for path in REQUESTS:
        for _ in range(3):
            status, _body = http_get(server.base + path, timeout=60)
            if status != 200:
                sys.exit(f"bench: {path} answered {status}")


def _change_listing(server: Rasbot, releases: list[Any], path: Path) -> None:
    """Edit a release's notes and sync, as on a release day; wait for the rebuild.

    The sync runs as ``rasbot refresh``; the server follows the stored revision
    and builds the new catalog while it still serves the old one.
    """
    first = releases[0]
    edited = [dict(first, body=f"{first.get('body') or ''}\n"), *releases[1:]]
    path.write_text(json.dumps(edited))
    subprocess.run(
        [str(RASBOT), "refresh"], env=server.env(), check=True, capture_output=True
    )
    for _ in range(600):
        status, body = http_get(server.base + "/healthz", timeout=60)
        if status == 200 and json.loads(body)["catalog"]["revision"] > 1:
            return
        time.sleep(0.2)
    sys.exit("bench: the changed listing was not served in 2 minutes")


def _wait_synced(server: Rasbot) -> None:
    # /healthz answers before the first sync's catalog is in; /devices lists a
    # device once it is. Bounded: a sync of 10,000 releases takes seconds.
    for _ in range(600):
        assert server.process is not None
        if server.process.poll() is not None:
            sys.exit(f"bench: rasbot serve exited:\n{server.log.read_text()}")
        status, body = http_get(server.base + "/devices", timeout=60)
        if status == 200 and body != b"[]":
            return
        time.sleep(0.2)
    sys.exit("bench: the catalog did not arrive in 2 minutes")


def _print_stage(stage: str, server: Rasbot) -> None:
    assert server.process is not None
    for role, pid in _roles(server.process.pid):
        found = memory_kib(pid)
        label = f"{stage} ({role})"
        print(f"  {label:<40} {_mib(found['VmHWM'])}     {_mib(found['VmRSS'])}")


def _roles(main: int) -> list[tuple[str, int]]:
    """The worker, and the launcher when the worker is a process of its own.

    uvicorn with one worker serves in the process it was started as; granian
    forks its worker from a launcher that only supervises it.
    """
    children = [pid for pid in process_tree(main) if _parent(pid) == main]
    if not children:
        return [("worker", main)]
    return [("launcher", main), *(("worker", pid) for pid in children)]


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


_IMPORT_PROBE = """
import re, sys
def rss():
    text = open('/proc/self/status').read()
    return int(re.search(r'^VmRSS:\\s+(\\d+)', text, re.M).group(1))
print(f"(interpreter) {rss()} {rss()}")
for name in sys.argv[1:]:
    start = rss()
    __import__(name)
    print(f"{name} {rss() - start} {rss()}")
"""


def measure_imports() -> None:
    """The RSS each import adds, in order, and the app's alone from a fresh start."""
    print("\nimport                    adds MiB    RSS MiB")
    command = [str(PYTHON), "-c", _IMPORT_PROBE, *IMPORTS]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        module, adds, total = line.split()
        print(f"  {module:<24} {_mib(int(adds))}    {_mib(int(total))}")
    command = [str(PYTHON), "-c", _IMPORT_PROBE, "rasbot.app"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    print(f"  rasbot.app alone         {_mib(int(out.split()[-1]))}    (RSS)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", default="example,10000")
    parser.add_argument("--imports", action="store_true", help="import costs too")
    parser.add_argument("--server", help="granian or uvicorn; default: rasbot's")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.imports:
        measure_imports()
    for name, releases in catalogs(args.catalogs):
        with tempfile.TemporaryDirectory(prefix="rasbot-memory-") as tmp:
            measure_catalog(name, releases, Path(tmp), args.server)


if __name__ == "__main__":
    main()
