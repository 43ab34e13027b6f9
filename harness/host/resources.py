"""Operating-system limits sized to a run: open files and the listen backlog.

Raised in the harness before gunicorn starts, so that gunicorn inherits them: a low soft limit
(``ulimit -n 256``) must not turn a burst into connection errors on either side.
"""

from __future__ import annotations

import resource
from pathlib import Path

from harness.errors import UsageError

FD_MARGIN = 256  # files, sockets and pipes besides the burst's connections
_SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def ensure_fd_budget(connections: int) -> None:
    """Raise the soft open-files limit to fit ``connections`` (children inherit it); a hard
    limit too low for them is a usage error, before anything starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + FD_MARGIN
    if needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise UsageError(
            f"{connections} connections at once need {needed} open files, but the hard limit "
            f"is {hard} (ulimit -Hn): send fewer requests or raise it"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def listen_backlog(connections: int) -> int:
    """A listen backlog for ``connections`` opened at once, within the kernel's cap."""
    try:
        cap = int(_SOMAXCONN.read_text())
    except (OSError, ValueError):
        cap = 4096
    return max(64, min(cap, max(2048, connections)))
