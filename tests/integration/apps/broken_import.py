"""A target whose import fails, as a user's app with a typo would."""

raise ImportError("cannot import name 'Thing' from 'somewhere'")
