"""Real git + DVC repositories for tests: two commits where a tracked dataset changes.

``make_dvc_repo`` builds, with the real ``dvc`` CLI of this interpreter,

* commit ``base``: ``data/processed`` (tracked as a whole by ``data/processed.dvc``) and
  ``data/raw`` (``data/raw.dvc``);
* commit ``head``: ``data/processed`` with one file modified, one deleted, one renamed and two
  added (one of them in the ``train/`` subfolder); ``data/raw`` unchanged.

The expected answers (file contents per revision, the diff, DVC's folder hash) are ground truth
built into this module, computed without DVC. Usable as a pytest plugin (``dvc_env`` and
``make_repo`` fixtures) or through the plain functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

PROCESSED = "data/processed"
RAW = "data/raw"

BASE_FILES: dict[str, bytes] = {
    "data/processed/a.csv": b"x,y\n1,2\n",
    "data/processed/b.csv": b"x,y\n3,4\n",
    "data/processed/c.csv": b"x,y\n5,6\n",
    "data/processed/train/t1.csv": b"x,y\n7,8\n",
}
HEAD_FILES: dict[str, bytes] = {
    "data/processed/a.csv": b"x,y\n1,2\n9,9\n",  # modified
    "data/processed/e.csv": b"x,y\n3,4\n",  # b.csv renamed
    "data/processed/d.csv": b"x,y\n0,0\n",  # added
    "data/processed/train/t1.csv": b"x,y\n7,8\n",
    "data/processed/train/t2.csv": b"x,y\n6,6\n",  # added
}  # c.csv deleted
RAW_FILES: dict[str, bytes] = {"data/raw/notes.txt": b"collected by hand\n"}

EXPECTED_DIFF: dict[str, list[str] | list[tuple[str, str]]] = {
    "added": ["data/processed/d.csv", "data/processed/train/t2.csv"],
    "modified": ["data/processed/a.csv"],
    "deleted": ["data/processed/c.csv"],
    "renamed": [("data/processed/b.csv", "data/processed/e.csv")],
}

Push = Literal["all", "base", "none"]


@dataclass(frozen=True)
class DvcRepo:
    """A built repository: where it is, its two commits, and the environment DVC ran with."""

    path: Path
    env: dict[str, str]
    base_rev: str
    head_rev: str
    remote_url: str | None

    def files_at(self, rev: str, prefix: str = PROCESSED) -> dict[str, bytes]:
        files = BASE_FILES if rev == self.base_rev else HEAD_FILES
        return {path: body for path, body in files.items() if path.startswith(prefix.rstrip("/") + "/")}


def hermetic_env(root: Path) -> dict[str, str]:
    """Environment for git and DVC that reads no user or system configuration."""
    root.mkdir(parents=True, exist_ok=True)
    gitconfig = root / "gitconfig"
    gitconfig.write_text("")
    dirs = {name: root / name for name in ("dvc-global", "dvc-system", "dvc-site-cache")}
    for folder in dirs.values():
        folder.mkdir(exist_ok=True)
    return {
        "DVC_NO_ANALYTICS": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(dirs["dvc-global"]),
        "DVC_SYSTEM_CONFIG_DIR": str(dirs["dvc-system"]),
        "DVC_SITE_CACHE_DIR": str(dirs["dvc-site-cache"]),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "mlgate tests",
        "GIT_AUTHOR_EMAIL": "tests@mlgate.invalid",
        "GIT_COMMITTER_NAME": "mlgate tests",
        "GIT_COMMITTER_EMAIL": "tests@mlgate.invalid",
        "GIT_TERMINAL_PROMPT": "0",
    }


def run(cwd: Path, env: Mapping[str, str], *command: str) -> str:
    """Run ``git ...`` or ``dvc ...`` (this interpreter's DVC) and return stdout; fail loudly."""
    argv = [sys.executable, "-m", "dvc", *command[1:]] if command[0] == "dvc" else list(command)
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _write(root: Path, files: Mapping[str, bytes], prefix: str) -> None:
    folder = root / prefix
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file():
                path.unlink()
            else:
                path.rmdir()
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def make_dvc_repo(root: Path, env: Mapping[str, str], *, remote_url: str | None, push: Push = "all") -> DvcRepo:
    """Build the two-commit repository in ``root``; ``push`` says which commits' data reach the remote.

    ``push="base"`` is the developer who forgot ``dvc push`` after changing the data.
    """
    root.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    run(root, env, "git", "init", "-q", "-b", "main")
    run(root, env, "dvc", "init", "-q")
    if remote_url:
        # What `dvc remote add -d storage URL` writes, without paying for another DVC start-up.
        (root / ".dvc" / "config").write_text(
            f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {remote_url}\n"
        )
    _write(root, BASE_FILES, PROCESSED)
    _write(root, RAW_FILES, RAW)
    run(root, env, "dvc", "add", "-q", PROCESSED, RAW)
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-q", "-m", "base: first dataset")
    if push == "base":
        run(root, env, "dvc", "push", "-q")
    base_rev = run(root, env, "git", "rev-parse", "HEAD").strip()

    _write(root, HEAD_FILES, PROCESSED)
    run(root, env, "dvc", "add", "-q", PROCESSED)
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-q", "-m", "head: dataset changes")
    if push == "all":
        run(root, env, "dvc", "push", "-q", "--all-commits")
    head_rev = run(root, env, "git", "rev-parse", "HEAD").strip()
    return DvcRepo(path=root, env=env, base_rev=base_rev, head_rev=head_rev, remote_url=remote_url)


def clone(repo: DvcRepo, dest: Path) -> Path:
    """A fresh ``git clone`` (no DVC cache, no data), checked out at the head commit."""
    run(dest.parent, repo.env, "git", "clone", "-q", str(repo.path), str(dest))
    return dest


def files_under(root: Path, prefix: str) -> dict[str, bytes]:
    """Every file under ``root/prefix``, keyed by its path relative to ``root``."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted((root / prefix).rglob("*"))
        if path.is_file()
    }


def dvc_dir_md5(files: Mapping[str, bytes], prefix: str) -> str:
    """DVC 3's hash of a tracked folder, computed independently of DVC.

    It is the md5 of the folder's listing: JSON of ``[{"md5": <file md5>, "relpath": <path>}]``
    sorted by path, ``sort_keys=True``, followed by the ``.dir`` suffix.
    """
    entries = [
        {"md5": hashlib.md5(body).hexdigest(), "relpath": name[len(prefix) + 1 :]}
        for name, body in sorted(files.items())
        if name.startswith(prefix + "/")
    ]
    entries.sort(key=lambda entry: entry["relpath"].split("/"))
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


@pytest.fixture(scope="session")
def dvc_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Hermetic git/DVC environment shared by the session (config dirs are empty temp folders)."""
    return hermetic_env(tmp_path_factory.mktemp("dvc-env"))


@pytest.fixture
def make_repo(tmp_path: Path, dvc_env: dict[str, str]) -> Callable[..., DvcRepo]:
    """Factory: ``make_repo(remote_url=..., push="all", env={...})`` builds a fresh repository."""

    def build(*, remote_url: str | None, push: Push = "all", env: Mapping[str, str] | None = None) -> DvcRepo:
        return make_dvc_repo(tmp_path / "origin", {**dvc_env, **(env or {})}, remote_url=remote_url, push=push)

    return build
