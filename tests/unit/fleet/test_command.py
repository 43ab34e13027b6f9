"""An image's gunicorn command taken apart and put back together: the team's launcher, flags
and whatever runs before gunicorn kept; the harness's binding and shape in place of theirs."""

from __future__ import annotations

import subprocess

import pytest

from harness.fleet.command import CommandError, parse_command, without_owned
from harness.fleet.gunicorn_options import split_owned, value_of

OURS = ["--bind", "127.0.0.1:9000", "--workers", "2"]
PROBE = "throttle_harness_probe.probe:application"


def test_the_users_story_command_keeps_its_flags_and_loses_its_shape() -> None:
    argv = "gunicorn resee.wsgi:application --bind 0.0.0.0:8000 --workers 1 --threads 2 "
    argv += "--max-requests 1000 --max-requests-jitter 100 --preload"
    command = parse_command(argv.split())
    assert command.app == "resee.wsgi:application"
    assert command.kept == ("--max-requests", "1000", "--max-requests-jitter", "100", "--preload")
    assert command.owned == ("--bind", "0.0.0.0:8000", "--workers", "1", "--threads", "2")
    assert command.argv(OURS, PROBE) == ["gunicorn", *command.kept, *OURS, PROBE]


@pytest.mark.parametrize(
    ("argv", "before", "launcher"),
    [
        (["tini", "--", "gunicorn", "app:app"], ("tini", "--"), ("gunicorn",)),
        (["/venv/bin/gunicorn", "app:app"], (), ("/venv/bin/gunicorn",)),
        (["python3.12", "-m", "gunicorn", "app:app"], (), ("python3.12", "-m", "gunicorn")),
        (["/entrypoint.sh", "gunicorn", "app:app"], ("/entrypoint.sh",), ("gunicorn",)),
    ],
)
def test_what_runs_before_gunicorn_is_kept(
    argv: list[str], before: tuple[str, ...], launcher: tuple[str, ...]
) -> None:
    command = parse_command(argv)
    assert (command.before, command.launcher, command.app) == (before, launcher, "app:app")
    assert command.argv(OURS, PROBE) == [*before, *launcher, *OURS, PROBE]


def test_a_shell_string_keeps_what_runs_first_and_its_variables() -> None:
    text = "python manage.py migrate && exec gunicorn app.wsgi -w $WEB --timeout 30 "
    text += "--access-logformat '%(h)s %(r)s'"
    command = parse_command(["/bin/sh", "-c", text])
    assert command.app == "app.wsgi" and command.owned == ("-w", "$WEB")
    shell, flag, rebuilt = command.argv(OURS, PROBE)
    assert (shell, flag) == ("/bin/sh", "-c")
    assert rebuilt.startswith("python manage.py migrate && exec gunicorn --timeout 30 ")
    # the rebuilt string, as a shell splits it: the format whole, a variable still expanded
    words = subprocess.run(
        ["sh", "-c", 'X=expanded; printf "%s\\n" ' + rebuilt.split("exec ", 1)[1] + " $X"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert words == [
        "gunicorn",
        *["--timeout", "30", "--access-logformat", "%(h)s %(r)s"],
        *OURS,
        PROBE,
        "expanded",
    ]


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["python", "app.py"], "does not run gunicorn"),
        ([], "does not run gunicorn"),
        (["sh", "-c", "gunicorn app:app && echo done"], "does not end with a gunicorn command"),
        (["sh", "-c", "uwsgi --http :8000"], "does not end with a gunicorn command"),
        (["sh", "-c", "gunicorn app:app; echo gunicorn stopped"], "does not end with a gunicorn"),
        (["sh", "-c", 'exec gunicorn "$@"', "--", "app:app"], r"from the shell's \(\$@\)"),
        (["gunicorn", "a:app", "b:app"], "more than one app"),
    ],
)
def test_commands_the_harness_cannot_reshape_are_refused(argv: list[str], complaint: str) -> None:
    with pytest.raises(CommandError, match=complaint):
        parse_command(argv)


def test_a_command_with_no_app_and_a_config_file() -> None:
    command = parse_command(["gunicorn", "-c", "conf/gunicorn.py", "--preload"])
    assert command.app is None and command.config == "conf/gunicorn.py"
    assert command.kept == ("--preload",)


@pytest.mark.parametrize(
    ("args", "kept", "owned", "positional"),
    [
        (["-w4", "--bind=:80", "app:a"], [], ["-w4", "--bind=:80"], ["app:a"]),
        (["--daem", "--timeout", "5"], ["--timeout", "5"], ["--daem"], []),
        (["--name", "x", "--", "app:a"], ["--name", "x"], [], ["app:a"]),
        (["-k", "gevent", "--reload", "m:a"], ["--reload"], ["-k", "gevent"], ["m:a"]),
    ],
)
def test_split_owned_reads_options_as_gunicorns_parser_does(
    args: list[str], kept: list[str], owned: list[str], positional: list[str]
) -> None:
    assert split_owned(args) == (kept, owned, positional)


def test_value_of_every_spelling() -> None:
    assert value_of(["-c", "a.py"], "config") == "a.py"
    assert value_of(["--config=b.py"], "config") == "b.py"
    assert value_of(["-cc.py"], "config") == "c.py"
    assert value_of(["--config", "d.py", "-c", "e.py"], "config") == "e.py"
    assert value_of(["--timeout", "5"], "config") is None


def test_gunicorn_cmd_args_of_an_image_lose_the_owned_options() -> None:
    assert without_owned("--workers 3 --timeout 60 -b 0.0.0.0:80") == "--timeout 60"


@pytest.mark.parametrize(
    ("text", "app", "rebuilt"),
    [
        ("gunicorn", None, "gunicorn --workers 2 P"),  # the word itself, not the whole string
        ("gunicorn app:a --name gunicorn", "app:a", "gunicorn --name gunicorn --workers 2 P"),
        ("gunicorn app:a --timeout 5 2>&1", "app:a", "gunicorn --timeout 5 --workers 2 P 2>&1"),
        (
            'echo "a;b" && PORT=1 exec gunicorn m:a',
            "m:a",
            'echo "a;b" && PORT=1 exec gunicorn --workers 2 P',
        ),
        ("gunicorn m:a >> /var/log/g.log", "m:a", "gunicorn --workers 2 P >> /var/log/g.log"),
    ],
)
def test_shell_strings_are_read_as_a_shell_reads_them(
    text: str, app: str | None, rebuilt: str
) -> None:
    command = parse_command(["sh", "-c", text])
    assert command.app == app
    assert command.argv(["--workers", "2"], "P") == ["sh", "-c", rebuilt]
