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
    redirections: tuple[str, ...] = ()  # a shell string's ``2>&1`` and the like, kept

    def argv(self, options: Sequence[str], app: str) -> list[str]:
        """The command with the harness's ``options`` after the team's and ``app`` served."""
        gunicorn = [*self.launcher, *self.kept, *options, app]
        if not self.shell:
            return [*self.before, *gunicorn]
        text = "".join(self.before) + " ".join(_shell_quote(word) for word in gunicorn)
        text += "".join(" " + word for word in self.redirections)
        return [*self.shell, text, *self.after]


def parse_command(argv: Sequence[str]) -> GunicornCommand:
    """Take ``argv`` (exec form, or a shell and its string) apart; CommandError if no gunicorn
    runs in it."""
    if len(argv) >= 3 and os.path.basename(argv[0]) in SHELLS and re.fullmatch(r"-\w*c", argv[1]):
        return _from_shell(argv[:2], argv[2], argv[3:])
    at = _launcher_at(argv)
    if at is not None:
        start, length = at
        return _taken_apart(argv[:start], argv[start : start + length], argv[start + length :])
    shown = shlex.join(argv)[:120] if argv else "none"
    raise CommandError(f"the command ({shown}) does not run gunicorn: pass it with --command")


def without_owned(cmd_args: str) -> str:
    """``GUNICORN_CMD_ARGS`` of an image with the options the harness owns taken out."""
    kept, _, _ = split_owned(shlex.split(cmd_args))
    return shlex.join(kept)


def _launcher_at(argv: Sequence[str]) -> tuple[int, int] | None:
    """Where gunicorn starts in ``argv`` (a word ``gunicorn``, or ``python -m gunicorn``) and
    how many words it takes."""
    for i, word in enumerate(argv):
        if any(c.isspace() for c in word):
            continue  # a shell string is not a launcher
        name = os.path.basename(word)
        if name == "gunicorn":
            return i, 1
        if re.fullmatch(r"python[\d.]*", name) and list(argv[i + 1 : i + 3]) == ["-m", "gunicorn"]:
            return i, 3
    return None


def _taken_apart(
    before: Sequence[str], launcher: Sequence[str], args: Sequence[str], **shell: tuple[str, ...]
) -> GunicornCommand:
    """The command, ``args`` read as gunicorn's parser reads them."""
    kept, owned, positional = split_owned(args)
    if len(positional) > 1:
        raise CommandError(
            f"gunicorn is given more than one app ({' '.join(positional)}): "
            "is one the value of an option this gunicorn does not know?"
        )
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
    """``sh -c "python manage.py migrate && exec gunicorn app.wsgi -w 2"``: gunicorn must start
    the string's last command (after ``exec`` or ``NAME=value`` words, if any), and take its
    arguments from the string itself, not from the shell's (``"$@"``)."""
    start = _last_command_at(text)
    words = shlex.split(text[start:])
    lead = 0
    while lead < len(words) and (words[lead] == "exec" or re.fullmatch(r"\w+=.*", words[lead])):
        lead += 1
    at = _launcher_at(words[lead:])
    if at is None or at[0] != 0:
        raise CommandError(
            f"the shell command ({text[:120]}) does not end with a gunicorn command: "
            "pass the gunicorn command with --command"
        )
    args, redirections = _without_redirections(words[lead + at[1] :])
    if any(re.search(r"\$[@*]", word) for word in args):
        raise CommandError(
            f"gunicorn takes its arguments from the shell's ($@) in ({text[:120]}): "
            "pass the gunicorn command with --command"
        )
    before = text[:start] + "".join(_shell_quote(w) + " " for w in words[:lead])
    launcher = words[lead : lead + at[1]]
    return _taken_apart(
        [before],
        launcher,
        args,
        shell=tuple(shell),
        after=tuple(after),
        redirections=tuple(redirections),
    )


def _without_redirections(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """A command's words apart from its redirections (``2>&1``, ``> log``, ``>>/tmp/x``)."""
    args: list[str] = []
    redirections: list[str] = []
    target_next = False
    for word in words:
        if target_next:
            redirections.append(_shell_quote(word))
            target_next = False
        elif re.fullmatch(r"\d*(>>?|<)(&\d+|&-)?", word):
            redirections.append(word)
            target_next = "&" not in word
        elif re.fullmatch(r"\d*(>>?|<)\S+", word):
            redirections.append(word)
        else:
            args.append(word)
    return args, redirections


def _last_command_at(text: str) -> int:
    """Where the last command of a shell string starts: after its last ``;``, ``&&``, ``||``,
    ``|``, ``&`` or newline outside quotes (leading blanks skipped)."""
    start = 0
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in ";&|\n" and not (c == "&" and text[i - 1 : i] in "<>" and i):
            start = i + 1  # (not the & of a redirection such as 2>&1)
        i += 1
    while start < len(text) and text[start] in " \t":
        start += 1
    return start


def _shell_quote(word: str) -> str:
    """A word for the shell, ``$VARIABLES`` still expanded as in the image's own string."""
    if _SHELL_WORD.fullmatch(word):
        return word
    return '"' + re.sub(r'(["\\`])', r"\\\1", word) + '"'
