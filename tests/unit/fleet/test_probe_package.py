"""The probe as it is mounted into a team's image: a package of the standard library only, which
serves the app behind it, and a gunicorn config that keeps the team's own config file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.fleet.container_fleet import PROBE_PACKAGE, write_probe

# Run with -I -S: no site-packages, no PYTHONPATH, no harness; only the mounted folder.
CHECK = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
os.environ["THROTTLE_HARNESS_APP"] = "wsgiref.simple_server:demo_app"
os.environ["THROTTLE_HARNESS_USER_CONFIG"] = sys.argv[2]
from throttle_harness_probe import probe, gunicorn_config as config
got = {}
def start_response(status, headers, *exc):
    got["status"], got["headers"] = status, dict(headers)
environ = {"PATH_INFO": "/__throttle_harness__/probe", "REMOTE_ADDR": "127.9.8.7"}
probe.application(environ, start_response)
class Worker: nr = 5
class Request: path = "/api/"
config.pre_request(Worker, Request)
print(json.dumps({
    "status": got["status"],
    "peer": got["headers"]["X-Throttle-Harness-Peer"],
    "worker": got["headers"]["X-Throttle-Harness-Worker"],
    "daemon": config.daemon, "timeout": config.timeout, "pidfile": config.pidfile,
    "theirs_ran": os.environ.get("THEIR_HOOK"),
    "harness": [m for m in sys.modules if m.startswith("harness")],
}))
"""


def test_the_probe_runs_on_the_standard_library_alone_and_keeps_the_teams_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "mount").mkdir()
    write_probe(tmp_path / "mount")
    assert sorted(p.name for p in (tmp_path / "mount" / PROBE_PACKAGE).iterdir()) == [
        "__init__.py",
        "gunicorn_config.py",
        "probe.py",
        "probe_protocol.py",
    ]
    theirs = tmp_path / "their.conf.py"
    theirs.write_text(
        "import os\ndaemon = True\npidfile = '/tmp/x.pid'\ntimeout = 77\n"
        "def pre_request(worker, req):\n    os.environ['THEIR_HOOK'] = req.path\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHECK, str(tmp_path / "mount"), str(theirs)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    got = json.loads(out)
    assert got["status"] == "200 OK" and got["peer"] == "127.9.8.7" and got["worker"]
    assert got["harness"] == []  # nothing of the harness's own package was imported
    # the team's settings and hook stay; daemonizing and the pid file are the harness's
    assert (got["timeout"], got["daemon"], got["pidfile"]) == (77, False, None)
    assert got["theirs_ran"] == "/api/"
