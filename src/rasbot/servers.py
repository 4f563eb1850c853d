"""The HTTP servers `rasbot serve` can run the application on.

granian (written in Rust) answers the device endpoints 1.4 to 1.8 times as fast as
uvicorn with uvloop and httptools (bench/run.py), so it is used when it is
installed; `RASBOT_SERVER` or `rasbot serve --server` picks either. Its workers are
forked; `stop_signals_default_in_forks` keeps one that is told to stop while it is
still starting from serving on, which otherwise leaves the server unstoppable.
"""

from __future__ import annotations

import importlib.util
import os
import signal

APP = "rasbot.app:create_app"
SERVERS = ("granian", "uvicorn")

#: The signals that stop a server and its workers.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
#: Seconds granian waits for a stopping worker before it kills it.
GRANIAN_KILL_SECONDS = 20


def available(name: str) -> bool:
    """Whether the server ``name`` is installed."""
    return importlib.util.find_spec(name) is not None


def choose(wanted: str) -> str:
    """The server to run: ``wanted``, or for ``auto`` the fastest installed."""
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

    stop_signals_default_in_forks()
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
        # Without it granian waits for ever for a worker that does not stop.
        workers_kill_timeout=GRANIAN_KILL_SECONDS,
    ).serve()


def stop_signals_default_in_forks() -> None:
    """Children forked from here die of SIGTERM and SIGINT until they set handlers.

    granian's main process sets handlers for both that only note the signal on its
    server object, then forks the workers. A worker keeps those handlers until it
    has imported and built the app and set its own (granian/_signals.py
    set_loop_signals): a SIGTERM in between, such as the one the main process sends
    each worker when it stops soon after start, sets a flag nobody reads, and the
    main process waits in join() for a worker that goes on serving. With the
    default action restored in the child, such a worker dies at once. The signals
    stay blocked across the fork so that none reaches the child before that.
    """
    forking = os.getpid()
    saved: set[int | signal.Signals] | None = None

    def before() -> None:
        nonlocal saved
        saved = None
        if os.getpid() == forking:
            saved = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def in_parent() -> None:
        if saved is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)

    def in_child() -> None:
        if saved is not None:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)

    os.register_at_fork(
        before=before, after_in_parent=in_parent, after_in_child=in_child
    )


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
