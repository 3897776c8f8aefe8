"""DVC at the rim: which files track a data path, their content hash, pull, diff and old revisions.

Everything that moves data goes through the ``dvc`` CLI of the running interpreter (its stable
interface; ``dvc.repo.Repo`` is internal), with exit codes checked and DVC's own ``ERROR:`` lines
carried into :class:`DvcError`. Which outputs cover a path, and their hashes, are read straight
from the ``.dvc`` / ``dvc.yaml`` / ``dvc.lock`` files (at a git revision through ``git show``),
so they cost no download and no DVC start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mlgate.errors import MlgateError

_HINT_REMOTE = (
    "Configure a default remote and commit .dvc/config, e.g.\n"
    "  dvc remote add -d storage gs://BUCKET/PATH && git add .dvc/config && git commit -m 'DVC remote'"
)
_HINT_AUTH = (
    "The remote refused the request. For a gs:// remote pass a service-account key that can read the "
    "bucket:\n  with:\n    gcp-credentials: ${{ secrets.GCP_SA_KEY }}"
)
_HINT_MISSING = (
    "The remote lacks some of the data this commit refers to. Run `dvc push` from the machine that "
    "has the data (and commit the .dvc / dvc.lock files it pushed)."
)
_HINT_REVISION = (
    "The revision is not in this clone. Check out the full history:\n"
    "  - uses: actions/checkout@v4\n    with:\n      fetch-depth: 0"
)
_HINT_UNTRACKED = "Track it first: `dvc add PATH` (or declare it in a dvc.yaml stage's outs), then commit."

# Lower-cased fragments of DVC's / the storage client's messages, checked in this order.
_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("no remote provided", "no default remote", "no remote specified", "remote is not set"), _HINT_REMOTE),
    (
        (
            "anonymous caller",
            "login required",
            "unauthorized",
            "forbidden",
            "permission",
            "credentials",
            "invalid_grant",
            "401",
            "403",
        ),
        _HINT_AUTH,
    ),
    (("unknown git revision", "unknown revision", "bad revision", "invalid revision"), _HINT_REVISION),
    (
        (
            "missing cache files",
            "checkout failed",
            "failed to load directory",
            "is your cache up to date",
            "not found",
            "no such file or directory",
        ),
        _HINT_MISSING,
    ),
)


_MAX_REASON = 2000  # characters of DVC's output kept in an error (it may list thousands of files)


class DvcError(MlgateError):
    """Raised when a ``dvc`` command fails or answers something unusable; carries DVC's reason."""

    title = "DVC failed"


class DataDiff(BaseModel):
    """Files (not folders) that differ between two revisions, paths relative to the repository."""

    added: list[str]
    modified: list[str]
    deleted: list[str]
    renamed: list[tuple[str, str]]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.modified or self.deleted or self.renamed)


@dataclass(frozen=True)
class _Out:
    """One DVC output: its path relative to the repository, hash, and what to name to pull it."""

    path: str
    md5: str | None
    target: str


class DvcRunner:
    """Runs ``dvc`` and ``git`` in ``repo``; ``env`` overlays ``os.environ`` for every subprocess."""

    def __init__(self, repo: Path, env: Mapping[str, str] | None = None) -> None:
        self.repo = Path(repo)
        self._env = {**os.environ, **(env or {}), "DVC_NO_ANALYTICS": "1"}

    def with_env(self, extra: Mapping[str, str]) -> DvcRunner:
        """The same runner with ``extra`` added to every subprocess's environment (e.g. credentials)."""
        runner = DvcRunner(self.repo)
        runner._env = {**self._env, **extra}
        return runner

    def is_dvc_repo(self) -> bool:
        return (self.repo / ".dvc").is_dir()

    def tracked_targets(self, data: str) -> list[str]:
        """The ``.dvc`` files (or ``dvc.yaml`` output paths) whose outputs cover ``data``."""
        return sorted({out.target for out in self._covering_outs(data, rev=None)})

    def pull(self, data: str) -> None:
        targets = self.tracked_targets(data)
        if not targets:
            raise DvcError(
                f"`{_norm(data)}` is not tracked by DVC in {self.repo}: no .dvc file or dvc.yaml output covers it.",
                hint=_HINT_UNTRACKED,
            )
        self._dvc("pull", *targets)

    def content_hash(self, data: str, rev: str | None = None) -> str | None:
        """DVC's md5 of the output covering ``data`` at ``rev`` (working tree when None).

        One output: its md5 as DVC writes it (``...dir`` for folders). Several (``data`` is a parent
        of several outputs): the md5 of their sorted ``path md5`` lines. None when untracked.
        """
        outs = self._covering_outs(data, rev=rev)
        if not outs:
            return None
        unhashed = [out.path for out in outs if not out.md5]
        if unhashed:
            where = f"at {rev}" if rev else "in the working tree"
            raise DvcError(
                f"DVC output(s) {', '.join(unhashed)} have no recorded hash {where}.",
                hint="Run `dvc repro` (or `dvc commit`) and commit dvc.lock / the .dvc files.",
            )
        if len(outs) == 1:
            return outs[0].md5
        lines = "\n".join(sorted(f"{out.path} {out.md5}" for out in outs))
        return hashlib.md5(lines.encode(), usedforsecurity=False).hexdigest()

    def diff(self, base_rev: str, head_rev: str, data: str) -> DataDiff:
        """Files under ``data`` that differ from ``base_rev`` to ``head_rev`` (``dvc diff --json``)."""
        targets = self._diff_targets(data, base_rev, head_rev)
        if not targets:
            return DataDiff(added=[], modified=[], deleted=[], renamed=[])
        stdout = self._dvc("diff", "--json", base_rev, head_rev, "--targets", *targets)
        try:
            answer = json.loads(stdout or "{}")
        except json.JSONDecodeError as exc:
            raise DvcError(
                f"`dvc diff --json {base_rev} {head_rev}` printed something that is not JSON: {stdout[:200]!r}"
            ) from exc
        return _parse_diff(answer, f"dvc diff --json {base_rev} {head_rev} --targets {' '.join(targets)}")

    def materialize(self, rev: str, data: str, dest: Path) -> Path:
        """Download ``data`` as of ``rev`` to ``dest / data`` (``dvc get``); returns that path."""
        rel = _norm(data)
        out = Path(dest) / rel
        if out.exists():
            raise DvcError(f"Cannot download `{rel}` at {rev} to {out}: it already exists.")
        if not self._covering_outs(rel, rev=rev):
            raise DvcError(
                f"`{rel}` is not tracked by DVC at revision {rev}; nothing to download.",
                hint=_HINT_UNTRACKED,
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        self._dvc("get", str(self.repo.resolve()), rel, "--rev", rev, "-o", str(out))
        return out

    # -- reading DVC's files -------------------------------------------------------------------

    def _covering_outs(self, data: str, rev: str | None) -> list[_Out]:
        rel = _norm(data)
        by_path: dict[str, _Out] = {}
        for name, text in self._stage_files(rev):
            for out in _outs_of(name, text):
                known = by_path.get(out.path)
                # dvc.yaml and dvc.lock both name a stage's output; the lock knows its hash.
                if _covers(out.path, rel) and (known is None or (known.md5 is None and out.md5)):
                    by_path[out.path] = out
        return sorted(by_path.values(), key=lambda out: out.path)

    def _stage_files(self, rev: str | None) -> list[tuple[str, str]]:
        """(path, text) of every .dvc, dvc.yaml and dvc.lock file, at ``rev`` or in the working tree."""
        if rev is None:
            # -co --exclude-standard: committed and new files alike, without walking ignored data.
            listing = self._git("ls-files", "-co", "--exclude-standard", "--", "*.dvc", "*dvc.yaml", "*dvc.lock")
            names = [name for name in listing.splitlines() if _is_stage_file(name)]
            return [(name, path.read_text()) for name in names if (path := self.repo / name).is_file()]
        self._verify_revision(rev)
        names = [name for name in self._git("ls-tree", "-r", "--name-only", rev).splitlines()]
        return [(name, self._git("show", f"{rev}:./{name}")) for name in names if _is_stage_file(name)]

    def _diff_targets(self, data: str, base_rev: str, head_rev: str) -> list[str]:
        rel = _norm(data)
        targets: set[str] = set()
        for rev in (base_rev, head_rev):
            for out in self._covering_outs(rel, rev=rev):
                # A path inside an output is diffed on its own; a parent of outputs through them.
                targets.add(rel if _is_within(rel, out.path) else out.path)
        return sorted(targets)

    # -- subprocesses --------------------------------------------------------------------------

    def _dvc(self, *args: str) -> str:
        command = [sys.executable, "-m", "dvc", *args]
        shown = "dvc " + " ".join(args)
        try:
            done = subprocess.run(command, cwd=self.repo, env=self._env, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise DvcError(f"Cannot run `{shown}` in {self.repo}: {exc.strerror}.") from exc
        if done.returncode != 0:
            reason = _dvc_reason(done.stderr, done.stdout)
            raise DvcError(
                f"`{shown}` failed in {self.repo} (exit code {done.returncode}): {reason}",
                hint=_hint_for(reason),
            )
        return done.stdout

    def _verify_revision(self, rev: str) -> None:
        done = self._run_git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        if done.returncode != 0:
            raise DvcError(
                f"Revision {rev!r} is not a commit of the git repository at {self.repo}.", hint=_HINT_REVISION
            )

    def _git(self, *args: str) -> str:
        done = self._run_git(*args)
        if done.returncode != 0:
            raise DvcError(
                f"`git {' '.join(args)}` failed in {self.repo} (exit code {done.returncode}): "
                f"{done.stderr.strip() or 'git gave no reason.'}"
            )
        return done.stdout

    def _run_git(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["git", *args], cwd=self.repo, env=self._env, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise DvcError(f"Cannot run `git {' '.join(args)}` in {self.repo}: {exc.strerror}.") from exc


# -- pure helpers --------------------------------------------------------------------------------


def _norm(data: str) -> str:
    """``data`` as a clean POSIX path relative to the repository ("." for all of it)."""
    rel = posixpath.normpath(data.replace("\\", "/").strip() or ".")
    if rel.startswith("/") or rel == ".." or rel.startswith("../"):
        raise DvcError(
            f"Data path {data!r} points outside the repository; give a path relative to its root, "
            "e.g. `data/processed`."
        )
    return rel


def _is_within(path: str, parent: str) -> bool:
    return parent == "." or path == parent or path.startswith(parent.rstrip("/") + "/")


def _covers(out_path: str, data: str) -> bool:
    return _is_within(data, out_path) or _is_within(out_path, data)


def _is_stage_file(name: str) -> bool:
    base = posixpath.basename(name)
    return (name.endswith(".dvc") and base != ".dvc") or base in ("dvc.yaml", "dvc.lock")


def _outs_of(name: str, text: str) -> list[_Out]:
    """The outputs a .dvc / dvc.yaml / dvc.lock file declares, paths relative to the repository."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DvcError(f"{name} is not valid YAML: {exc}", hint="Fix or regenerate it with DVC.") from exc
    if not isinstance(doc, dict):
        return []
    folder = posixpath.dirname(name)
    base = posixpath.basename(name)
    if base == "dvc.yaml":
        # Hashes live in dvc.lock; dvc.yaml adds outputs of stages that never ran. Templated
        # stages (foreach/matrix, ${...}) appear resolved in dvc.lock only.
        return [
            _Out(path=path, md5=None, target=path)
            for wdir, entries in _stage_outs(doc)
            for entry in entries
            if (path := _out_path(folder, wdir, entry)) and "${" not in path
        ]
    if base == "dvc.lock":
        return [
            _Out(path=path, md5=_md5(entry), target=path)
            for wdir, entries in _stage_outs(doc)
            for entry in entries
            if (path := _out_path(folder, wdir, entry))
        ]
    wdir = _wdir(doc)
    return [
        _Out(path=path, md5=_md5(entry), target=name)
        for entry in _as_list(doc.get("outs"))
        if (path := _out_path(folder, wdir, entry))
    ]


def _stage_outs(doc: dict[str, Any]) -> Iterable[tuple[str, list[Any]]]:
    stages = doc.get("stages")
    if not isinstance(stages, dict):
        return []
    return [(_wdir(stage), _as_list(stage.get("outs"))) for stage in stages.values() if isinstance(stage, dict)]


def _wdir(doc: dict[str, Any]) -> str:
    wdir = doc.get("wdir")
    return wdir if isinstance(wdir, str) else "."


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _out_path(folder: str, wdir: str, entry: Any) -> str | None:
    if isinstance(entry, str):
        raw = entry
    elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
        raw = entry["path"]  # .dvc / dvc.lock form
    elif isinstance(entry, dict) and len(entry) == 1:
        raw = str(next(iter(entry)))  # dvc.yaml form: {path: {cache: false, ...}}
    else:
        return None
    return posixpath.normpath(posixpath.join(folder, wdir, raw))


def _md5(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    value = entry.get("md5") or entry.get("etag")
    return str(value) if value else None


def _parse_diff(answer: Any, shown: str) -> DataDiff:
    if not isinstance(answer, dict):
        raise DvcError(f"`{shown}` answered {answer!r}, not a JSON object.")

    def paths(kind: str) -> list[str]:
        return [str(item["path"]) for item in _as_list(answer.get(kind)) if isinstance(item, dict)]

    renamed = [
        (str(item["path"]["old"]), str(item["path"]["new"]))
        for item in _as_list(answer.get("renamed"))
        if isinstance(item, dict) and isinstance(item.get("path"), dict)
    ]
    every = [*paths("added"), *paths("modified"), *paths("deleted"), *(p for pair in renamed for p in pair)]
    files = [path for path in every if not path.endswith("/")]
    blind = [folder for folder in every if folder.endswith("/") and not any(path.startswith(folder) for path in files)]
    if blind:
        # DVC could not read the folder listings (remote unreachable or missing the .dir objects):
        # it still exits 0 but names only the folder.
        raise DvcError(
            f"`{shown}` could not list the files of {', '.join(blind)}: DVC reports the folder as "
            "changed without naming any file, which means it could not fetch the folder listing "
            "of one of the revisions from the remote.",
            hint=_HINT_MISSING + " Check also that the remote is reachable with the given credentials.",
        )
    return DataDiff(
        added=sorted(p for p in paths("added") if not p.endswith("/")),
        modified=sorted(p for p in paths("modified") if not p.endswith("/")),
        deleted=sorted(p for p in paths("deleted") if not p.endswith("/")),
        renamed=sorted(renamed),
    )


def _dvc_reason(stderr: str, stdout: str) -> str:
    """DVC's own explanation: its ERROR and WARNING blocks (with their continuation lines) and
    plain notes such as "No remote provided ...", never a traceback or progress output."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for raw in stderr.splitlines():
        line = raw.strip()
        if raw.startswith(("ERROR:", "WARNING:")):
            current = [raw.split(":", 1)[1].strip()]
            blocks.append(current)
        elif line.startswith(("Having any troubles?", "Traceback (most recent call last)")) or not line:
            current = None
        elif current is not None and not line.startswith("<https://error.dvc.org"):
            current.append(line)
        elif current is None and _looks_like_note(line):
            blocks.append([line])
    blocks += [[line.strip()] for line in stdout.splitlines() if _looks_like_note(line)]
    parts = _unique([_join(block) for block in blocks if any(block)])
    if not parts:
        tail = [line.strip() for line in stderr.splitlines() if line.strip()][-3:]
        parts = tail or ["DVC gave no reason."]
    reason = " ".join(parts)
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."


def _looks_like_note(line: str) -> bool:
    # Plain (non-ERROR) lines DVC prints that explain a failure, e.g. "No remote provided and no
    # default remote set." before "ERROR: failed to pull data from the cloud".
    lowered = line.lower()
    return any(word in lowered for word in ("remote", "missing", "not found", "denied"))


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _join(lines: Sequence[str]) -> str:
    return " ".join(line if line.endswith((".", ":", "!", "?")) else line + ";" for line in lines).rstrip(";")


def _hint_for(reason: str) -> str:
    lowered = reason.lower()
    for fragments, hint in _HINTS:
        if any(fragment in lowered for fragment in fragments):
            return hint
    return "Run the same command locally with `-v` to see DVC's full log."
