"""The compose tool this machine has, driven as a user would: ``docker compose`` (the plugin,
v2), else ``docker-compose`` (a v2 binary, or the Python 1.29 that Debian 12 ships). Nothing of
compose is re-implemented: the tool reads the team's file (interpolation, ``env_file``,
``extends``, relative paths) and prints the resolved project, which the harness reshapes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import FleetStartError, UsageError
from harness.host.docker import one_line

TIMEOUT_S = 300.0
# docker-compose 1.x prints YAML only; it is a Python program with PyYAML beside it, so its own
# interpreter turns that YAML into JSON.
_YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"


@dataclass(frozen=True)
class ComposeTool:
    """A compose command line (``docker compose`` or ``docker-compose``) and its version."""

    argv: tuple[str, ...]
    version: str

    @property
    def v1(self) -> bool:
        return self.version.startswith("1.")

    def run(
        self, project: str, files: Sequence[Path], args: Sequence[str], timeout_s: float = TIMEOUT_S
    ) -> str:
        """``compose -p PROJECT -f FILE … ARGS``; its output, or FleetStartError in one line."""
        argv = [*self.argv, "-p", project, *(a for f in files for a in ("-f", str(f))), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise FleetStartError(
                f"{' '.join(self.argv)} {args[0]} did not finish within {timeout_s:g}s"
            ) from None
        if done.returncode != 0:
            raise FleetStartError(
                f"{' '.join(self.argv)} {args[0]} failed: {_last_line(done.stderr)}",
                detail=done.stderr[-4000:],
            )
        return done.stdout

    def config(self, project: str, files: Sequence[Path]) -> dict[str, Any]:
        """The project as the tool resolves it (services, networks, volumes)."""
        try:
            if not self.v1:
                return dict(json.loads(self.run(project, files, ["config", "--format", "json"])))
            text = self.run(project, files, ["config"])
            python = _interpreter_of(shutil.which(self.argv[0]) or self.argv[0])
            done = subprocess.run(
                [python, "-c", _YAML_TO_JSON],
                input=text,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            if done.returncode != 0:
                raise OSError(_last_line(done.stderr))
            return dict(json.loads(done.stdout))
        except FleetStartError as exc:
            raise UsageError(f"--compose: {exc.message}", detail=exc.detail) from None
        except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
            raise FleetStartError(f"--compose: cannot read the resolved project: {exc}") from None


@cache
def compose_tool() -> ComposeTool:
    """``docker compose`` if the plugin is there, else ``docker-compose``; FleetStartError if
    neither answers."""
    for argv in (("docker", "compose"), ("docker-compose",)):
        if shutil.which(argv[0]) is None:
            continue
        try:
            done = subprocess.run(
                [*argv, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip():
            return ComposeTool(argv, done.stdout.strip().lstrip("v"))
    raise FleetStartError(
        "--compose: neither `docker compose` nor `docker-compose` is installed "
        "(Debian 12: apt-get install docker-compose)"
    )


def _interpreter_of(script: str) -> str:
    """The Python a ``#!`` script runs with."""
    with open(script, "rb") as fh:
        first = fh.readline().decode(errors="replace")
    if not first.startswith("#!"):
        raise OSError(f"{script} is not a Python script: cannot read the YAML it prints")
    words = first[2:].split()
    return words[1] if words and words[0].endswith("/env") and len(words) > 1 else words[0]


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return one_line(lines[-1]) if lines else "no output"
