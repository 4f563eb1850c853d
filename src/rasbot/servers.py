"""The HTTP servers `rasbot serve` can run the application on.

granian (written in Rust) answered the device endpoints about 1.4 times as fast as
uvicorn with uvloop and httptools, measured with bench/run.py. uvicorn stays the
default: under runit, granian with two workers now and then ignored a SIGTERM that
came a few seconds after start. `RASBOT_SERVER` or `rasbot serve --server granian`
picks granian.
"""

from __future__ import annotations

import importlib.util

APP = "rasbot.app:create_app"
SERVERS = ("uvicorn", "granian")


def available(name: str) -> bool:
    """Whether the server ``name`` is installed."""
    return importlib.util.find_spec(name) is not None


def choose(wanted: str) -> str:
    """The server to run: ``wanted``, or for ``auto`` the first installed."""
    if wanted != "auto":
        return wanted
    return next(name for name in SERVERS if available(name))


def run(server: str, host: str, port: int, workers: int) -> None:
    """Serve the application until stopped; each worker builds its own app."""
    if server == "granian":
        _granian(host, port, workers)
    else:
        _uvicorn(host, port, workers)


def _granian(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        APP,
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        # The access log would write X-Plex-Token query values to disk.
        log_access=False,
        log_level=LogLevels.warning,
    ).serve()


def _uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The access log would write X-Plex-Token query values to disk.
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )
