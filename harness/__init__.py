"""throttle-harness: prove, with real processes, whether a rate limit holds under N workers."""

__version__ = "0.1.0"
