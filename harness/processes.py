"""Child processes (redis-server, gunicorn) that never outlive the harness.

Every child starts in a session of its own, so that stopping it stops its whole process group
(gunicorn's workers included), and asks the kernel to send it SIGTERM should the harness die
without cleaning up. Children still alive at interpreter exit are killed by an ``atexit`` hook.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

PARENT_ENV = "THROTTLE_HARNESS_PARENT"  # lets tests find anything a harness process left behind
_live: set[subprocess.Popen[bytes]] = set()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the atexit hook still applies
        pass


def spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout and stderr going to ``log_path``."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env={**env, PARENT_ENV: str(os.getpid())},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    _live.add(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the child's process group; SIGKILL it if it has not exited within ``grace_s``."""
    try:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        # Kill the group even when the leader exited: a worker may have outlived its arbiter.
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=grace_s)
    finally:
        _live.discard(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def log_tail(log_path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a child's log, for error messages."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        _signal_group(proc, signal.SIGKILL)
        _live.discard(proc)
