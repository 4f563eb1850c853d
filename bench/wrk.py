"""wrk runs pinned to their own core, and what they report."""

from __future__ import annotations

import json
import re
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

WRK_CORE = "0"
WRK_CONNECTIONS = 64


@dataclass
class WrkResult:
    """What one wrk run reported."""

    requests: int
    rps: float
    p50_ms: float | None  # None when every response came too late (timeouts)
    p99_ms: float | None
    socket_errors: dict[str, int]
    non_2xx: int

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def run_wrk(url: str, seconds: int, script: Path | None = None) -> WrkResult:
    """``wrk -t1 -c64 --latency`` pinned to core 0, with a Lua ``script`` if given."""
    command = ["taskset", "-c", WRK_CORE, "wrk", "-t1", f"-c{WRK_CONNECTIONS}"]
    command += [f"-d{seconds}s", "--latency", url]
    if script is not None:
        command += ["--script", str(script)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return parse_wrk(done.stdout)


# Asks for one path, with the serial drawn from `devices` for each request.
_SPREAD_SCRIPT = """\
local before, after, suffix, devices = {before}, {after}, {suffix}, {devices}
math.randomseed({seed})
request = function()
  local serial = string.format("%08x", math.random(0, devices - 1)) .. suffix
  return wrk.format("GET", before .. serial .. after)
end
"""


def spread_script(
    path: str, serial: str, suffix: str, devices: int, script: Path
) -> Path:
    """Write a wrk script asking for ``path`` with ``serial`` replaced, each time,
    by one of ``devices`` numbers in 8 hex digits and ``suffix``."""
    before, after = path.split(serial)
    # JSON's string literals are Lua's, for the ASCII of a URL.
    script.write_text(
        _SPREAD_SCRIPT.format(
            before=json.dumps(before),
            after=json.dumps(after),
            suffix=json.dumps(suffix),
            devices=devices,
            seed=zlib.crc32(suffix.encode()),
        )
    )
    return script


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(text: str) -> WrkResult:
    """The figures of wrk's report (``--latency`` adds the distribution)."""
    socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    found = re.search(r"Socket errors: (.*)", text)
    if found:
        for name, count in re.findall(r"(\w+) (\d+)", found.group(1)):
            socket_errors[name] = int(count)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = int(_match(r"(\d+) requests in", text))
    # wrk keeps late responses out of the distribution, which then reads 0.
    timed = requests > socket_errors["timeout"]
    return WrkResult(
        requests=requests,
        rps=float(_match(r"Requests/sec:\s+([\d.]+)", text)),
        p50_ms=_duration_ms(_match(r"^\s+50%\s+(\S+)", text)) if timed else None,
        p99_ms=_duration_ms(_match(r"^\s+99%\s+(\S+)", text)) if timed else None,
        socket_errors=socket_errors,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise ValueError(f"wrk output has no {pattern!r}:\n{text}")
    return found.group(1)


def _duration_ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)([a-z]+)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNITS_MS[found.group(2)]
