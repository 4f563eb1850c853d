"""The HTTP servers rasbot serve runs on, and how their workers stop."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rasbot import servers

# A Python handler that only notes the signal, as granian's main process sets
# before it forks its workers; the child then signals itself, as granian's main
# process does when it stops a worker that has not set its own handlers yet.
_FORK_AND_SIGNAL = textwrap.dedent(
    """
    import os, signal, sys, time
    from rasbot import servers

    signal.signal(signal.SIGTERM, lambda *args: None)
    if sys.argv[1] == "hook":
        servers.stop_signals_default_in_forks()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    after = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    died = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    print("died" if died else "lived", "same-mask" if before == after else "mask")
    """
)


def fork_and_signal(mode: str) -> str:
    # In a fresh interpreter: an at-fork hook cannot be taken back.
    return subprocess.run(
        [sys.executable, "-c", _FORK_AND_SIGNAL, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def test_auto_picks_granian_when_it_is_installed() -> None:
    if not servers.available("granian"):
        pytest.skip("granian is not installed")

    assert servers.choose("auto") == "granian"


def test_a_named_server_is_taken_as_named() -> None:
    assert servers.choose("uvicorn") == "uvicorn"


def test_a_forked_worker_dies_of_sigterm_before_it_sets_its_handlers() -> None:
    assert fork_and_signal("hook") == "died same-mask"


def test_without_the_hook_such_a_worker_would_go_on() -> None:
    # The failure the hook exists for: the inherited handler swallows SIGTERM.
    assert fork_and_signal("plain") == "lived same-mask"
