"""The release gate: a scenario's verdict at the shape in production and at the shape proposed
(:mod:`~harness.gate.release`), and each shape's cost under a steady load (the load phase,
:mod:`~harness.gate.load`, with its generator and wire parser) held to the user's budgets
(:mod:`~harness.gate.budgets`)."""
