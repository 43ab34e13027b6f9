"""Errors the harness reports to its user, each with the exit code the CLI returns.

    HarnessError                 (exit 3 unless a subclass says otherwise)
    ├── UsageError               exit 2: the user's input is wrong
    │   ├── RateError            a rate string DRF would not understand
    │   ├── ScenarioError        a malformed or unknown scenario file / key
    │   └── AppLoadError         the target app (or its settings) failed to import
    ├── InfrastructureError      exit 3: Redis or gunicorn would not start
    │   ├── RedisUnavailable     no Redis could be started or reached
    │   └── FleetStartError      gunicorn would not start or its workers never answered
    └── Interrupted              exit 130: Ctrl-C or SIGTERM (what the reports say of a cut run)

Every message is meant to be shown as one line; ``detail`` carries optional extra
lines (such as the tail of gunicorn's log) shown after it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 3
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Base of every error the CLI turns into one line and an exit code."""

    exit_code = EXIT_INFRASTRUCTURE

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class UsageError(HarnessError):
    exit_code = EXIT_USAGE


class RateError(UsageError):
    pass


class ScenarioError(UsageError):
    pass


class AppLoadError(UsageError):
    pass


class InfrastructureError(HarnessError):
    exit_code = EXIT_INFRASTRUCTURE


class RedisUnavailable(InfrastructureError):
    pass


class FleetStartError(InfrastructureError):
    pass


class Interrupted(HarnessError):
    exit_code = EXIT_INTERRUPTED
