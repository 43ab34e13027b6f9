"""Children die with the harness, even when it is SIGKILLed: setpriv's parent-death signal, or
prctl through a function pointer resolved before any fork (no Python between fork and exec)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, cli_environment, leftovers, wait_until
from harness.host import processes

pytestmark = pytest.mark.integration

# A stand-in for the harness: spawns a long sleep the way the harness spawns redis-server and
# gunicorn, says its pid, and is then SIGKILLed.
PARENT = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from harness.host import processes
    if sys.argv[1] == "prctl":
        processes._setpriv = lambda: None  # as on a machine without util-linux's setpriv
    proc = processes.spawn(["sleep", "300"], os.environ, Path(sys.argv[2]))
    print(proc.pid, flush=True)
    time.sleep(300)
""")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["setpriv", "prctl"])
def test_a_child_dies_when_its_parent_is_sigkilled(how: str, tmp_path: Path) -> None:
    if how == "setpriv" and processes._setpriv() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, how, str(tmp_path / "child.log")],
        cwd=ROOT,
        env=cli_environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert wait_until(lambda: psutil.Process(child).cmdline() == ["sleep", "300"], 10)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: gone(child), 10), f"the child outlived its parent ({how})"
        assert not leftovers(parent.pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_setpriv_wraps_the_command_and_no_preexec_fn_runs() -> None:
    if processes._setpriv() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    argv, preexec = processes._with_death_signal(["sleep", "1"], os.environ)
    assert argv[-3:] == ["--", "sleep", "1"] and "--pdeathsig" in argv and preexec is None


def test_output_still_goes_to_the_log_and_a_missing_binary_is_file_not_found(
    tmp_path: Path,
) -> None:
    log = tmp_path / "child.log"
    proc = processes.spawn(["sh", "-c", "echo to-the-log; echo err >&2"], os.environ, log)
    assert proc.wait(timeout=10) == 0
    processes.stop(proc)
    assert log.read_text().split() == ["to-the-log", "err"]
    with pytest.raises(FileNotFoundError):
        processes.spawn([str(tmp_path / "no-such-binary")], os.environ, log)
