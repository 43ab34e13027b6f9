"""A Django settings module that raises while loading."""

raise RuntimeError("settings exploded: DATABASE_URL is not set")
