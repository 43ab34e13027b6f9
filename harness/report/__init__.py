"""Reports render a :class:`~harness.runner.MatrixReport`; they never decide a verdict."""
