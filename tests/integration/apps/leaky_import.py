"""A target whose import fails with an error that shows the Redis URL, password and all, as a
user's app may (in its error, and so in gunicorn's log)."""

import os

raise ConnectionError(f"cannot connect to {os.environ['REDIS_URL']}")
