"""Names shared by the probe (inside gunicorn) and the harness (outside): headers, paths, env."""

WORKER_HEADER = "X-Throttle-Harness-Worker"
PROBE_PATH = "/__throttle_harness__/probe"
TARGET_ENV = "THROTTLE_HARNESS_APP"
STATUS_DIR_ENV = "THROTTLE_HARNESS_STATUS_DIR"
APP_ERROR_FILE = "app-error"
