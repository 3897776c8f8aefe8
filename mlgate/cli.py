"""``python -m mlgate MODE --flag value`` locally, or the action's entrypoint with ``INPUT_*``.

Both build the same settings model and call the same mode function. This is also the one place
that turns an :class:`~mlgate.errors.MlgateError` into an ``::error::`` annotation, a fuller
explanation in the job summary, and the exit code.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import SecretStr

from mlgate import __version__, workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.errors import CannotWrite, ExitCode, MlgateError
from mlgate.gcp import secret_values
from mlgate.settings import (
    MODES,
    SETTINGS_BY_MODE,
    CommonSettings,
    DataStatsSettings,
    ModelGateSettings,
    PromoteSettings,
    PublishSettings,
    default_text,
    input_name,
    inputs_from_env,
    load_settings,
)

MODE_HELP = {
    "data-stats": "statistics and checks of a dataset, compared with the base branch",
    "model-gate": "benchmark a model, gate it on thresholds and production, promote or propose",
    "promote": "apply a merged promotion manifest (after the approval pull request)",
    "publish": "post the report a fork's run uploaded (from a trusted workflow_run workflow)",
}


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
         clients: Clients | None = None) -> int:
    """Run one mode from CLI flags (``argv``) or the runner's ``INPUT_*`` variables; returns the exit code.

    ``clients`` replaces the GitHub, DVC and registry clients built from the environment (tests).
    Inside Actions (``GITHUB_ACTIONS=true``) everything said is a workflow command; elsewhere plain text.
    """
    env = dict(os.environ if env is None else env)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args and not any(key.startswith("INPUT_") for key in env):
        build_parser(None).print_help(sys.stderr)  # a person at a terminal, not the runner
        return ExitCode.ERROR
    with workflow.running(in_actions=env.get("GITHUB_ACTIONS") == "true"):
        try:
            inputs = _cli_inputs(args) if args else inputs_from_env(env)
            settings = load_settings(inputs)
            _mask_secrets(settings)
            ctx = RunContext.from_env(env)
            ctx.check_paths(settings)  # inside the workspace, the report apart from the data: before any work
            _trust_workspace(ctx)
            return _run(settings, ctx, clients or Clients.for_run(settings, ctx, env))
        except MlgateError as exc:
            _report_error(exc, _summary_path(env))
            return exc.exit_code
        except Exception as exc:  # anything else is a bug in mlgate: a short report, never a bare traceback
            _report_bug(exc, _summary_path(env))
            return ExitCode.BUG


ISSUES_URL = "https://github.com/mlgate/mlgate/issues"
BUG_FRAMES = 2
"""Stack frames a bug report shows: where it broke, and what called it."""
BUG_MESSAGE_CHARS = 500
"""An exception's text is cut here in a bug report (some libraries put whole arrays in theirs)."""


def _summary_path(env: Mapping[str, str]) -> Path | None:
    return Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None


def _report_error(exc: MlgateError, summary_path: Path | None) -> None:
    """The one place an error becomes output: what failed and how to fix it, for whoever reads it.

    In Actions the annotation is what the checks UI shows, and the job summary holds the fuller
    explanation; on a terminal the same text is printed plainly on stderr. A summary that cannot be
    written (the error may be about that very file) is said in a second annotation, not raised.
    """
    workflow.error(exc.title, exc.message, exc.hint)
    _try_summary(summary_path, f"### ❌ mlgate: {exc.title}\n\n{exc.message}\n\n{_hint_markdown(exc.hint)}")


def _report_bug(exc: Exception, summary_path: Path | None) -> None:
    """An unexpected exception: the version, the exception, the last frames, and where to report it.

    Short on purpose: a user can do nothing with a full traceback, and a maintainer can ask for one.
    """

    said = str(exc) if len(str(exc)) <= BUG_MESSAGE_CHARS else str(exc)[:BUG_MESSAGE_CHARS] + " …"
    what = f"mlgate {__version__} hit a bug: {type(exc).__name__}: {said}"
    frames = "\n".join(f"  at {_short_path(frame.filename)}:{frame.lineno} in {frame.name}"
                       for frame in traceback.extract_tb(exc.__traceback__)[-BUG_FRAMES:])
    ask = f"This is a bug in mlgate, not in your workflow: please open an issue at {ISSUES_URL} with this log."
    if workflow.in_actions():
        workflow.annotate("error", "mlgate hit a bug", f"{what}\n{frames}\n{ask}")
    print(f"{what}\n{frames}\n{ask}", file=sys.stderr, flush=True)
    _try_summary(summary_path, f"### 🐞 mlgate hit a bug\n\n`{type(exc).__name__}: {said}`\n\n"
                               f"```\n{frames}\n```\n\n{ask}\n")


def _short_path(filename: str) -> str:
    """``mlgate/data/stats.py`` rather than the absolute path of the install."""
    parts = Path(filename).parts
    for anchor in ("mlgate", "site-packages"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[index + (anchor == "site-packages"):])
    return Path(filename).name


def _try_summary(summary_path: Path | None, markdown: str) -> None:
    try:
        workflow.append_summary(summary_path, markdown)
    except CannotWrite as exc:
        workflow.annotate("warning", exc.title, exc.message)


def _hint_markdown(hint: str) -> str:
    """A hint for the job summary: its prose as text, its workflow YAML (a ``with:`` line and the
    indented lines under it) as a code block."""
    blocks: list[tuple[bool, list[str]]] = []
    for line in hint.strip("\n").splitlines():
        is_yaml = line.startswith((" ", "\t")) or re.fullmatch(r"[a-z][\w-]*:", line.strip()) is not None
        if blocks and blocks[-1][0] == is_yaml:
            blocks[-1][1].append(line)
        else:
            blocks.append((is_yaml, [line]))
    return "\n\n".join(
        "```yaml\n" + textwrap.dedent("\n".join(lines)) + "\n```" if is_yaml else "\n".join(lines)
        for is_yaml, lines in blocks
    ) + "\n"


def _run(settings: CommonSettings, ctx: RunContext, clients: Clients) -> ExitCode:
    if isinstance(settings, DataStatsSettings):
        # local: data-stats only; the other modes start without them
        from mlgate.data.shards import start_workers, worker_count
        from mlgate.figures.worker import FigureWorker

        _return_freed_memory()
        worker = FigureWorker.start()  # before torch is imported: its start-up overlaps ours
        if settings.engine == "local":
            start_workers(worker_count(settings.workers))  # likewise
        try:
            # local: each mode imports only its own dependencies (torch, PyGithub, wandb)
            from mlgate.data.mode import run_data_stats

            return run_data_stats(settings, ctx, clients, figure_worker=worker)
        finally:
            worker.close()
    if isinstance(settings, ModelGateSettings):
        # local: each mode imports only its own dependencies (torch, PyGithub, wandb)
        from mlgate.model.mode import run_model_gate

        return run_model_gate(settings, ctx, clients)
    if isinstance(settings, PublishSettings):
        # local: each mode imports only its own dependencies (torch, PyGithub, wandb)
        from mlgate.fork_publish import run_publish

        return run_publish(settings, ctx, clients)
    assert isinstance(settings, PromoteSettings)
    # local: each mode imports only its own dependencies (torch, PyGithub, wandb)
    from mlgate.model.promote import run_promote

    return run_promote(settings, ctx, clients)


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number (malloc.h)."""
MMAP_THRESHOLD = 128 * 1024
"""glibc's own starting value: blocks from this size up are mapped on their own and unmapped when freed."""


def _return_freed_memory() -> None:
    """Keep glibc's threshold for mapping a block on its own at its starting value (data-stats: the
    runner's memory is the limit). Left alone, glibc raises it to each freed block's size, up to 32 MiB,
    so the columns of a million items and the search's working chunks come from the heap and their
    pages stay with the process once freed: the peak is then the sum of every phase's, not the largest.
    Not glibc (musl, macOS): nothing to do."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def _mask_secrets(settings: CommonSettings) -> None:
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        if name == "gcp_credentials":  # a JSON document: mask its secret fields, not its braces

            for secret in secret_values(value.get_secret_value()):
                workflow.mask(secret)
        else:
            workflow.mask(value.get_secret_value())


def _trust_workspace(ctx: RunContext) -> None:
    """Git refuses a repository owned by another user ("dubious ownership"); the runner mounts the
    checkout owned by the runner user while the container runs as root. Trust it for our
    subprocesses only (command-scope config, which git honours for safe.directory)."""
    if ctx.in_actions:
        count = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
        os.environ[f"GIT_CONFIG_KEY_{count}"] = "safe.directory"
        os.environ[f"GIT_CONFIG_VALUE_{count}"] = "*"
        os.environ["GIT_CONFIG_COUNT"] = str(count + 1)


def _cli_inputs(args: list[str]) -> dict[str, str]:
    mode = args[0]
    if mode not in MODES:  # also --help and --version
        build_parser(None).parse_args(args)  # prints usage and exits 2
    parser = build_parser(mode)
    namespace = parser.parse_args(args)
    inputs = {"mode": mode}
    for field, value in vars(namespace).items():
        if field != "mode" and value is not None:
            inputs[input_name(field)] = str(value)
    return inputs


def build_parser(mode: str | None) -> argparse.ArgumentParser:
    """Flags are the action's inputs, generated from the settings model of ``mode``."""
    parser = argparse.ArgumentParser(
        prog="python -m mlgate",
        description="Continuous ML gate. Every input of the GitHub Action is a --flag of the same name; "
        "`python -m mlgate MODE --help` lists a mode's.",
    )
    parser.add_argument("--version", action="version", version=f"mlgate {__version__}")
    sub = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    for name in MODES:
        command = sub.add_parser(name, help=MODE_HELP[name])
        if name != mode:
            continue
        for field, info in SETTINGS_BY_MODE[name].model_fields.items():
            if field == "mode":
                continue
            is_bool = "bool" in str(info.annotation).lower()
            default = default_text(info)
            shown = " (required)" if info.is_required() else "" if default is None else f" (default: {default})"
            command.add_argument(
                f"--{input_name(field)}",
                dest=field,
                nargs="?" if is_bool else None,
                const="true" if is_bool else None,
                default=None,
                help=((info.description or "") + shown).replace("%", "%%"),  # argparse formats help with %
            )
    return parser
