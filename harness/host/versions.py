"""Versions of what a run used, for the report."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

_PACKAGES = {
    "throttle-harness": "throttle-harness",
    "django": "Django",
    "djangorestframework": "djangorestframework",
    "gunicorn": "gunicorn",
    "redis-py": "redis",
}


def software_versions() -> dict[str, str]:
    """Python and the packages the harness and its targets run on (or ``"not installed"``)."""
    found = {"python": platform.python_version()}
    for label, dist in _PACKAGES.items():
        try:
            found[label] = version(dist)
        except PackageNotFoundError:
            found[label] = "not installed"
    if found["throttle-harness"] == "not installed":
        from harness import __version__

        found["throttle-harness"] = __version__
    return found
