"""Child processes (redis-server, gunicorn) that never outlive the harness.

Every child starts in a session of its own, so that stopping it stops its whole process group
(gunicorn's workers included), and asks the kernel to send it SIGTERM should the harness die
without cleaning up (Linux's parent-death signal). Children still alive at interpreter exit are
killed by an ``atexit`` hook.

The death signal is set by util-linux's ``setpriv --pdeathsig TERM``, which then execs the
child (same pid, same argv after it), so that no Python runs between fork and exec while other
threads (rich's refresh thread) may hold locks. Without ``setpriv`` the child calls ``prctl``
through a function pointer resolved here, at import, and nothing else.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PARENT_ENV = "THROTTLE_HARNESS_PARENT"  # lets tests find anything a harness process left behind
_live: set[subprocess.Popen[bytes]] = set()
_PR_SET_PDEATHSIG = 1


def _resolve_prctl() -> Callable[[], None] | None:
    """A call of ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` with everything resolved in advance."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    args = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM))
    return lambda: prctl(*args)


_set_death_signal = _resolve_prctl()


@functools.cache
def _setpriv() -> str | None:
    """util-linux's ``setpriv``, when it has ``--pdeathsig`` (2.33 and later)."""
    if not sys.platform.startswith("linux"):
        return None
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        usage = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in usage else None


def _with_death_signal(
    argv: Sequence[str], env: Mapping[str, str]
) -> tuple[list[str], Callable[[], None] | None]:
    """``argv`` and a ``preexec_fn`` that make the child get SIGTERM when the harness dies."""
    setpriv = _setpriv()
    if setpriv is None:
        return list(argv), _set_death_signal  # None where there is no prctl: atexit applies
    search = os.pathsep.join(os.get_exec_path(dict(env)))
    if shutil.which(argv[0], path=search) is None:  # as Popen would, not setpriv's exit 127
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    return [setpriv, "--pdeathsig", "TERM", "--", *argv], None


def spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout and stderr going to ``log_path``."""
    command, preexec = _with_death_signal(argv, env)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            env={**env, PARENT_ENV: str(os.getpid())},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )
    _live.add(proc)
    return proc


def stop(
    proc: subprocess.Popen[bytes], grace_s: float = 5.0, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Signal the child's process group (SIGTERM unless ``sig`` says otherwise); SIGKILL it if
    it has not exited within ``grace_s``."""
    try:
        _signal_group(proc, sig)
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
