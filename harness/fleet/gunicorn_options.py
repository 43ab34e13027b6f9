"""gunicorn's command-line options as its own parser reads them: the settings the harness owns
(binding, worker shape, daemonizing), found in a user's arguments whatever their spelling, and
an image's gunicorn arguments split into what the harness keeps and what it sets itself.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import Any

# gunicorn settings the harness sets itself (or that would take gunicorn out of its hands): the
# option that sets each, and why not. gunicorn's own parser tells every spelling of them.
OWNED: dict[str, tuple[str, str]] = {
    "bind": ("--bind", "the harness binds gunicorn to 127.0.0.1 on a port of its own (use port)"),
    "workers": ("--workers", "the harness sets the worker count of each run (use workers)"),
    "threads": ("--threads", "the harness sets the threads per worker (use threads)"),
    "worker_class": ("--worker-class", "the harness sets the worker class (use worker_class)"),
    "daemon": ("--daemon", "the harness keeps gunicorn in the foreground to watch and stop it"),
    "config": ("--config", "a config file could bind, reshape or daemonize gunicorn"),
    "pidfile": ("--pid", "the harness tracks gunicorn's process; a pid file would be left behind"),
}
FALLBACK_OPTIONS: dict[str, tuple[str, bool]] = {  # option string: (setting, takes no value)
    "-b": ("bind", False),
    "--bind": ("bind", False),
    "-w": ("workers", False),
    "--workers": ("workers", False),
    "--threads": ("threads", False),
    "-k": ("worker_class", False),
    "--worker-class": ("worker_class", False),
    "-D": ("daemon", True),
    "--daemon": ("daemon", True),
    "-c": ("config", False),
    "--config": ("config", False),
    "-p": ("pidfile", False),
    "--pid": ("pidfile", False),
}


@functools.cache
def gunicorn_options() -> dict[str, tuple[str, bool]]:
    """Every gunicorn option string: the setting it sets and whether it takes no value."""
    try:
        config: Any = importlib.import_module("gunicorn.config")
        actions = config.Config().parser()._actions
        options = {opt: (a.dest, a.nargs == 0) for a in actions for opt in a.option_strings}
    except Exception:  # gunicorn's internals moved: the documented spellings still apply
        return FALLBACK_OPTIONS
    return {**FALLBACK_OPTIONS, **options}


def owned_option(args: Sequence[str]) -> tuple[str, str] | None:
    """The first of ``args`` that sets a setting of :data:`OWNED` and that setting."""
    for _, arg, setting, _ in _read(args):
        if setting in OWNED:
            return arg, setting
    return None


@functools.cache
def _long_options() -> tuple[str, ...]:
    return tuple(opt for opt in gunicorn_options() if opt.startswith("--"))


def _read(args: Sequence[str]) -> list[tuple[int, str, str | None, int]]:
    """Each of ``args`` as gunicorn's argparse reads it: (index, argument, the setting it sets
    or None for a positional or unknown one, how many of the next arguments are its value). Handles
    ``--bind=x``, an abbreviation such as ``--daem``, a short option with its value attached
    (``-w4``) or after flags (``-RD``)."""
    options = gunicorn_options()
    read: list[tuple[int, str, str | None, int]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            read += [(j, a, None, 0) for j, a in enumerate(args[i:], start=i)]
            break
        setting, value_follows = _setting_of(arg, options)
        read.append((i, arg, setting, int(value_follows and i + 1 < len(args))))
        i += 1 + int(value_follows)
    return read


def _setting_of(arg: str, options: dict[str, tuple[str, bool]]) -> tuple[str | None, bool]:
    """The (first owned, else last) setting ``arg`` sets, and whether its value is the next
    argument."""
    if arg.startswith("--"):
        name, eq, _ = arg.partition("=")
        matches = [name] if name in options else [o for o in _long_options() if o.startswith(name)]
        if len(matches) != 1:
            return None, False
        setting, flag = options[matches[0]]
        return setting, not flag and not eq
    found: str | None = None
    cluster = arg
    while cluster.startswith("-") and len(cluster) >= 2 and cluster[:2] in options:
        setting, flag = options[cluster[:2]]
        if found not in OWNED:
            found = setting
        if not flag:
            return found, len(cluster) == 2  # the rest, or else the next argument, is its value
        cluster = "-" + cluster[2:]
    return found, False


def split_owned(args: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """An image's gunicorn arguments as (kept, owned, positional): options the harness sets
    itself (with their values) go to ``owned``, the app (gunicorn's positional argument) to
    ``positional``, everything else stays, in order."""
    kept: list[str] = []
    owned: list[str] = []
    positional: list[str] = []
    for index, arg, setting, values in _read(args):
        taken = list(args[index : index + 1 + values])
        if arg == "--":
            continue  # the harness's own options come after the kept ones
        if setting is None and not arg.startswith("-"):
            positional.append(arg)
        elif setting in OWNED:
            owned += taken
        else:
            kept += taken
    return kept, owned, positional


def value_of(args: Sequence[str], setting: str) -> str | None:
    """The value ``args`` give ``setting`` (the last one, as argparse keeps), or None."""
    found = None
    for index, arg, set_here, values in _read(args):
        if set_here != setting:
            continue
        if values:
            found = args[index + 1]
        elif arg.startswith("--"):
            found = arg.partition("=")[2] or None
        else:  # -cFILE, or -RcFILE: the value follows the option's letter
            found = _attached_value(arg, setting)
    return found


def _attached_value(cluster: str, setting: str) -> str | None:
    """The value attached to ``setting``'s short option in ``cluster`` (``-RcFILE``: FILE)."""
    options = gunicorn_options()
    for pos in range(1, len(cluster)):
        set_here, flag = options.get("-" + cluster[pos], (None, False))
        if set_here == setting and not flag:
            return cluster[pos + 1 :] or None
        if not flag:
            return None
    return None
