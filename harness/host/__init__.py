"""What the harness uses of the machine it runs on, below every stage: child processes that die
with it (:mod:`~harness.host.processes`), temporary directories and containers removed even
after a SIGKILL (:mod:`~harness.host.cleanup`, the reaper), loopback ports
(:mod:`~harness.host.ports`), file and connection limits (:mod:`~harness.host.resources`), the
CPUs a process may use (:mod:`~harness.host.cpus`) and the versions installed
(:mod:`~harness.host.versions`)."""
