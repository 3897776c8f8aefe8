"""DVC at the rim: which files track a data path, their content hash, pull, diff and old revisions.

Everything that moves data goes through the ``dvc`` CLI of the running interpreter (its stable
interface; ``dvc.repo.Repo`` is internal), with exit codes checked and DVC's own ``ERROR:`` lines
carried into :class:`DvcError`. Which outputs cover a path, and their hashes, are read straight
from the ``.dvc`` / ``dvc.yaml`` / ``dvc.lock`` files (at a git revision through ``git show``),
so they cost no download and no DVC start-up. Downloads (``dvc pull``, ``dvc get``) stream DVC's own
progress to the log as they run and are stopped, with their whole process group, after ``timeout``
seconds (:func:`run_streaming`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import posixpath
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel

from mlgate import workflow
from mlgate.errors import ExitCode, MlgateError
from mlgate.report_blocks import plain_text

_HINT_REMOTE = (
    "Configure a default remote and commit .dvc/config, e.g.\n"
    "  dvc remote add -d storage gs://BUCKET/PATH && git add .dvc/config && git commit -m 'DVC remote'"
)
_HINT_AUTH = (
    "The remote refused the request. For a gs:// remote pass a service-account key that can read the "
    "bucket:\n  with:\n    gcp-credentials: ${{ secrets.GCP_SA_KEY }}\n"
    "or, keyless, run google-github-actions/auth (workload_identity_provider, service_account) before this "
    "step with `permissions: id-token: write`, and grant that service account read access to the bucket."
)
_HINT_MISSING = (
    "The remote lacks some of the data this commit refers to. Run `dvc push` from the machine that "
    "has the data (and commit the .dvc / dvc.lock files it pushed)."
)
_HINT_REVISION = (
    "The revision is not in this clone. Check out the full history:\n"
    "  - uses: actions/checkout@v4\n    with:\n      fetch-depth: 0"
)
_HINT_TIMEOUT = (
    "Give the download more time (seconds, at most 21600), or check that the DVC remote is reachable "
    "from the runner:\n  with:\n    dvc-timeout: 3600"
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
_TAIL_LINES = 200  # lines of a streamed command's output kept for its error message
PROGRESS_INTERVAL = 5.0
"""Seconds between two progress lines of a streamed download (DVC redraws its bars far more often)."""
_KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a download stopped at its timeout
_HOLD = 0.5  # seconds a streamed line waits for the spaces that would clear it (a finished progress bar)


class DvcError(MlgateError):
    """Raised when a ``dvc`` command fails or answers something unusable; carries DVC's reason."""

    title = "DVC failed"


class DvcRemoteUnavailable(DvcError):
    """Raised when a ``dvc`` command fails because the remote could not be reached or answered a
    server error (DVC's storage clients have retried by then)."""

    title = "DVC remote unavailable"
    exit_code = ExitCode.SERVICE


class DvcTimeout(DvcError):
    """Raised when a download runs past the runner's ``timeout`` and is stopped."""

    title = "DVC download timed out"
    exit_code = ExitCode.SERVICE  # the remote did not deliver in time; the hint says how to allow more


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
    """Runs ``dvc`` and ``git`` in ``repo``; ``env`` overlays ``os.environ`` for every subprocess.

    Downloads (:meth:`pull`, :meth:`materialize`) print DVC's output to ``log`` as it comes (default:
    the run's log, see :mod:`mlgate.workflow`) and are stopped after ``timeout`` seconds (None: no limit).
    """

    def __init__(self, repo: Path, env: Mapping[str, str] | None = None, *, timeout: float | None = None,
                 log: IO[str] | None = None) -> None:
        self.repo = Path(repo)
        self.timeout = timeout
        self._env = {**os.environ, **(env or {}), "DVC_NO_ANALYTICS": "1"}
        self._extra = dict(env or {})
        self._log = log

    def with_env(self, extra: Mapping[str, str]) -> DvcRunner:
        """The same runner with ``extra`` added to every subprocess's environment (e.g. credentials)."""
        runner = DvcRunner(self.repo, timeout=self.timeout, log=self._log)
        runner._env = {**self._env, **extra}
        runner._extra = {**self._extra, **extra}
        return runner

    @property
    def extra_env(self) -> dict[str, str]:
        """What this runner adds to the environment it inherited (e.g. the path of a credentials file)."""
        return dict(self._extra)

    def with_timeout(self, seconds: float | None) -> DvcRunner:
        """The same runner whose downloads are stopped after ``seconds``."""
        runner = self.with_env({})
        runner.timeout = seconds
        return runner

    def is_dvc_repo(self) -> bool:
        return (self.repo / ".dvc").is_dir()

    def tracked_targets(self, data: str) -> list[str]:
        """The ``.dvc`` files (or ``dvc.yaml`` output paths) whose outputs cover ``data``."""
        return sorted({out.target for out in self._covering_outs(data, rev=None)})

    def hash_lines(self, data: str) -> list[tuple[str, int]]:
        """Where the working tree records the hash of each output covering ``data``: (the ``.dvc`` file or
        ``dvc.lock``, relative to the repository; the 1-based line of its ``md5:``), for annotations."""
        rel = _norm(data)
        found: set[tuple[str, int]] = set()
        for name, text in self._stage_files(None):
            hashes = [out.md5 for out in _outs_of(name, text) if out.md5 and _covers(out.path, rel)]
            if hashes:
                where = hash_lines_of(text)  # once per file: a dvc.lock may record 10,000 outputs
                found |= {(name, where[md5]) for md5 in hashes if md5 in where}
        return sorted(found)

    def pull(self, data: str) -> None:
        targets = self.tracked_targets(data)
        if not targets:
            raise DvcError(
                f"`{_norm(data)}` is not tracked by DVC in {self.repo}: no .dvc file or dvc.yaml output covers it.",
                hint=_HINT_UNTRACKED,
            )
        self._download("pull", *targets)

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

    def manifest(self, data: str) -> dict[str, str] | None:
        """The md5 of every file under ``data`` (relative to it) from DVC's ``.dir`` listing in the local
        cache, when ``data`` is exactly one DVC-tracked folder in the working tree and its listing is in
        ``.dvc/cache`` (after a pull or ``dvc add``); None otherwise (a caller then hashes the files)."""
        rel = _norm(data)
        outs = self._covering_outs(rel, rev=None)
        if len(outs) != 1 or outs[0].path != rel or not (outs[0].md5 or "").endswith(".dir"):
            return None
        md5 = str(outs[0].md5)
        for listing in (self.repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:],  # DVC 3
                        self.repo / ".dvc" / "cache" / md5[:2] / md5[2:]):  # DVC 2
            with contextlib.suppress(OSError, ValueError):
                entries = json.loads(listing.read_bytes())
                if isinstance(entries, list) and all(
                        isinstance(e, dict) and isinstance(e.get("relpath"), str) and isinstance(e.get("md5"), str)
                        for e in entries):
                    return {e["relpath"]: e["md5"] for e in entries}
        return None

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
        self._download("get", str(self.repo.resolve()), rel, "--rev", rev, "-o", str(out))
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
            listing = self._git("ls-files", "-z", "-co", "--exclude-standard", "--", "*.dvc", "*dvc.yaml",
                                "*dvc.lock")
            names = [name for name in _names(listing) if _is_stage_file(name)]
            return [(name, path.read_text(encoding="utf-8")) for name in names if (path := self.repo / name).is_file()]
        self._verify_revision(rev)
        names = _names(self._git("ls-tree", "-r", "-z", "--name-only", rev))
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
            raise _failed(reason)(
                f"`{shown}` failed in {self.repo} (exit code {done.returncode}): {reason}",
                hint=_hint_for(reason),
            )
        return done.stdout

    def _download(self, *args: str) -> None:
        """``dvc ARGS`` with its output streamed to the log, stopped after ``self.timeout`` seconds."""
        shown = "dvc " + " ".join(args)
        # the Actions log reads stdout; on a terminal stdout keeps the run's outcome, progress goes to stderr
        log = self._log or (sys.stdout if workflow.in_actions() else sys.stderr)

        def echo(line: str) -> None:
            # DVC's lines name the repository's files: a file name cannot start a workflow command
            print(plain_text(line), file=log, flush=True)

        echo(f"$ {shown}")
        # DVC draws its progress bars only on a terminal unless told otherwise
        env = {**self._env, "DVC_IGNORE_ISATTY": "true"}
        try:
            done = run_streaming([sys.executable, "-m", "dvc", *args], cwd=self.repo, env=env,
                                 timeout=self.timeout, echo=echo)
        except OSError as exc:
            raise DvcError(f"Cannot run `{shown}` in {self.repo}: {exc.strerror}.") from exc
        if done.timed_out:
            last = f" Its last output: {done.last_line.strip()!r}." if done.last_line else " It printed nothing."
            raise DvcTimeout(
                f"`{shown}` did not finish within {self.timeout:g} s (`dvc-timeout`) and was stopped.{last}",
                hint=_HINT_TIMEOUT,
            )
        if done.returncode != 0:
            reason = _dvc_reason(done.stderr, done.stdout)
            raise _failed(reason)(
                f"`{shown}` failed in {self.repo} (exit code {done.returncode}): {reason}",
                hint=_hint_for(reason),
            )

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
            # surrogateescape: a file name that is not UTF-8 still comes back as the path it names
            return subprocess.run(["git", *args], cwd=self.repo, env=self._env, capture_output=True,
                                  encoding="utf-8", errors="surrogateescape", check=False)
        except OSError as exc:
            raise DvcError(f"Cannot run `git {' '.join(args)}` in {self.repo}: {exc.strerror}.") from exc


# -- streaming a subprocess -----------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedRun:
    """How a :func:`run_streaming` command ended, with the last lines of its output."""

    returncode: int | None
    """None when it was stopped at the timeout."""
    stdout: str
    stderr: str
    """The last complete lines of each stream (progress redraws left out)."""
    last_line: str
    """The last thing it printed, a progress redraw included; what it was doing when stopped."""

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class _Log:
    """Where the lines of both streams go: every complete line, and of the progress redraws (text
    ended by a carriage return) one every ``interval`` seconds at most.

    A complete line is held back for up to ``_HOLD`` seconds, so that a progress bar the command
    clears at once (tqdm's ``leave=False``: spaces over it) never shows its stale first state.
    """

    def __init__(self, echo: Callable[[str], None], interval: float, clock: Callable[[], float]) -> None:
        self.last = ""
        """The last thing printed, a redraw included."""
        self._echo, self._interval, self._clock = echo, interval, clock
        self._held: tuple[str, float] | None = None
        self._last_echo = clock()

    def line(self, text: str) -> None:
        self.last = text
        self.release()
        self._held = (text, self._clock())

    def redraw(self, text: str) -> None:
        self.last = text
        if self._clock() - self._last_echo >= self._interval:
            self.release()
            self._show(text)

    def cleared(self) -> None:
        self._held = None

    def tick(self) -> None:
        """Called while the command runs: a held line is shown once nothing cleared it in time."""
        if self._held is not None and self._clock() - self._held[1] >= _HOLD:
            self.release()

    def release(self) -> None:
        if self._held is not None:
            text, self._held = self._held[0], None
            self._show(text)

    def _show(self, text: str) -> None:
        self._echo(text)
        self._last_echo = self._clock()


class _LineSplitter:
    """One stream's bytes cut into lines and redraws for the :class:`_Log`; keeps its last lines."""

    def __init__(self, log: _Log) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._log = log
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while True:
            cr, nl = self._buffer.find(b"\r"), self._buffer.find(b"\n")
            if nl >= 0 and (cr < 0 or nl < cr):
                segment, self._buffer = self._buffer[:nl], self._buffer[nl + 1:]
                self._segment(segment, complete=True)
            elif cr < 0 or cr == len(self._buffer) - 1:
                return  # no separator yet, or a \r that may be the start of \r\n
            elif self._buffer[cr + 1:cr + 2] == b"\n":  # a line ended the Windows way, not a redraw
                segment, self._buffer = self._buffer[:cr], self._buffer[cr + 2:]
                self._segment(segment, complete=True)
            else:
                segment, self._buffer = self._buffer[:cr], self._buffer[cr + 1:]
                self._segment(segment, complete=False)

    def close(self) -> None:
        if self._buffer.strip():
            self._segment(self._buffer, complete=True)
        self._buffer = b""

    def _segment(self, segment: bytes, *, complete: bool) -> None:
        text = segment.decode("utf-8", errors="replace").rstrip()
        if not text and segment:  # spaces over a progress bar: it is done
            self._log.cleared()
        if len(text.strip()) <= 1:  # blank, a cleared bar, or DVC's one-character spinner
            return
        if complete:
            self.tail.append(text)
            self._log.line(text)
        else:
            self._log.redraw(text)


def run_streaming(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float | None,
                  echo: Callable[[str], None], progress_interval: float = PROGRESS_INTERVAL) -> StreamedRun:
    """Run ``command`` with its stdout and stderr passed line by line to ``echo`` as they come.

    The command runs in a process group of its own; past ``timeout`` seconds the whole group is
    terminated (killed ``_KILL_GRACE`` seconds later if it lingers) and the result says so.
    Raises :class:`OSError` when the command cannot be started.
    """
    proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    log = _Log(echo, progress_interval, time.monotonic)
    splitters = {stream.fileno(): _LineSplitter(log) for stream in (proc.stdout, proc.stderr)}
    out, err = (splitters[stream.fileno()] for stream in (proc.stdout, proc.stderr))
    try:
        timed_out = _pump(proc, splitters, log, deadline)
    finally:
        if proc.poll() is None:
            _stop_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    for splitter in (out, err):
        splitter.close()
    log.release()
    return StreamedRun(
        returncode=None if timed_out else proc.returncode,
        stdout="\n".join(out.tail), stderr="\n".join(err.tail), last_line=log.last,
    )


def _pump(proc: subprocess.Popen[bytes], splitters: Mapping[int, _LineSplitter], log: _Log,
          deadline: float | None) -> bool:
    """Feed the command's output to ``splitters`` until it exits (True: it ran past ``deadline``).

    Ends when the command has exited and its pipes are drained, even if a process it started
    still holds them open."""
    with selectors.DefaultSelector() as selector:
        for fd in splitters:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            exited = proc.poll() is not None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0 and not exited:
                return True
            ready = selector.select(0 if exited else _HOLD if left is None else min(left, _HOLD))
            if exited and not ready:
                break  # drained; a process it left behind may still hold the pipes
            for key, _ in ready:
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if chunk:
                    splitters[key.fd].feed(chunk)
                else:
                    selector.unregister(key.fd)
            log.tick()
    try:
        proc.wait(None if deadline is None else max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        return True
    return False


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command's process group; SIGKILL to whatever of it is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_KILL_GRACE)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


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


_HASH_LINE = re.compile(r"""\s*(?:-\s+)?(?:md5|etag):\s*(['"]?)(?P<value>.+?)\1\s*(?:#.*)?""")


def hash_line(text: str, md5: str) -> int | None:
    """The 1-based line of a .dvc / dvc.lock ``text`` that records ``md5`` (``md5: <hash>``, ``- md5:``,
    quoted or not; ``etag:`` for cloud outputs); None when no line does."""
    return hash_lines_of(text).get(md5)


def hash_lines_of(text: str) -> dict[str, int]:
    """Every hash a .dvc / dvc.lock ``text`` records (as :func:`hash_line` reads them) -> the 1-based line
    of its first record."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if (match := _HASH_LINE.fullmatch(line)) is not None:
            found.setdefault(match["value"], number)
    return found


def _names(listing: str) -> list[str]:
    """The paths of a ``git ls-files -z`` / ``ls-tree -z`` listing. Without ``-z`` git quotes a name with
    non-ASCII characters, quotes or control characters (``"donn\\303\\251es.dvc"``), and no such file exists."""
    return [name for name in listing.split("\0") if name]


def _is_stage_file(name: str) -> bool:
    base = posixpath.basename(name)
    return (name.endswith(".dvc") and base != ".dvc") or base in ("dvc.yaml", "dvc.lock")


def _outs_of(name: str, text: str) -> list[_Out]:
    """The outputs a .dvc / dvc.yaml / dvc.lock file declares, paths relative to the repository."""
    try:
        # libyaml's loader where PyYAML has it: a dvc.lock of 10,000 outputs parses in a fraction of the time
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
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


# Lower-cased fragments of a storage client's message when the remote was unreachable or failing.
_UNREACHABLE = (
    "connection refused", "connection reset", "connection aborted", "timed out", "timeout",
    "temporary failure in name resolution", "name or service not known", "max retries exceeded",
    "service unavailable", "bad gateway", "internal server error",
)
_SERVER_STATUS = re.compile(r"\b50[0-4]\b")


def _failed(reason: str) -> type[DvcError]:
    """:class:`DvcRemoteUnavailable` when DVC's reason says the remote did not answer; else DvcError."""
    lowered = reason.lower()
    if _hint_for(reason) == _HINT_AUTH:  # a refusal names a credential the user can fix
        return DvcError
    unreachable = any(fragment in lowered for fragment in _UNREACHABLE) or _SERVER_STATUS.search(lowered)
    return DvcRemoteUnavailable if unreachable else DvcError


def _hint_for(reason: str) -> str:
    lowered = reason.lower()
    for fragments, hint in _HINTS:
        if any(fragment in lowered for fragment in fragments):
            return hint
    return "Run the same command locally with `-v` to see DVC's full log."


def repo_relative(path: Path, repo: Path) -> str | None:
    """``path`` as a POSIX path relative to ``repo``, as DVC names a target; None when it lies outside
    (a relative path that climbs out with ``..`` does)."""
    if not path.is_absolute():
        return None if ".." in path.parts else path.as_posix()
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return None
