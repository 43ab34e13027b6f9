"""Flask-Limiter on a Flask app: ``flask_limiter_app:application``.

``Limiter(get_remote_address, storage_uri=REDIS_URL, default_limits=[APP_RATE])`` with the
strategy named by ``LIMITS_STRATEGY`` (``fixed-window`` by default, ``moving-window``,
``sliding-window-counter``); the storage's keys start with ``THROTTLE_HARNESS_KEY_PREFIX``.
``/limited/`` is the only route, so the default limit applies to it alone (a 404 counts
nothing). Flask-Limiter answers a breach with 429 itself.

Correct under concurrency: Flask-Limiter decides with the ``limits`` library's atomic Redis
scripts (see :mod:`limits_app` for each strategy's window).
"""

from __future__ import annotations

import os

import app_env
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

app = Flask(__name__)
limiter = Limiter(
    get_remote_address,
    app=app,
    default_limits=[app_env.rate().text],
    strategy=os.environ.get("LIMITS_STRATEGY", "fixed-window"),
    storage_uri=app_env.redis_url(),
    storage_options={"key_prefix": app_env.key_prefix() + "LIMITS"},
)


@app.route(app_env.LIMITED_PATH)
def limited() -> str:
    return "ok\n"


application = app
