"""What a run says while it runs: masks, annotations, folded phases, progress, outputs, job summary.

Two readers, one API. Inside GitHub Actions (``GITHUB_ACTIONS=true``) everything is a workflow
command on stdout: ``::add-mask::``, ``::error title=...::`` (escaped as the runner expects),
``::group::`` folding. Outside Actions the same calls write plain text for a person at a terminal on
stderr (stdout keeps the run's outcome), and masks print nothing at all: echoing a secret to the
terminal would be the opposite of masking it. Without GITHUB_OUTPUT / GITHUB_STEP_SUMMARY the files
are simply not written.

Which reader is decided once per run: :func:`running` (``mlgate.cli.main`` sets it from the
environment it is given). The default is a terminal.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TextIO

from mlgate.errors import CannotWrite

Level = Literal["error", "warning", "notice"]

MIN_MASK_LENGTH = 4
"""Shorter values are never masked: ``::add-mask::{`` would hide every brace in the rest of the log,
and a secret of 1–3 characters is not protected by masking anyway."""

_in_actions = False


def in_actions() -> bool:
    """True while :func:`running` says the run is a GitHub Actions step."""
    return _in_actions


@contextmanager
def running(*, in_actions: bool) -> Iterator[None]:
    """Write for the Actions log (``in_actions``) or for a terminal until the block ends."""
    global _in_actions
    previous, _in_actions = _in_actions, in_actions
    try:
        yield
    finally:
        _in_actions = previous


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _out(stream: TextIO | None) -> TextIO:
    """Workflow commands go to stdout (the runner reads them there); terminal chatter to stderr."""
    return stream or (sys.stdout if _in_actions else sys.stderr)


def mask(value: str, stream: TextIO | None = None) -> None:
    """Ask the runner to hide ``value`` in every later log line; nothing outside Actions.

    The runner matches masks within one log line, so a multi-line value is masked line by line.
    Lines (and values) shorter than :data:`MIN_MASK_LENGTH` after stripping are skipped: masking
    ``{`` or ``-`` garbles the whole log and protects nothing. Callers with a structured secret (a
    JSON key) pass its secret fields, not the whole document (see :mod:`mlgate.gcp`).
    """
    if not _in_actions:
        return
    out = _out(stream)
    for line in dict.fromkeys(part.strip() for part in value.splitlines()):
        if len(line) >= MIN_MASK_LENGTH:
            print(f"::add-mask::{_escape_data(line)}", file=out, flush=True)


def annotate(level: Level, title: str, message: str, stream: TextIO | None = None) -> None:
    """``::error title=...::message`` (or warning/notice) in Actions; ``warning: title — message`` else."""
    if _in_actions:
        print(f"::{level} title={_escape_property(title)}::{_escape_data(message)}", file=_out(stream), flush=True)
        return
    body = "\n  ".join(message.strip().splitlines())
    print(f"{level}: {title} — {body}" if body else f"{level}: {title}", file=_out(stream), flush=True)


def error(title: str, message: str, hint: str = "", stream: TextIO | None = None) -> None:
    """A failure, for the person who has to fix it.

    In Actions: one ``::error`` annotation (message and hint; the checks UI shows it). On a terminal:
    a title line, the message, then the fix, as plain text on stderr.
    """
    if _in_actions:
        annotate("error", title, f"{message}\n{hint}" if hint else message, stream)
        return
    lines = [f"error: {title}", message.strip()]
    if hint:
        lines += ["", "How to fix it:", *(f"  {line}" for line in hint.strip("\n").splitlines())]
    print("\n".join(lines), file=_out(stream), flush=True)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@contextmanager
def phase(name: str, stream: TextIO | None = None,
          clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """One long step of a run, with its elapsed time.

    In Actions its output is folded under ``::group::name`` and the time follows the fold, so it
    shows while folded; on a terminal it is announced as ``▸ name…``. If the block raises, the fold
    is closed first, so that the error is not hidden inside it.
    """
    from mlgate.report_blocks import plain_text  # a name may hold a path the user controls: one inert line

    out = _out(stream)
    name = plain_text(name)
    print(f"::group::{name}" if _in_actions else f"▸ {name}…", file=out, flush=True)
    start = clock()
    outcome = "failed after"
    try:
        yield
        outcome = "done in"
    finally:
        if _in_actions:
            print("::endgroup::", file=out, flush=True)
        print(f"  {outcome} {_duration(clock() - start)}", file=out, flush=True)


def progress(every_s: float = 5.0, stream: TextIO | None = None,
             clock: Callable[[], float] = time.monotonic) -> Callable[[str], None]:
    """A reporter for a long loop: call it as often as you like with how far it got; it prints at most
    once every ``every_s`` seconds (with the time since it was made), so a short loop prints nothing."""
    start = clock()
    last = start

    def report(text: str) -> None:
        nonlocal last
        now = clock()
        if now - last >= every_s:
            last = now
            print(f"  … {text} ({_duration(now - start)})", file=_out(stream), flush=True)

    return report


def rate(noun: str, every_s: float = 5.0, stream: TextIO | None = None,
         clock: Callable[[], float] = time.monotonic) -> Callable[[int, int], None]:
    """A :func:`progress` reporter for a loop over a known number of things: call it with how many are
    done and how many there are; it says the rate, what is left and when it should end, e.g.
    ``… 40,960 of 200,000 items read: 8,190 items/s, 159,040 left, about 19 s to go``."""
    start = clock()
    say = progress(every_s, stream, clock)

    def report(done: int, total: int) -> None:
        elapsed = clock() - start
        per_s = done / elapsed if elapsed > 0 else 0.0
        left = max(total - done, 0)
        eta = f"about {_duration(left / per_s)} to go" if per_s > 0 else "no estimate yet"
        say(f"{done:,} of {total:,} {noun}: {per_s:,.0f} {noun.split()[0]}/s, {left:,} left, {eta}")

    return report


def set_outputs(path: Path | None, outputs: Mapping[str, str]) -> None:
    """Append outputs to $GITHUB_OUTPUT using a random heredoc delimiter (multiline-safe).

    Raises :class:`~mlgate.errors.CannotWrite` naming ``GITHUB_OUTPUT`` when the file cannot be
    appended to (a folder, a missing folder, no permission, a full disk).
    """
    if path is None:
        return
    lines = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
        lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    _append("GITHUB_OUTPUT", path, "".join(lines))


def append_summary(path: Path | None, markdown: str) -> None:
    """Append ``markdown`` to $GITHUB_STEP_SUMMARY; raises :class:`~mlgate.errors.CannotWrite` naming
    ``GITHUB_STEP_SUMMARY`` when the file cannot be appended to."""
    if path is None:
        return
    _append("GITHUB_STEP_SUMMARY", path, markdown.rstrip("\n") + "\n")


def _append(variable: str, path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        why = _why_not_written(path, exc)
        raise CannotWrite(
            f"Cannot write to {variable} ({path}): {why}.",
            hint=f"{variable} is set by the GitHub runner to a file in a folder it created; a step that "
            f"overrides it (`env: {variable}: ...`) must name a file whose folder exists and is writable.",
        ) from exc


def _why_not_written(path: Path, exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return "it is a folder, not a file"
    if isinstance(exc, FileNotFoundError) or not path.parent.is_dir():
        return f"its folder {path.parent} does not exist"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__
