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
config.post_worker_init(Worker)  # not a UvicornWorker: theirs alone
print(json.dumps({
    "status": got["status"],
    "peer": got["headers"]["X-Throttle-Harness-Peer"],
    "worker": got["headers"]["X-Throttle-Harness-Worker"],
    "daemon": config.daemon, "timeout": config.timeout, "pidfile": config.pidfile,
    "theirs_ran": os.environ.get("THEIR_HOOK"),
    "their_init_ran": os.environ.get("THEIR_INIT"),
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
        "probe_asgi.py",
        "probe_protocol.py",
    ]
    theirs = tmp_path / "their.conf.py"
    theirs.write_text(
        "import os\ndaemon = True\npidfile = '/tmp/x.pid'\ntimeout = 77\n"
        "def pre_request(worker, req):\n    os.environ['THEIR_HOOK'] = req.path\n"
        "def post_worker_init(worker):\n    os.environ['THEIR_INIT'] = str(worker.nr)\n"
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
    assert got["theirs_ran"] == "/api/" and got["their_init_ran"] == "5"


ASGI_APP = """
events = []
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        events.append((await receive())["type"])
        await send({"type": "lifespan.startup.complete"})
        return
    await send({"type": "http.response.start", "status": 429, "headers": []})
    await send({"type": "http.response.body", "body": b"no", "more_body": True})
    await send({"type": "http.response.body", "body": b""})
"""
ASGI_CHECK = """
import asyncio, json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
os.environ.update(THROTTLE_HARNESS_APP="tiny:app", THROTTLE_HARNESS_INTERFACE="asgi",
                  THROTTLE_HARNESS_STATUS_DIR=sys.argv[2])
from throttle_harness_probe import probe_asgi
import tiny
sent = []
async def send(message):
    sent.append(message)
async def lifespan():
    return {"type": "lifespan.startup"}
async def nothing():
    return {"type": "http.request", "body": b""}
async def main():
    await probe_asgi.application({"type": "lifespan"}, lifespan, send)
    probe = {"type": "http", "path": "/__throttle_harness__/probe", "headers": [],
             "client": ("127.4.5.6", 5000)}
    await probe_asgi.application(probe, nothing, send)
    app = {"type": "http", "path": "/api/", "client": ("127.4.5.6", 5001),
           "headers": [(b"x-throttle-harness-request", b"req-1")]}
    await probe_asgi.application(app, nothing, send)
asyncio.run(main())
stamps = [open(os.path.join(sys.argv[2], "stamps", f)).read() for f in os.listdir(
    os.path.join(sys.argv[2], "stamps"))]
print(json.dumps({"lifespan": tiny.events, "sent": [
    {k: (dict((a.decode(), b.decode()) for a, b in v) if k == "headers" else v if k != "body"
         else v.decode()) for k, v in m.items()} for m in sent], "stamps": stamps}))
"""


def test_the_asgi_probe_answers_stamps_and_passes_lifespan_on(tmp_path: Path) -> None:
    (tmp_path / "mount").mkdir()
    write_probe(tmp_path / "mount")
    (tmp_path / "tiny.py").write_text(ASGI_APP)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ASGI_CHECK, str(tmp_path / "mount"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = json.loads(out)
    assert got["lifespan"] == ["lifespan.startup"]  # the app's own, through the probe
    probe_start, probe_body, app_start, *_ = [
        m for m in got["sent"] if m["type"] != "lifespan.startup.complete"
    ]
    assert probe_start["status"] == 200
    assert probe_start["headers"]["x-throttle-harness-peer"] == "127.4.5.6"
    worker = probe_start["headers"]["x-throttle-harness-worker"]
    assert (
        app_start["status"] == 429 and app_start["headers"]["x-throttle-harness-worker"] == worker
    )
    (stamps,) = got["stamps"]
    entered, left = stamps.splitlines()
    assert entered.startswith(f"> req-1 {worker} ") and left.startswith("< req-1 429 ")
