"""The ``{identity}`` values of a session: none is handed out twice in one process.

A value carries the throttle state its requests left behind (a token's budget, a user's
counter), so a value used by one burst, run, scenario, ``throttle_check`` or load phase is
never used again in the same process. Identity-file values are taken in file order, skipping
those already used, whichever scenario used them; generated values are ``client-TAG-N`` with one
random TAG per process (so that sessions sharing a Redis share none) and N counting up.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterator

from harness.errors import UsageError
from harness.scenario import Scenario


class IdentitySource:
    """Every value handed out so far, and the next generated one."""

    def __init__(self) -> None:
        self._tag = secrets.token_hex(3)
        self._count = itertools.count(1)
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def take(self, scenario: Scenario, n: int) -> list[str] | None:
        """``n`` values no one has had (None when the scenario's file has fewer left)."""
        with self._lock:
            if not scenario.identity_values:
                return [f"client-{self._tag}-{next(self._count)}" for _ in range(n)]
            fresh = [v for v in scenario.identity_values if v not in self._used][:n]
            if len(fresh) < n:
                return None
            self._used.update(fresh)
            return fresh


SESSION = IdentitySource()  # the process's


def identity_values(scenario: Scenario, per_batch: int = 0) -> Iterator[list[str]]:
    """Each burst's values (``per_batch``, default the scenario's ``identities``), taken from
    the session as they are asked for; the stream ends when the identity file has no full batch
    left."""
    n = per_batch or scenario.identities
    while (batch := SESSION.take(scenario, n)) is not None:
        yield batch


def values_for_run(scenario: Scenario, per_batch: int = 0) -> Iterator[list[str]]:
    """:func:`identity_values` for one run, its first batch taken now: UsageError when the
    session has used every value of the identity file already."""
    values = identity_values(scenario, per_batch)
    first = next(values, None)
    if first is None:
        n = per_batch or scenario.identities
        raise UsageError(
            f"{scenario.name}: the identity file's {len(scenario.identity_values)} values are "
            f"used up ({n} per burst): each is used once per session, since a used value "
            "carries the throttle state its requests left; add values to the file"
        )
    return itertools.chain([first], values)
