"""Shard states kept between runs in ``cache-dir``, keyed by content: a run re-reads only the shards whose
files were added, changed or removed since the states were written, and gives the report of a cold run.

A shard's key is the SHA-256 of what its state depends on: the state format (:func:`state_format`:
the report's schema version, this codec's version and the source of the modules whose objects a state
holds, so another mlgate version's entries are foreign), the split, what the reduction keeps
(:class:`~mlgate.data.stats.ShardTask`) and, per file of the shard, its path, label and md5 (DVC's md5
from the folder's ``.dir`` listing when DVC tracks the folder, else the md5 of the file's bytes, which is
the same number). ImageFolder shards are cut by content (:func:`mlgate.data.shards.ends_here`), so an
added file changes the key of the one shard it falls in; a tensor part's shards are row ranges of that
part, keyed by the md5 of its files. A user's Dataset class is never cached.

An entry is one file, ``shards/<key[:2]>/<key>.state``: a magic line, a JSON header (format, key,
SHA-256 and length of the payload) and the payload. The payload is the state as plain values (lists,
dicts, numbers, bytes) pickled, read back by an unpickler that refuses every global, then rebuilt into
objects of the state modules' own classes only: an entry whose header, checksum or contents do not
check out is damaged or foreign, is recomputed, and the log says so. Nothing in an entry runs code.
"""

from __future__ import annotations

import array
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import io
import json
import os
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mlgate.data.layouts.imagefolder import ImageFolderShard
from mlgate.data.layouts.tensors import TensorShard
from mlgate.data.report import SCHEMA_VERSION
from mlgate.data.shards import reduce_in_order
from mlgate.data.stats import ShardState
from mlgate.publish import make_shared_dirs, write_shared_file

if TYPE_CHECKING:
    from mlgate.data.layouts import Batch
    from mlgate.data.shards import Shard
    from mlgate.data.stats import ShardState, ShardTask

CODEC_VERSION = 2
PRUNE_AFTER_S = 7 * 86400
"""Entries no run read or wrote for this long are removed (a read touches an entry): two datasets sharing
one ``cache-dir`` keep theirs, and a kept folder does not grow with every version of the data."""
_MAGIC = b"mlgate shard state\n"
STATE_MODULES = ("mlgate.data.stats", "mlgate.data.near_duplicates", "mlgate.data.image_issues",
                 "mlgate.data.item_lists")
"""The modules whose classes a shard state is made of: the only classes an entry may rebuild, and the
source that :func:`state_format` hashes."""


@functools.cache
def state_format() -> str:
    """The version of what an entry holds: changes with the report schema, this codec and any change to
    the state modules' source (an entry written by another mlgate build is foreign, never misread)."""

    digest = hashlib.sha256(f"schema {SCHEMA_VERSION} codec {CODEC_VERSION}".encode())
    for name in STATE_MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()[:32]


class FileDigests:
    """The md5 of a data file: from DVC's listing of the data folder (``manifest``, paths relative to
    ``root``) when it has the file, else of the file's bytes; None for a file that cannot be read."""

    def __init__(self, root: Path, manifest: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.manifest = manifest or {}
        self.hashed = 0
        """Files hashed here because the manifest did not list them."""

    def _relative(self, path: str | Path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return ""

    def known(self, shard: Shard) -> dict[str, str]:
        """The part of the manifest that keying ``shard`` reads (:func:`shard_key`)."""
        if isinstance(shard, ImageFolderShard):
            wanted = [relative for _, _, relative, _ in shard.files]
        elif isinstance(shard, TensorShard) and shard.part is not None and is_dataclass(shard.part.load):
            wanted = [self._relative(value) for item in fields(shard.part.load)
                      if isinstance(value := getattr(shard.part.load, item.name), Path)]
        else:
            wanted = []
        return {relative: self.manifest[relative] for relative in wanted if relative in self.manifest}

    def __call__(self, path: str | Path, relative: str | None = None) -> str | None:
        if relative is None:
            relative = self._relative(path)
        known = self.manifest.get(relative)
        if known is not None:
            return known
        self.hashed += 1
        try:
            with open(path, "rb") as file:
                return hashlib.file_digest(file, "md5").hexdigest()
        except OSError:
            return None


def cacheable(shard: Shard) -> bool:
    """Whether :func:`shard_key` gives ``shard`` a key (not a user's Dataset class, nor a tensor part loaded
    in a way this does not know)."""
    if isinstance(shard, TensorShard):
        return shard.part is None or is_dataclass(shard.part.load)
    return isinstance(shard, ImageFolderShard)


def shard_key(shard: Shard, task: ShardTask, digest: FileDigests) -> str | None:
    """The content key of ``shard`` reduced by ``task``; None when the shard cannot be cached (a user's
    Dataset class, a part loaded in a way this does not know)."""

    parts: list[Any] = [state_format(), shard.split, task.samples_per_class if shard.split == task.sample_split else 0,
                        task.batch_size, task.near_duplicates]
    if isinstance(shard, ImageFolderShard):
        parts += ["imagefolder", shard.skipped,
                  [(relative, label, not_read, None if not_read else digest(path, relative))
                   for path, label, relative, not_read in shard.files]]
    elif isinstance(shard, TensorShard):
        parts += ["tensors", shard.start, shard.stop]
        if shard.part is not None:
            loader = shard.part.load
            if not is_dataclass(loader):
                return None
            described = []
            for item in fields(loader):
                value = getattr(loader, item.name)
                described.append([item.name, digest(value) if isinstance(value, Path) else repr(value)])
            parts += [shard.part.describe, shard.part.skipped, type(loader).__qualname__, described]
    else:
        return None
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode("utf-8", "surrogateescape")).hexdigest()


class DamagedEntry(Exception):
    """A cache entry that cannot be trusted: damaged (checksum, truncated, malformed) or foreign (another
    key or state format); the message says which."""


@dataclass
class ShardCache:
    """Shard states in ``folder / "shards"``; counts what it served, computed and refused, for the log."""

    folder: Path
    digest: FileDigests
    hits: int = 0
    computed: int = 0
    refused: list[str] = field(default_factory=list)
    """One line per entry found but not trusted: which and why."""
    used: set[str] = field(default_factory=set)
    """Keys read or written by this run (:meth:`prune` keeps these)."""

    def reduce(self, shards: list[Shard], task: ShardTask,
               reduce: Callable[[list[Shard]], Iterator[tuple[Shard, ShardState]]],
               ) -> Iterator[tuple[Shard, ShardState]]:
        """:func:`reduce_cached` with this cache: for an engine whose nodes cannot see this folder."""
        return reduce_cached(shards, task, reduce, self)

    def reduce_here(self, shards: list[Shard], task: ShardTask, workers: int) -> Iterator[tuple[Shard, ShardState]]:
        """Each shard with its state, in order, as :meth:`reduce` gives them, but keyed, read and stored by
        the process that reduces the shard (:class:`CachedTask`, in ``workers`` worker processes): hashing
        files that DVC's listing does not have, decoding entries and encoding new ones use every worker
        instead of queueing in this process."""

        keyed: list[Shard] = [KeyedShard(shard, self.digest.known(shard)) if cacheable(shard) else shard
                              for shard in shards]
        cached = CachedTask(task, self.folder, self.digest.root)
        for shard, (state, outcome) in reduce_in_order(keyed, cached, workers):
            self.count(outcome)
            yield (shard.shard if isinstance(shard, KeyedShard) else shard), state

    def count(self, outcome: Outcome) -> None:
        """Add what a :class:`CachedTask` did elsewhere to this cache's counts."""
        self.hits += outcome.hits
        self.computed += outcome.computed
        self.refused += outcome.refused
        self.digest.hashed += outcome.hashed
        if outcome.key is not None:
            self.used.add(outcome.key)

    @property
    def shards(self) -> Path:
        return self.folder / "shards"

    def _path(self, key: str) -> Path:
        return self.shards / key[:2] / f"{key}.state"

    def has(self, key: str) -> bool:
        """Whether an entry is stored under ``key`` (not yet whether it can be trusted: :meth:`get`)."""
        return self._path(key).is_file()

    def get(self, key: str) -> ShardState | None:
        """The state stored under ``key``, validated; None when there is none or it cannot be trusted."""
        try:
            raw = self._path(key).read_bytes()
        except OSError:
            return None
        try:
            state = decode_entry(raw, key)
        except DamagedEntry as exc:
            self.refused.append(f"{key[:12]}: {exc}")
            return None
        self.hits += 1
        self.used.add(key)
        with contextlib.suppress(OSError):
            os.utime(self._path(key))  # in use: :meth:`prune` keeps it
        return state

    def put(self, key: str, state: ShardState) -> None:
        """Store ``state`` under ``key``; a folder that cannot be written only costs a recomputation later."""

        self.computed += 1
        self.used.add(key)
        try:
            data = encode_entry(state, key)
        except TypeError:  # an object the codec does not know (a future field): not cached, still correct
            return
        with contextlib.suppress(OSError):
            make_shared_dirs(self._path(key).parent)
            write_shared_file(self._path(key), data)

    def prune(self, unused_for_s: float = PRUNE_AFTER_S) -> int:
        """Remove the entries that this run did not use and no run used for ``unused_for_s`` seconds (a kept
        ``cache-dir`` holds the shards of the versions in use, not of every version); returns how many."""
        removed = 0
        cutoff = time.time() - unused_for_s
        with contextlib.suppress(OSError):
            for entry in self.shards.glob("*/*.state"):
                with contextlib.suppress(OSError):
                    if entry.stem not in self.used and entry.stat().st_mtime <= cutoff:
                        entry.unlink()
                        removed += 1
        return removed

    def summary(self) -> str:
        total = self.hits + self.computed
        line = (f"Shard cache ({self.folder}): {self.hits:,} of {total:,} shards read from the cache, "
                f"{self.computed:,} computed")
        if self.digest.hashed:
            line += f"; {self.digest.hashed:,} files hashed (not in a DVC listing)"
        return line + "."


@dataclass(frozen=True)
class Outcome:
    """What a :class:`CachedTask` did with one shard, for the counts and the log."""

    key: str | None
    hits: int
    computed: int
    refused: list[str]
    hashed: int


@dataclass
class KeyedShard:
    """A shard with the DVC md5s of its files (the part of DVC's listing it needs), sent to a worker that
    keys it: the split and size are the shard's."""

    shard: Shard
    md5s: dict[str, str]
    split: str = field(init=False)

    def __post_init__(self) -> None:
        self.split = self.shard.split

    @property
    def size(self) -> int:
        return self.shard.size

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        return self.shard.batches(batch_size)


@dataclass(frozen=True)
class CachedTask:
    """``task`` with the cache in ``folder`` around it, run in the worker that reduces the shard: the state
    stored under the shard's key when it checks out, else the reduced state, stored."""

    task: ShardTask
    folder: Path
    root: Path

    def __call__(self, shard: Shard) -> tuple[ShardState, Outcome]:
        if not isinstance(shard, KeyedShard):  # not cacheable (a user's Dataset class)
            return self.task(shard), Outcome(None, 0, 0, [], 0)
        cache = ShardCache(self.folder, FileDigests(self.root, shard.md5s))
        key = shard_key(shard.shard, self.task, cache.digest)
        state = cache.get(key) if key is not None and cache.has(key) else None
        if state is None:
            state = self.task(shard.shard)
            if key is not None:
                cache.put(key, state)
        return state, Outcome(key, cache.hits, cache.computed, cache.refused, cache.digest.hashed)


def reduce_cached(shards: list[Shard], task: ShardTask,
                  reduce: Callable[[list[Shard]], Iterator[tuple[Shard, ShardState]]],
                  cache: ShardCache) -> Iterator[tuple[Shard, ShardState]]:
    """``reduce`` (this machine's workers or a cluster: each shard with its state, in order) with the
    states of cached shards read from ``cache`` instead of computed (an entry that does not check out is
    recomputed), and every computed state stored: the same states, in the same order."""
    keys = [shard_key(shard, task, cache.digest) for shard in shards]
    stored = [key is not None and cache.has(key) for key in keys]
    computed = reduce([s for s, hit in zip(shards, stored, strict=True) if not hit])
    for shard, key, hit in zip(shards, keys, stored, strict=True):
        # an entry is read when its turn comes (one at a time in memory besides the merged state)
        state = cache.get(key) if hit and key is not None else None
        if state is None:
            if hit:  # refused when read: recomputed here, in order
                state = task(shard)
            else:
                done, state = next(computed)
                assert done is shard
            if key is not None:
                cache.put(key, state)  # before the caller merges into it
        yield shard, state


# ---------------------------------------------------------------------------------------------------
# The codec: a state as plain values, and back


def encode_entry(state: ShardState, key: str) -> bytes:
    payload = pickle.dumps(_plain(state), protocol=5)
    header = {"format": state_format(), "key": key, "sha256": hashlib.sha256(payload).hexdigest(),
              "bytes": len(payload)}
    return _MAGIC + json.dumps(header).encode() + b"\n" + payload


def decode_entry(raw: bytes, key: str) -> ShardState:
    """The state in ``raw``, stored under ``key``; raises :class:`DamagedEntry` saying why it is not trusted."""

    if not raw.startswith(_MAGIC):
        raise DamagedEntry("damaged: not a shard state file")
    head, newline, payload = raw[len(_MAGIC):].partition(b"\n")
    try:
        header = json.loads(head) if newline else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise DamagedEntry("damaged: unreadable header")
    if header.get("format") != state_format():
        raise DamagedEntry(f"foreign: written by another mlgate version (state format {header.get('format')!r})")
    if header.get("key") != key:
        raise DamagedEntry("foreign: stored under another key")
    if header.get("bytes") != len(payload) or header.get("sha256") != hashlib.sha256(payload).hexdigest():
        raise DamagedEntry("damaged: checksum mismatch")
    try:
        state = _rebuilt(_NoGlobals(io.BytesIO(payload)).load())
    except DamagedEntry:
        raise
    except Exception as exc:  # a payload that passed the checksum but not the codec: never trusted
        raise DamagedEntry(f"damaged: {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, ShardState):
        raise DamagedEntry(f"damaged: holds a {type(state).__name__}, not a shard state")
    return state


class _NoGlobals(pickle.Unpickler):
    """Plain values only: no class, no function, so loading cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise DamagedEntry(f"damaged: refers to {module}.{name}")


_PLAIN = (type(None), bool, int, float, str, bytes)
_PLAIN_TYPES = frozenset(_PLAIN)


def _plain(value: Any) -> Any:
    """``value`` as nested plain values; every non-plain value is a tagged tuple."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is list:
        if _all_plain(value):  # item keys, names, labels: one check in C, no walk
            return ("P", value)
        return ("L", [_plain(v) for v in value])
    if kind is tuple:
        return ("T", [_plain(v) for v in value])
    if kind is dict:
        return ("D", [(_plain(k), _plain(v)) for k, v in value.items()])
    if kind is Counter:
        return ("C", [(_plain(k), _plain(v)) for k, v in value.items()])
    if kind is set:
        return ("S", [_plain(v) for v in value])
    if kind is range:
        return ("R", value.start, value.stop, value.step)
    if kind is array.array:
        return ("A", value.typecode, value.tobytes())
    if isinstance(value, torch.Tensor):
        flat = value.detach().contiguous().reshape(-1)
        return ("X", str(value.dtype).removeprefix("torch."), list(value.shape),
                flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays are not cached")
        return ("N", value.dtype.str, list(value.shape), np.ascontiguousarray(value).tobytes())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if kind.__module__ in STATE_MODULES and "<" not in kind.__qualname__:
        return ("O", f"{kind.__module__}:{kind.__qualname__}", [(name, _plain(v)) for name, v in _attributes(value)])
    raise TypeError(f"cannot cache a {kind.__module__}.{kind.__qualname__}")


def _all_plain(values: list[Any]) -> bool:
    return all(map(_PLAIN_TYPES.__contains__, map(type, values)))


def _attributes(value: Any) -> list[tuple[str, Any]]:
    found = list(vars(value).items()) if hasattr(value, "__dict__") else []
    for cls in type(value).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(value, name):
                found.append((name, getattr(value, name)))
    return found


def _rebuilt(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:
        return value
    if type(value) is not tuple or not value or type(value[0]) is not str:
        raise DamagedEntry(f"damaged: unexpected {type(value).__name__}")
    tag = value[0]
    if tag == "P":
        if type(value[1]) is not list or not _all_plain(value[1]):
            raise DamagedEntry("damaged: a list of plain values holds something else")
        return value[1]
    if tag == "L":
        return [_rebuilt(v) for v in value[1]]
    if tag == "T":
        return tuple(_rebuilt(v) for v in value[1])
    if tag == "D":
        return {_rebuilt(k): _rebuilt(v) for k, v in value[1]}
    if tag == "C":
        return Counter({_rebuilt(k): _rebuilt(v) for k, v in value[1]})
    if tag == "S":
        return {_rebuilt(v) for v in value[1]}
    if tag == "R":
        return range(int(value[1]), int(value[2]), int(value[3]))
    if tag == "A":
        rebuilt = array.array(value[1])
        rebuilt.frombytes(value[2])
        return rebuilt
    if tag == "X":
        dtype = getattr(torch, value[1], None)
        if not isinstance(dtype, torch.dtype):
            raise DamagedEntry(f"damaged: unknown tensor type {value[1]!r}")
        shape = [int(d) for d in value[2]]
        if not value[3]:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(value[3]), dtype=torch.uint8).view(dtype).reshape(shape)
    if tag == "N":
        dtype = np.dtype(value[1])
        if dtype.hasobject:
            raise DamagedEntry("damaged: object array")
        return np.frombuffer(bytearray(value[3]), dtype=dtype).reshape([int(d) for d in value[2]])
    if tag == "O":
        return _object(value[1], value[2])
    raise DamagedEntry(f"damaged: unknown tag {tag!r}")


def _object(name: str, attributes: list[tuple[str, Any]]) -> Any:
    module, _, qualname = name.partition(":")
    if module not in STATE_MODULES:
        raise DamagedEntry(f"damaged: class {name} is not part of a shard state")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if not isinstance(cls, type) or issubclass(cls, BaseException):
        raise DamagedEntry(f"damaged: {name} is not a state class")
    rebuilt = object.__new__(cls)
    for attribute, value in attributes:
        if type(attribute) is not str or attribute.startswith("__"):
            raise DamagedEntry(f"damaged: attribute {attribute!r}")
        object.__setattr__(rebuilt, attribute, _rebuilt(value))
    return rebuilt


def cache_bytes(folder: Path) -> int:
    """Bytes the shard entries in ``folder`` take."""
    total = 0
    for root, _, files in os.walk(folder / "shards"):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total
