"""Getting data kept in DVC, the same way for every mode: data-stats pulls ``data``, model-gate
pulls ``eval-data``, with the inputs of :class:`~mlgate.settings.DvcInputs` (``dvc-pull``,
``gcp-credentials``, ``dvc-timeout``).

:func:`dvc_session` hands out the run's DVC runner (credentials in place, downloads bounded by
``dvc-timeout``) or None when DVC is not used; :func:`pull_if_tracked` pulls a data path when
``dvc-pull`` asks for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate import gcp, workflow
from mlgate.data.dvc import DvcError, DvcRunner, repo_relative
from mlgate.settings import DvcInputs

if TYPE_CHECKING:
    from mlgate.data.stream import RemoteData


@contextlib.contextmanager
def dvc_session(settings: DvcInputs, runner: DvcRunner, *, needed: bool = False) -> Iterator[DvcRunner | None]:
    """``runner`` when the repository uses DVC and the run may need it (``dvc-pull`` not `false`, or
    ``needed`` for another reason, e.g. comparing with the base branch), with the Google credentials
    (``gcp-credentials``, else the file an earlier auth step exported) checked and in a private temp
    file for exactly as long as DVC runs; None otherwise."""
    if settings.dvc_pull == "false" and not needed:
        yield None
        return
    if not runner.is_dvc_repo():
        if settings.dvc_pull in ("true", "stream"):
            raise DvcError(
                f"`dvc-pull: {settings.dvc_pull}` but {runner.repo} is not a DVC repository (no .dvc folder).",
                hint="Run the step after actions/checkout in a DVC repository, or set `dvc-pull: auto`.",
            )
        yield None
        return
    runner = runner.with_timeout(settings.dvc_timeout)
    if settings.gcp_credentials is None and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        yield runner
        return
    with _google_credentials(settings, runner, os.environ) as extra:
        yield runner.with_env(extra)


@contextlib.contextmanager
def _google_credentials(settings: DvcInputs, runner: DvcRunner, env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """DVC's environment for Google: ``gcp-credentials`` when given, else the file that
    ``GOOGLE_APPLICATION_CREDENTIALS`` names (a host path when an auth step ran before this container).

    An exported ``external_account`` file is checked like the input (it decides where the job's OIDC
    token goes); any other exported file (a developer's ``gcloud`` login when run as a CLI) is passed
    on as it was, as before."""

    request_url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL") or None
    if settings.gcp_credentials is not None:
        text, source = settings.gcp_credentials.get_secret_value(), gcp.INPUT
    else:
        named = env[gcp.AMBIENT]
        located = gcp.locate_in_workspace(named, Path(env.get("GITHUB_WORKSPACE") or runner.repo))
        if located is None:
            workflow.annotate(
                "warning", "Google credentials not found",
                f"{gcp.AMBIENT} names {named}, which is neither in this container nor under the workspace, so "
                "DVC runs without it. An auth step must write the file into the workspace "
                "(google-github-actions/auth@v2 does, after actions/checkout), or pass `gcp-credentials`.",
            )
            yield {gcp.AMBIENT: ""}  # google-auth treats an empty value as unset
            return
        text, source = gcp.read_credentials_file(located), f"{gcp.AMBIENT} ({named})"
        if gcp.credentials_type(text) != "external_account":  # e.g. `gcloud auth application-default login`'s
            for secret in gcp.secret_values(text):
                workflow.mask(secret)
            yield {gcp.AMBIENT: str(located)}
            return
    with gcp.google_credentials(text, mask=workflow.mask, source=source, id_token_request_url=request_url) as extra:
        yield extra


def should_pull(settings: DvcInputs, dvc: DvcRunner, data: str) -> bool:
    """``dvc-pull: true`` (or `stream` where the data cannot be streamed), or `auto` and a .dvc file or
    dvc.yaml output covers ``data``."""
    if settings.dvc_pull == "false":
        return False
    return settings.dvc_pull in ("true", "stream") or bool(dvc.tracked_targets(data))


def pull_if_tracked(settings: DvcInputs, dvc: DvcRunner | None, data: Path, input_name: str) -> None:
    """Pull ``data`` (the value of input ``input_name``) when ``dvc-pull`` asks for it; `stream` pulls
    too (a mode that streams, data-stats, asks :func:`stream_source` instead).

    With `auto`, a path outside the repository (an absolute path elsewhere) is simply not pulled;
    with `true` it is an error that names the input.
    """
    if dvc is None or settings.dvc_pull == "false":
        return
    rel = _repo_relative(settings, dvc, data, input_name)
    if rel is None:
        return
    if settings.dvc_pull == "stream":
        workflow.annotate("notice", f"Pulling {input_name}",
                          f"`dvc-pull: stream` streams data-stats' ImageFolder data; `{input_name}` is pulled "
                          "with `dvc pull`, as with `dvc-pull: true`.")
    if should_pull(settings, dvc, rel):
        with workflow.phase(f"Pulling {rel} (dvc pull)"):
            dvc.pull(rel)


def stream_source(settings: DvcInputs, dvc: DvcRunner, data: Path, input_name: str,
                  rev: str | None = None) -> RemoteData:
    """Where ``dvc-pull: stream`` reads ``data`` (input ``input_name``) from: this repository at ``rev``
    (None: the checkout), with the environment the run's DVC commands get (the credentials file's path)."""
    # local: pulls in torch (seconds of start-up); only streamed data needs it
    from mlgate.data.stream import RemoteData

    rel = _repo_relative(settings, dvc, data, input_name)
    assert rel is not None  # `stream` raises for a path outside the repository
    return RemoteData(str(dvc.repo.resolve()), rev, rel, tuple(sorted(dvc.extra_env.items())))


def _repo_relative(settings: DvcInputs, dvc: DvcRunner, data: Path, input_name: str) -> str | None:
    """``data`` relative to the repository; outside it, None for `auto` and an error naming the input
    for `true` and `stream`."""
    rel = repo_relative(data, dvc.repo)
    if rel is None and settings.dvc_pull in ("true", "stream"):
        raise DvcError(
            f"`dvc-pull: {settings.dvc_pull}` but `{input_name}` ({data}) is outside the repository {dvc.repo}, "
            "so DVC cannot read it.",
            hint=f"Give `{input_name}` relative to the repository root, e.g. `{input_name}: data/processed`.",
        )
    return rel

