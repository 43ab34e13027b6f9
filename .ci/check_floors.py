"""Every lower bound in pyproject.toml is what this environment has installed, exactly.

tox -e oldest runs it first: if a floor could not be installed as written (the resolver took a
later release to satisfy another requirement), the floor is not true and this says which.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.version import Version  # pytest's own dependency

FLOOR = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)(\[[^]]*\])?\s*>=\s*(?P<floor>[^,;\s]+)")


def floors(pyproject: Path) -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    found: dict[str, str] = {}
    for requirement in [
        *project["dependencies"],
        *project["optional-dependencies"]["test"],
        *project["optional-dependencies"]["docker"],
        *project["optional-dependencies"]["asgi"],
    ]:
        match = FLOOR.match(requirement)
        if match is None:
            sys.exit(f"check_floors: {requirement!r} has no lower bound (NAME>=VERSION)")
        found[match["name"]] = match["floor"]
    return found


def main() -> int:
    wrong = []
    for name, floor in floors(Path(__file__).resolve().parents[1] / "pyproject.toml").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed == "not installed" or Version(installed) != Version(floor):
            wrong.append(f"{name}: floor {floor}, installed {installed}")
        print(f"  {name:<22} floor {floor:<10} installed {installed}")
    if wrong:
        print("check_floors: not the floors in pyproject.toml: " + "; ".join(wrong))
        return 1
    print("check_floors: every floor is installed exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
