"""Statistics cached by DVC content hash, so an unchanged dataset is never processed twice.

Two levels: a local folder (the CLI, and repeated runs on one runner) and the assets branch of the
repository (across workflow runs: a PR's base statistics were usually written by an earlier run).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from mlgate.data.stats import DatasetStats
from mlgate.publish import make_shared_dirs, write_shared_file

if TYPE_CHECKING:
    from mlgate.github.branch_store import BranchStore


class StatsCache:
    def __init__(self, folder: Path, store: BranchStore | None, branch: str) -> None:
        self.folder = folder
        self.store = store
        self.branch = branch
        self.pending: dict[str, bytes] = {}
        """Entries computed in this run, not yet on the assets branch (see :meth:`flush`)."""

    def get(self, key: str) -> DatasetStats | None:
        raw: bytes | None = None
        with contextlib.suppress(OSError):
            raw = (self.folder / f"{key}.json").read_bytes()
        if raw is None and self.store is not None:
            from mlgate.github.client import GitHubError, GitHubPermissionError

            with contextlib.suppress(GitHubError, GitHubPermissionError):
                raw = self.store.read_file(self.branch, f"stats/{key}.json")
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
        self.pending[f"stats/{key}.json"] = data

    def flush(self) -> None:
        """Put this run's entries on the assets branch; a missing permission only costs a recomputation."""
        if not self.pending or self.store is None:
            return
        from mlgate.github.client import GitHubError, GitHubPermissionError

        with contextlib.suppress(GitHubError, GitHubPermissionError):
            self.store.commit_files(self.branch, self.pending, "mlgate: cache dataset statistics")
            self.pending = {}
