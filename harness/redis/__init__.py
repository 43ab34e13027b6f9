"""The Redis a throttle counts in: a server from a spec (``embedded``, ``local``, ``docker``, or a
URL the harness never flushes; :mod:`~harness.redis.providers`), the proxy faults put in front of
it (:mod:`~harness.redis.proxy`), and what its keys looked like after a run
(:mod:`~harness.redis.state`)."""
