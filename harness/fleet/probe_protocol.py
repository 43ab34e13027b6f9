"""Names shared by the probe (inside gunicorn) and the harness (outside): headers, paths, env,
and the format of the stamps the probe writes. Standard library only, as the probe and the
gunicorn config are: all three are mounted into containers of the team's image."""

WORKER_HEADER = "X-Throttle-Harness-Worker"
PARENT_HEADER = "X-Throttle-Harness-Parent"  # the probe path's answer: the worker's parent pid
PEER_HEADER = "X-Throttle-Harness-Peer"  # the probe path's answer: the client address it sees
REQUEST_HEADER = "X-Throttle-Harness-Request"  # the harness's id of a request, echoed in stamps
PROBE_PATH = "/__throttle_harness__/probe"
TARGET_ENV = "THROTTLE_HARNESS_APP"
STATUS_DIR_ENV = "THROTTLE_HARNESS_STATUS_DIR"
INSTANCE_ENV = "THROTTLE_HARNESS_INSTANCE"  # set with several instances: worker ids are INSTANCE/ID
APP_ERROR_FILE = "app-error"
INTERPRETER_FILE = "python"  # the probe's sys.executable, for a container fleet's docker exec
PORTS_ENV = "THROTTLE_HARNESS_PORTS"  # HOST:FIRST:COUNT: replicas claim a port each, in order
INSTANCES_DIR = "instances"  # under the status dir: a file per claimed instance, its pid namespace
INTERFACE_ENV = "THROTTLE_HARNESS_INTERFACE"  # wsgi or asgi: what the worker class serves
USER_CONFIG_ENV = "THROTTLE_HARNESS_USER_CONFIG"  # the image's gunicorn config, loaded by ours
STAMPS_DIR = "stamps"
"""Under the status dir, one file per worker process (named by its id, ``/`` as ``-``). Each
request that carries REQUEST_HEADER adds two lines: ``> ID WORKER NS`` when the app is entered
and ``< ID STATUS NS`` when it returned its response (``NS`` is ``time.monotonic_ns()``,
CLOCK_MONOTONIC, one clock for every process)."""
