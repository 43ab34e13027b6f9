"""Requests as the user's clients send them, and what came back, below the fleet and the traffic:
the request template with its ``{identity}`` and the statuses that admit or refuse
(:mod:`~harness.http.request_template`), one :class:`~harness.http.records.Record` per request
sent, and the clock record times are read on (:mod:`~harness.http.clock`)."""
