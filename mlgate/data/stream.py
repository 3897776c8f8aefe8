"""``dvc-pull: stream``: an ImageFolder read straight from the DVC remote, never written to disk.

The file listing comes from DVC's ``.dir`` manifest (through :class:`dvc.api.DVCFileSystem` at the
revision read, the checkout's working tree or a commit): every file's path and md5. A shard is a
range of that listing (:class:`StreamShard`); reading it fetches its files' bytes from the remote's
content-addressed store (dvc-data's :class:`~dvc_data.hashfile.db.HashFileDB` over DVC's own fsspec
filesystem, ``gcsfs`` for ``gs://``), many requests at once, one bounded chunk ahead of the decoding,
checks each against its md5 and decodes it in memory with the ImageFolder reader. Nothing is written:
not to the DVC cache, not to the work tree, not to a temporary folder.

What crosses processes (to :mod:`mlgate.data.shards`' workers, or a cluster's) is plain data: the
repository, revision and data path (:class:`RemoteData`), the file list, and the names and values
of environment variables DVC's clients read (a credentials *file path* such as
``GOOGLE_APPLICATION_CREDENTIALS``, never a key); each process opens its own filesystem once
(:func:`_opened`).

A Ray cluster's nodes (``engine: ray``, :func:`open_for_nodes`) get less: no repository, revision or
environment, only each DVC remote's URL and the part of its configuration that is not a credential
(:class:`RemoteStore`), with the files' md5s. A node opens the remote's object store from that with
DVC's own filesystem classes and whatever identity the node has (Workload Identity, the metadata
server, ``GOOGLE_APPLICATION_CREDENTIALS`` set on the node).

The ImageFolder rules (split and class folders, hidden folders, file order, labels) are those of
:mod:`mlgate.data.layouts.imagefolder`, applied to the listing instead of a folder: the same files,
in the same order, give the same report as ``dvc-pull: true``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import posixpath
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlgate.data.dvc import DvcError, DvcRemoteUnavailable
from mlgate.data.layouts.base import SUPPORTED, Batch, Dataset, DatasetLayoutError, Split, ordered
from mlgate.data.layouts.imagefolder import IMAGE_SUFFIXES, read_items

if TYPE_CHECKING:
    from dvc_data.hashfile.db import HashFileDB

INPUT = "dvc-pull"

FETCH_CHUNK = 256
"""Files fetched together (concurrently, by the remote's async client) and held as bytes while the
previous chunk decodes: with one chunk ahead, a shard holds at most two chunks of compressed files."""

_HINT_CREDENTIALS = (
    "Check the DVC remote and its credentials: `gcp-credentials` (or the file an earlier "
    "google-github-actions/auth step exported) must be allowed to read the bucket; or set "
    "`dvc-pull: true` to pull with the `dvc` command instead."
)


class StreamError(DvcError):
    """Raised when ``dvc-pull: stream`` cannot list or read the data from the DVC remote (unreachable,
    refused credentials, an object that was never pushed, a layout it does not stream)."""

    title = "Cannot stream the data from the DVC remote"


class NodeCannotRead(StreamError):
    """Raised on a Ray node (``engine: ray``) that cannot read the DVC remote with its own identity (refused,
    no access, an object missing): the fix is the cluster's, not this runner's."""

    title = "A Ray node cannot read the DVC remote"


class StreamRemoteUnavailable(StreamError, DvcRemoteUnavailable):
    """Raised when the remote could not be reached or answered a server error while streaming."""


@dataclass(frozen=True)
class RemoteData:
    """Where a DVC-tracked folder is read from: plain, picklable values, no client and no secret.

    ``env`` holds the environment entries DVC's storage clients read when they log in (e.g.
    ``GOOGLE_APPLICATION_CREDENTIALS``: the path of a credentials file this machine holds); they are
    set only while the filesystem is opened."""

    repo: str
    """A path (or Git URL) of the repository."""
    rev: str | None
    """A Git revision; None reads the checkout's working tree (its ``.dvc`` files)."""
    path: str
    """The data folder relative to the repository root, POSIX."""
    env: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"`{self.path}`" + (f" at {self.rev[:12]}" if self.rev else "")


NODE_CONFIG = frozenset({"endpointurl", "projectname", "region", "account_name", "allow_anonymous_login", "jobs"})
"""The settings of a DVC remote a cluster node is sent besides its URL: where and how to reach the store,
none of them a credential (keys, tokens, passwords, credential files and profiles stay on the runner)."""


@dataclass(frozen=True)
class RemoteStore:
    """A DVC remote as a cluster node opens it: its URL and :data:`NODE_CONFIG` settings, never a credential."""

    name: str
    url: str
    config: tuple[tuple[str, Any], ...] = ()

    def open(self) -> HashFileDB:
        """The remote's content-addressed store (``<url>/files/md5``), logged in as this process can."""
        # local: dvc is slow to import; only reading a DVC remote needs it
        from dvc.fs import get_cloud_fs
        from dvc_data.hashfile.db import get_odb

        cls, config, fs_path = get_cloud_fs(None, url=self.url, **dict(self.config))
        fs = cls(**config)
        odb = get_odb(fs, fs.join(fs_path, "files", "md5"), hash_name="md5")
        odb.fs.fs  # noqa: B018 - the storage client logs in when made: now, inside the caller's error wrapping
        return odb


@dataclass(frozen=True)
class NodeSource:
    """Where a cluster node reads a DVC-tracked folder: the remotes that hold its files, by the name the
    ``.dvc`` files give them (None: the default). No repository path, revision, environment or key."""

    path: str
    """The data folder relative to the repository root, for messages."""
    rev: str | None
    """The revision listed, for messages."""
    stores: tuple[tuple[str | None, RemoteStore], ...]

    @property
    def label(self) -> str:
        return f"`{self.path}`" + (f" at {self.rev[:12]}" if self.rev else "")

    def store(self, name: str | None) -> RemoteStore:
        return dict(self.stores)[name]


@dataclass(frozen=True)
class RemoteFile:
    relative: str
    """Path relative to the data folder, ``/``-separated (the item's id)."""
    label: int
    md5: str
    remote: str | None = None
    """The DVC remote of the output that holds it (``remote:`` in the .dvc file); None: the default."""


def open_streamed_imagefolder(source: RemoteData) -> Dataset:
    """The ImageFolder of ``source`` with splits that read from the DVC remote; raises
    :class:`StreamError` when the listing cannot be read and :class:`DatasetLayoutError` when it is
    not an ImageFolder."""
    listing = _runner(source).listing()
    return imagefolder_from_listing(source, listing)


def open_for_nodes(source: RemoteData, layout: str = "auto") -> Dataset:
    """The ImageFolder of ``source`` with shards a Ray cluster's nodes read from the DVC remote themselves
    (``engine: ray``): listed here, with this runner's access, from the ``.dir`` manifest; each shard names
    only the remotes (:class:`NodeSource`) and its files' md5s. The course and npz layouts are refused
    (their shards are row ranges of files that must be opened to be cut)."""
    remote = _runner(source)
    listing = remote.listing()
    tensors = sorted(name for name in listing if "/" not in name and (name.endswith(".npz") or (
        name.endswith(".pt") and "_images" in name)))
    if layout in ("course", "npz") or tensors:
        kind = layout if layout in ("course", "npz") else ("npz" if tensors[0].endswith(".npz") else "course")
        raise DatasetLayoutError(
            f"`engine: ray` reads DVC-tracked data on the Ray nodes straight from the DVC remote, for the "
            f"ImageFolder layout only; {source.label} is in the {kind} layout"
            + (f" ({', '.join(tensors[:3])})." if tensors else "."),
            hint="Set `engine: local` (this runner pulls and reads it, `workers` processes), or store the data as "
            "an ImageFolder (<split>/<class>/<image>.png).")
    node = NodeSource(source.path, source.rev, remote.node_stores({name for _, name in listing.values()}))
    return imagefolder_from_listing(node, listing)


def _runner(source: RemoteData) -> _Remote:
    opened = _opened(source)
    assert isinstance(opened, _Remote)
    return opened


def imagefolder_from_listing(source: RemoteData | NodeSource, listing: Mapping[str, tuple[str, str | None]]) -> Dataset:
    """The ImageFolder splits of ``listing`` (path relative to the data folder -> (md5, remote)), by
    the rules of :func:`mlgate.data.layouts.imagefolder.open_imagefolder` (pure: no I/O)."""
    tree = _Tree.of(listing)
    splits_at = _split_folders(tree)
    if not splits_at:
        raise DatasetLayoutError(
            f"No ImageFolder images in {source.label} (listed from the DVC remote): {_found(tree)}.",
            hint="`dvc-pull: stream` reads ImageFolder data (<split>/<class>/<image>.png or <class>/<image>.png); "
            "for the course or npz layout set `dvc-pull: true`.\n" + SUPPORTED,
        )
    classes_per_split = {name: [c for c in folder.visible_dirs() if folder.dirs[c].has_images()]
                         for name, (folder, _) in splits_at.items()}
    class_names = sorted({c for names in classes_per_split.values() for c in names})
    index = {name: i for i, name in enumerate(class_names)}
    splits: dict[str, Split] = {}
    for name, (folder, prefix) in splits_at.items():
        files = [RemoteFile(relative, index[c], *listing[relative])
                 for c in classes_per_split[name] for relative in folder.dirs[c].images(f"{prefix}{c}")]
        splits[name] = StreamSplit(name, source, files)
    return Dataset(Path(source.path), "imagefolder", ordered(splits), class_names, [])


@dataclass
class _Tree:
    """A folder of the listing: its files and sub-folders by name."""

    files: list[str] = field(default_factory=list)
    dirs: dict[str, _Tree] = field(default_factory=dict)

    @classmethod
    def of(cls, paths: Mapping[str, object]) -> _Tree:
        root = cls()
        for path in paths:
            *folders, name = path.split("/")
            node = root
            for folder in folders:
                node = node.dirs.setdefault(folder, cls())
            node.files.append(name)
        return root

    def visible_dirs(self) -> list[str]:
        return sorted(name for name in self.dirs if not name.startswith((".", "__")))

    def has_images_directly(self) -> bool:
        return any(_is_image(name) for name in self.files)

    def has_images(self) -> bool:
        return self.has_images_directly() or any(d.has_images() for d in self.dirs.values())

    def images(self, prefix: str) -> Iterator[str]:
        """Image paths below this folder in the local reader's order: a folder's files by name, then its
        sub-folders by name, depth first."""
        entries = sorted([(name, False) for name in self.files] + [(name, True) for name in self.dirs])
        for name, is_dir in entries:
            if not is_dir and _is_image(name):
                yield f"{prefix}/{name}"
        for name, is_dir in entries:
            if is_dir:
                yield from self.dirs[name].images(f"{prefix}/{name}")


def _is_image(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _split_folders(tree: _Tree) -> dict[str, tuple[_Tree, str]]:
    """Split name -> (folder, its path prefix ending in ``/`` or empty), as :func:`split_folders`."""
    subdirs = tree.visible_dirs()
    if any(tree.dirs[d].has_images_directly() for d in subdirs):
        return {"train": (tree, "")}
    return {d: (tree.dirs[d], f"{d}/") for d in subdirs
            if any(tree.dirs[d].dirs[c].has_images() for c in tree.dirs[d].visible_dirs())}


def _found(tree: _Tree, limit: int = 8) -> str:
    entries = sorted([*tree.files, *(f"{d}/" for d in tree.dirs)])
    if not entries:
        return "the folder is empty"
    more = f" (and {len(entries) - limit} more)" if len(entries) > limit else ""
    return "found " + ", ".join(entries[:limit]) + more


@dataclass
class StreamSplit:
    name: str
    source: RemoteData | NodeSource
    files: list[RemoteFile]

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        return StreamShard(self.name, self.source, self.files).batches(batch_size)

    def shards(self, sizes: Iterator[int]) -> list[StreamShard]:
        """Consecutive ranges of ``sizes`` files each (one shard at least, as the local reader cuts)."""
        shards = [StreamShard(self.name, self.source, [])]
        start = 0
        while start < len(self.files):
            stop = start + max(1, next(sizes))
            if shards[-1].files:
                shards.append(StreamShard(self.name, self.source, []))
            shards[-1].files = self.files[start:stop]
            start = stop
        return shards


@dataclass
class StreamShard:
    """A range of a split's files, read from the remote: plain data, so any process can read it."""

    split: str
    source: RemoteData | NodeSource
    files: list[RemoteFile]

    @property
    def size(self) -> int:
        return len(self.files)

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        return read_items(self._in_memory(), [], batch_size)

    def _in_memory(self) -> Iterator[tuple[io.BytesIO, int, str, None]]:
        remote = _opened(self.source)
        chunks = [self.files[i:i + FETCH_CHUNK] for i in range(0, len(self.files), FETCH_CHUNK)]
        for chunk, contents in zip(chunks, _ahead(remote.fetch, chunks), strict=True):
            for file in chunk:
                yield io.BytesIO(contents[file.md5]), file.label, file.relative, None


def _ahead(fetch: Any, chunks: Sequence[list[RemoteFile]]) -> Iterator[dict[str, bytes]]:
    """``fetch(chunk)`` of every chunk in order, the next one fetched on a thread while the caller
    works on the current one."""
    if not chunks:
        return
    result: dict[int, Any] = {}

    def run(i: int) -> None:
        try:
            result[i] = fetch(chunks[i])
        except BaseException as exc:  # re-raised in the reading thread
            result[i] = exc

    thread = threading.Thread(target=run, args=(0,), daemon=True)
    thread.start()
    for i in range(len(chunks)):
        thread.join()
        if i + 1 < len(chunks):
            thread = threading.Thread(target=run, args=(i + 1,), daemon=True)
            thread.start()
        got = result.pop(i)
        if isinstance(got, BaseException):
            thread.join()
            raise got
        yield got


class _Remote:
    """One process's open view of a :class:`RemoteData`: the listing and the remote's object store."""

    def __init__(self, source: RemoteData) -> None:
        # local: dvc is slow to import; only reading a DVC remote needs it
        from dvc.api import DVCFileSystem

        self.source = source
        self._lock = threading.Lock()
        self._odbs: dict[tuple[str | None, str], HashFileDB] = {}
        with _environment(source.env), _wrapped(source, "opening the repository"):
            self.fs = DVCFileSystem(source.repo, rev=source.rev)

    def listing(self) -> dict[str, tuple[str, str | None]]:
        """Path relative to the data folder -> (md5, remote name or None) of every file DVC tracks below it."""
        data = self.source.path.strip("/")
        with _environment(self.source.env), _wrapped(self.source, "listing the files (the .dir manifest)"):
            if not self.fs.exists(data):
                raise StreamError(f"{self.source.label} does not exist in {self.source.repo}.",
                                  hint="Set `data` to a folder that DVC tracks (a .dvc file or dvc.yaml output "
                                  "covers it).")
            found = self.fs.find(data, detail=True)
        listing: dict[str, tuple[str, str | None]] = {}
        untracked = []
        for name, info in found.items():
            relative = PurePosixPath(name).relative_to(data).as_posix()
            dvc_info = info.get("dvc_info") or {}
            entry = dvc_info.get("entry")
            if not dvc_info.get("md5") or entry is None:
                untracked.append(relative)
                continue
            if entry.hash_info is not None and entry.hash_info.name not in ("md5", None):
                raise StreamError(f"{self.source.label}: {relative} is hashed with {entry.hash_info.name}, "
                                  "which `dvc-pull: stream` does not read.", hint="Set `dvc-pull: true`.")
            listing[relative] = (dvc_info["md5"], entry.meta.remote if entry.meta else None)
        if not listing:
            raise StreamError(f"{self.source.label} is not tracked by DVC: no .dvc file or dvc.yaml output covers it, "
                              "so there is nothing to stream from the remote.",
                              hint="Track the folder with `dvc add` and `dvc push`, or set `dvc-pull: false`.")
        if untracked:
            raise StreamError(f"{self.source.label} mixes files DVC does not track ({', '.join(untracked[:3])}) "
                              "with DVC-tracked ones; `dvc-pull: stream` reads only from the DVC remote.",
                              hint="Track the whole folder with DVC, or set `dvc-pull: true`.")
        return listing

    def _odb(self, remote: str | None) -> HashFileDB:
        with self._lock:
            key = (remote, "md5")
            if key not in self._odbs:
                with _environment(self.source.env), _wrapped(self.source, "opening the DVC remote"):
                    odb = self.fs.repo.cloud.get_remote_odb(remote, "stream")
                    odb.fs.fs  # noqa: B018 - the storage client logs in when made: now, while `env` is set
                    self._odbs[key] = odb
            return self._odbs[key]

    def fetch(self, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        """md5 -> bytes of ``files``, fetched concurrently and checked against their md5."""
        return _fetch(self.source, self._odb, files)

    def node_stores(self, names: set[str | None]) -> tuple[tuple[str | None, RemoteStore], ...]:
        """The remotes ``names`` (None: the default) as a cluster node opens them (:class:`RemoteStore`)."""
        # local: dvc is slow to import; only reading a DVC remote needs it
        from dvc.fs import get_fs_config

        config = self.fs.repo.config
        stores = []
        for name in sorted(names, key=lambda n: n or ""):
            resolved = name or config["core"].get("remote")
            if not resolved or resolved == _UPSTREAM:
                raise StreamError(
                    f"`engine: ray` reads {self.source.label} from its DVC remote on the Ray nodes, but "
                    f"{self.source.repo} has no default DVC remote.",
                    hint="Add the remote and push the data, e.g.\n  dvc remote add -d storage gs://my-bucket/dvc\n"
                    "  dvc push\nor set `engine: local` to read the data on this runner.")
            with _wrapped(self.source, f"reading the DVC remote {resolved!r} from .dvc/config"):
                remote = get_fs_config(config, name=resolved)
            url = str(remote["url"])
            if urlsplit(url).password is not None:
                raise StreamError(
                    f"The DVC remote {resolved!r} has a password in its URL; `engine: ray` sends the Ray nodes the "
                    "remote's URL and never a credential.",
                    hint="Take the password out of the URL (`dvc remote modify --local` keeps credentials out of "
                    "the repository) and give the nodes their own access to the remote.")
            if remote.get("version_aware") or remote.get("worktree"):
                raise StreamError(
                    f"The DVC remote {resolved!r} is cloud-versioned (version_aware/worktree), which `engine: ray` "
                    "does not read.", hint="Use a plain DVC remote, or set `engine: local`.")
            kept = tuple(sorted((key, value) for key, value in remote.items() if key in NODE_CONFIG))
            stores.append((name, RemoteStore(resolved, url, kept)))
        return tuple(stores)


_UPSTREAM = "auto-generated-upstream"
"""The remote DVC's API makes up for a repository without a default remote: that repository's own cache,
a folder on this runner, which no node has."""


class _NodeRemote:
    """One cluster node's open view of a :class:`NodeSource`: each remote's object store, opened once."""

    def __init__(self, source: NodeSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._odbs: dict[str | None, HashFileDB] = {}

    def _odb(self, remote: str | None) -> HashFileDB:
        with self._lock:
            if remote not in self._odbs:
                store = self.source.store(remote)
                with _wrapped(self.source, f"opening the DVC remote {store.url}"):
                    self._odbs[remote] = store.open()
            return self._odbs[remote]

    def fetch(self, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        return _fetch(self.source, self._odb, files)


def _fetch(source: RemoteData | NodeSource, odb_of: Callable[[str | None], HashFileDB],
           files: Sequence[RemoteFile]) -> dict[str, bytes]:
    """md5 -> bytes of ``files``, fetched concurrently from ``odb_of(their remote)`` and checked against their md5."""
    by_remote: dict[str | None, list[RemoteFile]] = {}
    for file in files:
        by_remote.setdefault(file.remote, []).append(file)
    contents: dict[str, bytes] = {}
    for remote, group in by_remote.items():
        odb = odb_of(remote)
        paths = {odb.oid_to_path(file.md5): file for file in group}
        with _wrapped(source, f"reading {group[0].relative} and {len(group) - 1} more files"):
            # as many requests in flight as `dvc pull` makes to this remote (its `jobs`, 4 x cores by default)
            got = odb.fs.cat(list(paths), on_error="return", batch_size=odb.fs.jobs)
        for path, file in paths.items():
            body = got.get(path) if isinstance(got, dict) else None
            if isinstance(body, FileNotFoundError) or body is None:
                raise StreamError(
                    f"{file.relative} of {source.label} (md5 {file.md5}) is not in the DVC remote.",
                    hint="Run `dvc push` for the commit that changed the data, then rerun.")
            if isinstance(body, BaseException):
                raise _as_stream_error(source, f"reading {file.relative}", body) from body
            if hashlib.md5(body, usedforsecurity=False).hexdigest() != file.md5:
                raise StreamError(
                    f"{file.relative} of {source.label}: the DVC remote's object does not match its md5 "
                    f"{file.md5} (damaged or overwritten in the remote).",
                    hint="Push the data again (`dvc push --force` from a checkout that has it).")
            contents[file.md5] = body
    return contents


@functools.lru_cache(maxsize=4)
def _opened(source: RemoteData | NodeSource) -> _Remote | _NodeRemote:
    """This process's filesystem for ``source``, opened once (the main process, each worker, each Ray worker)."""
    return _NodeRemote(source) if isinstance(source, NodeSource) else _Remote(source)


def forget() -> None:
    """Close every filesystem this process opened (end of a run; tests)."""
    _opened.cache_clear()


@contextlib.contextmanager
def _environment(env: tuple[tuple[str, str], ...]) -> Iterator[None]:
    old = {name: os.environ.get(name) for name, _ in env}
    os.environ.update(dict(env))
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _wrapped(source: RemoteData | NodeSource, doing: str) -> Iterator[None]:
    try:
        yield
    except (StreamError, DatasetLayoutError):
        raise
    except Exception as exc:
        raise _as_stream_error(source, doing, exc) from exc


def _as_stream_error(source: RemoteData | NodeSource, doing: str, exc: BaseException) -> StreamError:
    reason = _reason(exc)
    if isinstance(source, NodeSource):
        return _node_error(source, doing, exc, reason)
    message = f"`{INPUT}: stream` failed {doing} of {source.label}: {reason}"
    if _missing(exc):
        return StreamError(message + " (not in the DVC remote)",
                           hint="Run `dvc push` for the commit that changed the data (its .dir listing and files "
                           "must be in the remote), then rerun.")
    if _unavailable(exc):
        return StreamRemoteUnavailable(message, hint="The DVC remote could not be reached or failed; rerun, or "
                                       "check the remote's URL in .dvc/config. " + _HINT_CREDENTIALS)
    return StreamError(message, hint=_HINT_CREDENTIALS)


_HINT_NODE_IDENTITY = (
    "mlgate sends the Ray cluster no key, token or credentials file: every node reads the DVC remote as "
    "itself. Give the nodes' identity read access to the remote: on GKE, Workload Identity (the RayCluster "
    "pods' Kubernetes service account bound to a Google service account with roles/storage.objectViewer on "
    "the bucket, README \"On a Ray cluster\"); elsewhere the credentials set on every node "
    "(GOOGLE_APPLICATION_CREDENTIALS, the metadata server, AWS_* variables). Or set `engine: local`."
)


def _node_error(source: NodeSource, doing: str, exc: BaseException, reason: str) -> StreamError:
    urls = ", ".join(sorted({store.url for _, store in source.stores}))
    where = f"the DVC remote {urls} ({doing}) for {source.label}"
    if _missing(exc):
        return NodeCannotRead(f"A Ray node did not find {where}: {reason}",
                           hint="Run `dvc push` for the commit that changed the data, then rerun.")
    if _unavailable(exc):
        return StreamRemoteUnavailable(f"A Ray node could not reach {where}: {reason}",
                                       hint="Rerun when the remote answers; check that the nodes can reach it. "
                                       + _HINT_NODE_IDENTITY)
    return NodeCannotRead(f"A Ray node could not read {where} with the cluster's own identity, which was refused or "
                       f"lacks access: {reason}", hint=_HINT_NODE_IDENTITY)


def _reason(exc: BaseException) -> str:
    """``exc`` and what caused it (DVC wraps the storage client's error), innermost last."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = " ".join(str(seen).split())
        parts.append(f"{type(seen).__name__}: {text[:300]}" if text else type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return "; caused by ".join(parts)


def _missing(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FileNotFoundError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _unavailable(exc: BaseException) -> bool:
    code = getattr(exc, "code", None) or getattr(exc, "status", None)
    if isinstance(code, int) and code >= 500:
        return True
    return isinstance(exc, (ConnectionError, TimeoutError)) or "Cannot connect" in str(exc)
