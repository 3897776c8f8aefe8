"""Statistics cached by DVC content hash, so an unchanged dataset is never processed twice.

Two levels: a local folder (``cache-dir``: the CLI, repeated runs on one runner, and a folder kept with
``actions/cache``) and the assets branch of the repository (across workflow runs: a PR's base
statistics were usually written by an earlier run). The assets branch is read only while gathering the
inputs (:func:`fetch_from_branch`, before measuring) and written only by the publishing step
(:func:`publish_to_branch`, beside ``finish()``): measuring reads and writes the local folder alone.
The per-shard states that let a changed dataset be re-read in part are :mod:`mlgate.data.shard_cache`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from mlgate.data.stats import DatasetStats
from mlgate.publish import make_shared_dirs, write_shared_file

if TYPE_CHECKING:
    from mlgate.github.branch_store import BranchStore


def _branch_path(key: str) -> str:
    return f"stats/{key}.json"


def fetch_from_branch(store: BranchStore | None, branch: str, keys: Iterable[str]) -> dict[str, bytes]:
    """The entries for ``keys`` found on the assets branch (gathering the inputs); a branch that does not
    exist or cannot be read only costs a recomputation."""
    found: dict[str, bytes] = {}
    if store is None:
        return found
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import GitHubError, GitHubPermissionError

    for key in keys:
        with contextlib.suppress(GitHubError, GitHubPermissionError):
            raw = store.read_file(branch, _branch_path(key))
            if raw is not None:
                found[key] = raw
    return found


def publish_to_branch(store: BranchStore | None, branch: str, entries: Mapping[str, bytes]) -> None:
    """Put this run's entries on the assets branch (publishing); a missing permission only costs a
    recomputation in a later run."""
    if not entries or store is None:
        return
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import GitHubError, GitHubPermissionError

    with contextlib.suppress(GitHubError, GitHubPermissionError):
        store.commit_files(branch, {_branch_path(key): data for key, data in entries.items()},
                           "mlgate: cache dataset statistics")


class StatsCache:
    """Whole-dataset statistics in ``folder``, and the entries ``fetched`` from the assets branch before
    measuring; what this run computes waits in :attr:`pending` for :func:`publish_to_branch`."""

    def __init__(self, folder: Path, fetched: Mapping[str, bytes] | None = None) -> None:
        self.folder = folder
        self.fetched = dict(fetched or {})
        self.pending: dict[str, bytes] = {}
        """Entries computed in this run, not yet on the assets branch."""

    def get(self, key: str) -> DatasetStats | None:
        raw: bytes | None = None
        with contextlib.suppress(OSError):
            raw = (self.folder / f"{key}.json").read_bytes()
        if raw is None:
            raw = self.fetched.get(key)
        if raw is None:
            return None
        try:
            return DatasetStats.model_validate_json(raw)
        except ValidationError:
            return None  # written by another mlgate version: recompute

    def put(self, key: str, stats: DatasetStats) -> None:
        data = stats.model_dump_json().encode("utf-8")
        with contextlib.suppress(OSError):  # a read-only workspace only costs a recomputation later
            # 0755/0644 and atomic: later steps (as another user) and concurrent runs read it too
            make_shared_dirs(self.folder)
            write_shared_file(self.folder / f"{key}.json", data)
        self.pending[key] = data
