"""The reaper (harness.host.cleanup): what the harness registered is removed when it is SIGKILLed,
nothing is removed twice, and the reaper itself never outlives the harness."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, cli_environment, leftovers, wait_until

pytestmark = pytest.mark.integration

# A stand-in for the harness: two temporary directories (one already done with), a container
# to remove, then either a normal exit or SIGKILL.
HARNESS = textwrap.dedent("""
    import os, signal, sys
    from harness.host.cleanup import on_death_remove_container, temp_dir
    with temp_dir("throttle-harness-done-") as done:
        pass
    with temp_dir("throttle-harness-test-") as path:
        (path / "sub").mkdir()
        (path / "sub" / "file").write_text("x")
        forget = on_death_remove_container("throttle-harness-redis-nonexistent0")
        print(done, path, flush=True)
        if sys.argv[1] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        forget()
""")


def start(how: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **cli_environment(),
        "TMPDIR": str(tmp_path),
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
    }  # nothing to remove it with
    return subprocess.Popen(
        [sys.executable, "-c", HARNESS, how], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def test_sigkill_the_reaper_removes_what_is_registered(tmp_path: Path) -> None:
    proc = start("kill", tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -9
    done, path = (Path(p) for p in out.split())
    assert not done.exists()
    assert wait_until(lambda: not path.exists(), 10), f"{path} was left behind"
    assert wait_until(lambda: not leftovers(proc.pid), 10), leftovers(proc.pid)
    assert not list(tmp_path.glob("throttle-harness-*"))


FAKE_DOCKER = textwrap.dedent("""
    # A stand-in for the docker SDK: records what the reaper removes.
    import json, os

    class _Container:
        def __init__(self, name):
            self.name = name

        def remove(self, **kwargs):
            with open(os.environ["FAKE_DOCKER_LOG"], "a") as fh:
                fh.write(json.dumps([self.name, kwargs]) + "\\n")

    class _Containers:
        def get(self, name):
            return _Container(name)

    class _Client:
        containers = _Containers()

        def close(self):
            pass

    def from_env(**kwargs):
        return _Client()
""")


def test_sigkill_the_reaper_removes_a_registered_container(tmp_path: Path) -> None:
    (tmp_path / "fake" / "docker").mkdir(parents=True)
    (tmp_path / "fake" / "docker" / "__init__.py").write_text(FAKE_DOCKER)
    log = tmp_path / "removed.jsonl"
    env = {**cli_environment(), "TMPDIR": str(tmp_path), "FAKE_DOCKER_LOG": str(log)}
    env["PYTHONPATH"] = f"{tmp_path / 'fake'}:{env['PYTHONPATH']}"
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "kill"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    proc.communicate(timeout=60)
    assert wait_until(lambda: not leftovers(proc.pid), 10), leftovers(proc.pid)
    assert log.read_text().splitlines() == [
        '["throttle-harness-redis-nonexistent0", {"force": true, "v": true}]'
    ]


def test_a_normal_exit_leaves_nothing_and_no_reaper(tmp_path: Path) -> None:
    proc = start("exit", tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not leftovers(proc.pid)  # the harness waits for its reaper at exit
    assert not list(tmp_path.glob("throttle-harness-*"))


def test_no_reaper_for_a_usage_error(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        from harness import cli
        from harness.host import cleanup
        code = cli.main(["run", "--app", "m:app", "--rate", "100/Fortnight"])
        print(code, cleanup._pipe)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.split() == ["2", "None"]
