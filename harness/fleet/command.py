"""An image's gunicorn command (its ENTRYPOINT and CMD, or the user's ``--command``) as the
harness runs it in a container: whatever comes before gunicorn (``tini --``, an entrypoint
script, ``python manage.py migrate &&`` in a shell string) and the team's own flags
(``--max-requests``, ``--preload``, ``--timeout``…) are kept; the options the harness owns
(binding, worker shape, daemonizing, the config file, which the probe's config loads in turn)
are replaced by the harness's; the app becomes the probe, with the app behind it.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from harness.fleet.gunicorn_options import split_owned, value_of

SHELLS = {"sh", "bash", "dash", "ash", "zsh"}
_SHELL_WORD = re.compile(r"[\w@%+=:,./${}-]+")
# Where gunicorn starts in a shell string: a word ``gunicorn`` or ``python -m gunicorn``.
_LAUNCHER = re.compile(
    r"(?:(?<=^)|(?<=[\s;&|(]))((?:\S*/)?gunicorn|(?:\S*/)?python[\d.]*\s+-m\s+gunicorn)(?=\s|$)"
)
_OPERATOR = re.compile(r"^[;&|()<>]+$")


class CommandError(ValueError):
    """The command does not run gunicorn in a form the harness can reshape (one line)."""


@dataclass(frozen=True)
class GunicornCommand:
    """A gunicorn command line taken apart: ``before`` gunicorn, its ``launcher``
    (``gunicorn`` or ``python -m gunicorn``), the team's ``kept`` options, the ``owned`` ones the
    harness replaces, the ``app`` it names (if any) and its ``config`` file (if any). A command
    inside a shell string (``sh -c "…"``) has ``shell`` (``sh -c``), ``before`` as text, and
    ``after``: the shell's further arguments."""

    before: tuple[str, ...]
    launcher: tuple[str, ...]
    kept: tuple[str, ...]
    owned: tuple[str, ...]
    app: str | None
    config: str | None
    shell: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def argv(self, options: Sequence[str], app: str) -> list[str]:
        """The command with the harness's ``options`` after the team's and ``app`` served."""
        gunicorn = [*self.launcher, *self.kept, *options, app]
        if not self.shell:
            return [*self.before, *gunicorn]
        text = "".join(self.before) + " ".join(_shell_quote(word) for word in gunicorn)
        return [*self.shell, text, *self.after]


def parse_command(argv: Sequence[str]) -> GunicornCommand:
    """Take ``argv`` (exec form, or a shell and its string) apart; CommandError if no gunicorn
    runs in it."""
    at = _launcher_at(argv)
    if at is not None:
        start, length = at
        return _taken_apart(argv[:start], argv[start : start + length], argv[start + length :])
    if len(argv) >= 3 and os.path.basename(argv[0]) in SHELLS and re.fullmatch(r"-\w*c", argv[1]):
        return _from_shell(argv[:2], argv[2], argv[3:])
    shown = shlex.join(argv)[:120] if argv else "none"
    raise CommandError(f"the command ({shown}) does not run gunicorn: pass it with --command")


def without_owned(cmd_args: str) -> str:
    """``GUNICORN_CMD_ARGS`` of an image with the options the harness owns taken out."""
    kept, _, _ = split_owned(shlex.split(cmd_args))
    return shlex.join(kept)


def _launcher_at(argv: Sequence[str]) -> tuple[int, int] | None:
    for i, word in enumerate(argv):
        name = os.path.basename(word)
        if name == "gunicorn":
            return i, 1
        if re.fullmatch(r"python[\d.]*", name) and list(argv[i + 1 : i + 3]) == ["-m", "gunicorn"]:
            return i, 3
    return None


def _taken_apart(
    before: Sequence[str], launcher: Sequence[str], args: Sequence[str], **shell: tuple[str, ...]
) -> GunicornCommand:
    kept, owned, positional = split_owned(args)
    if len(positional) > 1:
        raise CommandError(f"gunicorn is given more than one app: {' '.join(positional)}")
    return GunicornCommand(
        before=tuple(before),
        launcher=tuple(launcher),
        kept=tuple(kept),
        owned=tuple(owned),
        app=positional[0] if positional else None,
        config=value_of(args, "config"),
        **shell,
    )


def _from_shell(shell: Sequence[str], text: str, after: Sequence[str]) -> GunicornCommand:
    """``sh -c "python manage.py migrate && exec gunicorn app.wsgi -w 2"``: gunicorn must be
    the string's last command."""
    found = list(_LAUNCHER.finditer(text))
    if not found:
        raise CommandError(f"the shell command ({text[:120]}) does not run gunicorn")
    start = found[-1].start()
    rest = text[start:]
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    if any(_OPERATOR.match(word) for word in lexer):
        raise CommandError(
            f"gunicorn is not the last command of the shell string ({text[:120]}): "
            "pass the gunicorn command with --command"
        )
    words = shlex.split(rest)
    length = 1 if os.path.basename(words[0]) == "gunicorn" else 3
    return _taken_apart(
        [text[:start]], words[:length], words[length:], shell=tuple(shell), after=tuple(after)
    )


def _shell_quote(word: str) -> str:
    """A word for the shell, ``$VARIABLES`` still expanded as in the image's own string."""
    if _SHELL_WORD.fullmatch(word):
        return word
    return '"' + re.sub(r'(["\\`])', r"\\\1", word) + '"'
