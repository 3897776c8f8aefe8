"""GitHub Actions workflow commands and file commands: masks, annotations, outputs, job summary.

Everything here also works outside Actions: without GITHUB_OUTPUT / GITHUB_STEP_SUMMARY the files
are simply not written, and the ``::`` lines are harmless on a terminal.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def mask(value: str, stream: TextIO | None = None) -> None:
    """Ask the runner to hide ``value`` (each line of it) in every later log line."""
    out = stream or sys.stdout
    for line in value.splitlines():
        if line.strip():
            print(f"::add-mask::{_escape_data(line)}", file=out, flush=True)


def annotate(level: str, title: str, message: str, stream: TextIO | None = None) -> None:
    """``::error title=...::message`` (or warning/notice), escaped as the runner expects."""
    out = stream or sys.stdout
    print(f"::{level} title={_escape_property(title)}::{_escape_data(message)}", file=out, flush=True)


def set_outputs(path: Path | None, outputs: Mapping[str, str]) -> None:
    """Append outputs to $GITHUB_OUTPUT using a random heredoc delimiter (multiline-safe)."""
    if path is None:
        return
    with path.open("a", encoding="utf-8") as fh:
        for name, value in outputs.items():
            delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: Path | None, markdown: str) -> None:
    if path is None:
        return
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n")
