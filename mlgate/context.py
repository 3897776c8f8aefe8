"""The GitHub Actions run we are in: event payload, repository, pull request, file commands.

Built from the environment mapping the runner sets; outside Actions (the local CLI) every field is
empty and publishing is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.errors import CannotWrite, InvalidInput, MlgateError
from mlgate.settings import PATH_MAX_BYTES, CommonSettings, input_example

DATA_INPUTS = ("data", "eval-data", "baseline-data", "cache-dir", "report-dir")
"""Inputs naming folders the report folder (``out``) must be apart from: a report written into one
would overwrite or add files there."""


class EventPayloadError(MlgateError):
    """Raised when GITHUB_EVENT_PATH names a file that is missing or not JSON, holds something other
    than a JSON object, or holds a ``pull_request`` without a usable ``number``."""

    title = "Unreadable event payload"


_EVENT_HINT = (
    "The GitHub runner writes the event payload and sets GITHUB_EVENT_PATH itself. A step that sets "
    "GITHUB_EVENT_PATH (or runs mlgate outside Actions with it) must point it at the webhook payload, "
    "a JSON object such as the `pull_request` event's."
)


class PullRequest(BaseModel):
    number: int
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    is_fork: bool


class RunContext(BaseModel):
    in_actions: bool
    event_name: str | None = None
    event: dict[str, Any] = {}
    repository: str | None = None
    sha: str | None = None
    server_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    workspace: Path = Path(".")
    output_path: Path | None = None
    summary_path: Path | None = None
    pull_request: PullRequest | None = None

    def in_workspace(self, path: Path, input: str) -> Path:
        """Where input ``input`` (its value ``path``) points: relative paths are relative to the workspace.

        In Actions the path must stay inside the workspace after every symlink is followed (it need not
        exist yet: DVC may pull it, mlgate may create it); otherwise :class:`InvalidInput` names the
        input, the value and the workspace, and nothing outside is read, listed or written. Off Actions
        (the local CLI) the person running it owns the machine, and any path goes.
        """
        located = path if path.is_absolute() else self.workspace / path
        if len(os.fsencode(located)) > PATH_MAX_BYTES:
            raise InvalidInput(
                f"Input `{input}` is {_shown(path)}: inside the workspace {self.workspace} that is "
                f"{len(os.fsencode(located)):,} bytes, longer than the {PATH_MAX_BYTES:,} the OS opens.",
                hint=_example(input),
            )
        if not self.in_actions:
            return located
        root = self.workspace.resolve()
        try:
            real = located.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise InvalidInput(f"Input `{input}` is {_shown(path)}, which cannot be resolved in the workspace "
                               f"{root}: {exc}.", hint=_example(input)) from None
        if real != root and root not in real.parents:
            lexical = Path(os.path.normpath(path if path.is_absolute() else root / path))
            through = ", through a symbolic link," if lexical != real else ""
            raise InvalidInput(
                f"Input `{input}` is {_shown(path)}, which points{through} outside the workspace {root}. "
                "mlgate reads and writes only inside the checked-out repository.",
                hint=f"Give a path relative to the repository root.\n{_example(input)}",
            )
        return located

    def check_paths(self, settings: CommonSettings) -> None:
        """Every path input of ``settings`` (:meth:`in_workspace`) and the report folder
        (:meth:`report_folder`), checked once before any work; a mode resolves each again where it uses it.
        A ``model`` that names a file is checked where it is told from a W&B artifact (model-gate)."""
        for field in type(settings).model_fields:
            value = getattr(settings, field)
            if isinstance(value, Path) and field != "out":
                self.in_workspace(value, field.replace("_", "-"))
        self.report_folder(settings)

    def report_folder(self, settings: CommonSettings) -> Path:
        """:meth:`output_folder` of the settings' ``out``, kept apart from their data folders."""
        return self.output_folder(settings.out, {
            name: getattr(settings, name.replace("-", "_"), None) for name in DATA_INPUTS
        })

    def output_folder(self, out: Path, keep: Mapping[str, Path | None]) -> Path:
        """The report folder of input ``out``, checked before any work: inside the workspace
        (:meth:`in_workspace`), apart from every data folder in ``keep`` (input name -> value; a report
        written into a dataset would overwrite or add files there), and a folder mlgate can create and
        write. Raises :class:`InvalidInput` or :class:`CannotWrite`; creates nothing."""
        located = self.in_workspace(out, "out")
        real = located.resolve()
        for name, value in keep.items():
            if value is None:
                continue
            data = self.in_workspace(value, name).resolve()
            if real == data or data in real.parents or real in data.parents:
                where = "is" if real == data else "is inside" if data in real.parents else "contains"
                raise InvalidInput(
                    f"Input `out` is {_shown(out)}, which {where} `{name}` ({value}): writing the report "
                    f"there would overwrite or add files in the data.",
                    hint="Give the report a folder of its own.\nExample:\n  with:\n    out: mlgate-report",
                )
        existing = located
        while not existing.exists() and not existing.is_symlink() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            what = "is a file" if existing == located else f"is inside {existing}, which is a file"
            raise CannotWrite(f"Input `out` is {_shown(out)}, which {what}, not a folder.",
                              hint="Name a folder for the report.\nExample:\n  with:\n    out: mlgate-report")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise CannotWrite(
                f"Input `out` is {_shown(out)}, but {existing} is not writable, so the report folder cannot be "
                "written there.",
                hint="Name a folder in the checkout, which the step can write.\nExample:\n  with:\n"
                "    out: mlgate-report",
            )
        return located

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunContext:
        event_path = env.get("GITHUB_EVENT_PATH")
        event = _read_event(Path(event_path)) if event_path else {}
        return cls(
            in_actions=env.get("GITHUB_ACTIONS") == "true",
            event_name=env.get("GITHUB_EVENT_NAME") or None,
            event=event,
            repository=env.get("GITHUB_REPOSITORY") or None,
            sha=env.get("GITHUB_SHA") or None,
            server_url=(env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            workspace=Path(env.get("GITHUB_WORKSPACE") or "."),
            output_path=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            summary_path=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
            pull_request=_pull_request(event),
        )


def _read_event(path: Path) -> dict[str, Any]:
    """The event payload at ``path`` (GITHUB_EVENT_PATH): a JSON object, or EventPayloadError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EventPayloadError(f"GITHUB_EVENT_PATH names {path}, which does not exist.", hint=_EVENT_HINT) from exc
    except (OSError, UnicodeDecodeError) as exc:
        why = "it is a folder" if path.is_dir() else getattr(exc, "strerror", None) or str(exc)
        raise EventPayloadError(f"Cannot read the event payload GITHUB_EVENT_PATH={path}: {why}.",
                                hint=_EVENT_HINT) from exc
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise EventPayloadError(f"The event payload GITHUB_EVENT_PATH={path} is not JSON: {exc}.",
                                hint=_EVENT_HINT) from exc
    if not isinstance(event, dict):
        raise EventPayloadError(
            f"The event payload GITHUB_EVENT_PATH={path} is a JSON {_json_kind(event)}, not an object.",
            hint=_EVENT_HINT,
        )
    return event


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _shown(path: Path, limit: int = 120) -> str:
    text = str(path)
    return repr(text) if len(text) <= limit else f"{text[:limit - 20]!r}… ({len(text):,} characters)"


def _example(input: str) -> str:
    example = input_example(input)
    return f"Example:\n  with:\n    {input}: {example}" if example else ""


def _pull_request(event: Mapping[str, Any]) -> PullRequest | None:
    pr = event.get("pull_request")
    if pr is None:
        return None
    number = pr.get("number") if isinstance(pr, dict) else None
    # bool is an int to Python, and a PR number is a positive integer (a string of digits is tolerated)
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    if not isinstance(pr, dict) or isinstance(number, bool) or not isinstance(number, int) or number < 1:
        shown = "no `number`" if not isinstance(pr, dict) or "number" not in pr else f"`number` {number!r}"
        raise EventPayloadError(
            f"The event payload has a `pull_request` with {shown}; mlgate needs the pull request's number "
            "(a positive integer) to comment on it.",
            hint=_EVENT_HINT,
        )
    head, base = _object(pr.get("head")), _object(pr.get("base"))
    # a fork whose repository was deleted shows as head.repo = null: still a fork
    is_fork = head.get("repo") is None or _object(head["repo"]).get("full_name") != _object(
        base.get("repo")).get("full_name")
    return PullRequest(
        number=number,
        head_sha=str(head.get("sha", "")),
        head_ref=str(head.get("ref", "")),
        base_sha=str(base.get("sha", "")),
        base_ref=str(base.get("ref", "")),
        is_fork=is_fork,
    )


def _object(value: Any) -> dict[str, Any]:
    """A JSON object of the payload, or {} for anything else (a hand-written payload may hold anything)."""
    return value if isinstance(value, dict) else {}
