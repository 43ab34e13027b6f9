"""Every request a run sent on each client, whoever sent it: bursts, resends, confirmations,
bypass attempts and their controls, fault probes, recovery checks.

Follow-up checks are timed from here, never from "the end of the burst": a check that a client
was forgiven waits a period after the last request of that client a throttle may have counted,
wherever in the run it was sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.http.records import Record
from harness.http.request_template import Statuses


class Ledger:
    """The requests sent on each client (by its address), in the order they were added."""

    def __init__(self) -> None:
        self._sent: dict[str, list[Record]] = {}

    def add(self, records: Iterable[Record]) -> None:
        for record in records:
            self._sent.setdefault(record.identity, []).append(record)

    def of(self, client: str) -> list[Record]:
        return list(self._sent.get(client, ()))

    def last_counted(self, client: str | None, statuses: Statuses) -> float | None:
        """When the last request of ``client`` (None: of any client, for a global budget) that
        a correct throttle may have counted ended: admitted, or never answered (counted or
        not); its receipt, else its send. None: no such request."""
        sent = self._sent.values() if client is None else [self._sent.get(client, [])]
        ends = [
            r.received_at if r.received_at is not None else r.sent_at
            for records in sent
            for r in records
            if r.status is None or statuses.admitted(r.status)
        ]
        return max(ends, default=None)
