"""``rasbot serve`` as a real process on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

STARTUP_SECONDS = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A ``rasbot serve`` subprocess with its own environment and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._env = {**os.environ, **env}
        self._workers = workers
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, ready: str = "/healthz") -> ServerProcess:
        """Start and wait until ``ready`` answers 200."""
        command = [
            sys.executable, "-m", "rasbot.cli", "serve",
            "--port", str(self.port), "--workers", str(self._workers),
        ]  # fmt: skip
        log = self.log_path.open("ab")
        # A session of its own: kill() takes the worker processes down too.
        self._process = subprocess.Popen(
            command,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready(ready)
        return self

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"rasbot serve exited:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"rasbot serve not ready in time:\n{self.log()}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), so the recorder writes what it holds."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def pid(self) -> int:
        """The process id of the server's main process."""
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server and its worker processes, from /proc."""
        total = 0
        for pid in _process_group(self.pid):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def kill(self) -> None:
        """Stop at once, workers included, as a crash of the host would."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self if self._process is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _process_group(group: int) -> list[int]:
    """The processes whose process group is ``group``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                found.append(int(entry.name))
    return found
