"""The servers measured: rasbot, and nginx serving a copy of one answer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import free_port, http_get, process_tree, stop_process

ROOT = Path(__file__).resolve().parent.parent
RASBOT = ROOT / ".venv" / "bin" / "rasbot"
NGINX_CORE = 1
STARTUP_SECONDS = 180.0


def ensure_tools() -> None:
    """Install nginx and wrk from Debian when they are missing."""
    if shutil.which("nginx") and shutil.which("wrk"):
        return
    print("installing nginx and wrk from Debian ...", flush=True)
    for packages in (["nginx-light", "wrk"], ["nginx", "wrk"]):
        if _apt_install(packages) or (_apt_update() and _apt_install(packages)):
            return
    sys.exit("bench: could not install nginx and wrk with apt-get")


def _apt_install(packages: list[str]) -> bool:
    command = ["apt-get", "install", "-y", "-q", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, check=False).returncode == 0


def _apt_update() -> bool:
    return subprocess.run(["apt-get", "update", "-q"], check=False).returncode == 0


# --- rasbot ----------------------------------------------------------------------


@dataclass
class Rasbot:
    """A ``rasbot serve`` pinned to ``cores``, with its own temporary state."""

    releases_file: Path
    workdir: Path
    cores: str
    workers: int
    server: str | None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.workdir / "rasbot.db"

    @property
    def log(self) -> Path:
        return self.workdir / "rasbot.log"

    def start(self) -> float:
        """Start, wait until /healthz answers 200; the seconds that took."""
        started = time.monotonic()
        command = ["taskset", "-c", self.cores, str(RASBOT), "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers), *self._server_option()]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()
        self._wait_all_serving()
        return time.monotonic() - started

    def _server_option(self) -> list[str]:
        # Passed through only once `rasbot serve` has a server choice.
        if self.server is None:
            return []
        helptext = subprocess.run(
            [str(RASBOT), "serve", "--help"], capture_output=True, text=True
        ).stdout
        if "--server" not in helptext:
            print(f"  rasbot serve has no --server: {self.server!r} ignored")
            return []
        return ["--server", self.server]

    def env(self) -> dict[str, str]:
        """The environment `rasbot serve` runs in; `rasbot` commands can share it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RASBOT_")}
        return {
            **env,
            "RASBOT_RELEASES_FILE": str(self.releases_file),
            "RASBOT_GITHUB_POLL_SECONDS": "0",
            "RASBOT_DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "RASBOT_CRASH_DIR": str(self.workdir / "crashes"),
            # Nothing is logged per request; what is left is worth reporting.
            "RASBOT_LOG_LEVEL": "warning",
        }

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                sys.exit(f"bench: rasbot serve exited:\n{self.log.read_text()}")
            if http_get(self.base + "/healthz", timeout=2)[0] == 200:
                return
            time.sleep(0.2)
        self.stop()
        sys.exit(f"bench: rasbot not healthy in time:\n{self.log.read_text()}")

    def _wait_all_serving(self) -> None:
        # /healthz was answered by one worker; each answers 503 until it has
        # loaded a catalog of its own. New connections reach the workers in turn,
        # so enough 200s in a row mean all of them serve.
        deadline = time.monotonic() + STARTUP_SECONDS
        in_a_row = 0
        while in_a_row < 10 * self.workers:
            if time.monotonic() > deadline:
                self.stop()
                sys.exit(
                    f"bench: not every worker served in time:\n{self.log.read_text()}"
                )
            in_a_row = in_a_row + 1 if self._serves() else 0
            if not in_a_row:
                time.sleep(0.2)

    def _serves(self) -> bool:
        return http_get(self.base + "/devices", timeout=2)[0] == 200

    def pids(self) -> list[int]:
        assert self.process is not None
        return process_tree(self.process.pid)

    def recording(self) -> dict[str, int]:
        """The recorder's counters from /healthz (one worker's, with several)."""
        status, body = http_get(self.base + "/healthz")
        if status != 200:
            return {}
        counters: dict[str, int] = json.loads(body)["recording"]
        return counters

    def stop(self) -> None:
        """SIGTERM: the recorder writes its queue before the process ends."""
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)


def rasbot_warnings(server: Rasbot) -> str:
    """What rasbot logged: warnings and errors only, at the level it runs with."""
    return server.log.read_text(errors="replace").strip()


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity {affinity};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    types {{ }}
    default_type "application/xml; charset=utf-8";
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
    }}
}}
"""


@dataclass
class Nginx:
    """nginx serving one file, one worker on core 1, in its own prefix."""

    prefix: Path
    body: bytes
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/update.xml"

    def start(self) -> None:
        """Write the file and the configuration, start, wait for a 200."""
        (self.prefix / "www").mkdir(parents=True)
        # Workers run as nobody: they must reach the file through the temp dirs.
        for path in (self.prefix.parent, self.prefix, self.prefix / "www"):
            path.chmod(0o755)
        (self.prefix / "www" / "update.xml").write_bytes(self.body)
        affinity = format(1 << NGINX_CORE, "b")
        conf = NGINX_CONF.format(prefix=self.prefix, port=self.port, affinity=affinity)
        (self.prefix / "nginx.conf").write_text(conf)
        command = ["taskset", "-c", str(NGINX_CORE), "nginx", "-p", str(self.prefix)]
        command += ["-e", str(self.prefix / "error.log")]
        command += ["-c", str(self.prefix / "nginx.conf")]
        self.process = subprocess.Popen(command)
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(100):
            if http_get(self.url, timeout=1) == (200, self.body):
                return
            time.sleep(0.1)
        self.stop()
        sys.exit(f"bench: nginx did not serve {self.url}")

    def pids(self) -> list[int]:
        assert self.process is not None
        return process_tree(self.process.pid)

    def stop(self) -> None:
        """SIGQUIT: nginx's graceful shutdown."""
        if self.process is not None:
            stop_process(self.process, signal.SIGQUIT)
