"""`dvc-pull: stream` against a real DVC repository and remote (a local folder remote; the GCS emulator is in
tests/e2e/test_stream.py): the statistics of the streamed ImageFolder equal those of the same folder read from
disk, for any cut and worker count, and nothing of the data is written anywhere. The same for the shards
`engine: ray` sends its nodes (:func:`open_for_nodes`), which name the remote and never a credential."""

from __future__ import annotations

import itertools
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mlgate.data.layouts import Dataset, DatasetLayoutError, open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.stats import compute_stats
from mlgate.data.stream import (
    NodeSource,
    RemoteData,
    RemoteStore,
    StreamError,
    forget,
    open_for_nodes,
    open_streamed_imagefolder,
)
from tests.fakes.dvc_repo import hermetic_env, run
from tests.fixtures.datasets import make_course, make_imagefolder

DATA = "data/images"


class Repo:
    def __init__(self, root: Path) -> None:
        self.env = {**os.environ, **hermetic_env(root / "env")}
        self.origin, self.remote, self.clone = root / "origin", root / "remote", root / "clone"
        self.origin.mkdir()
        run(self.origin, self.env, "git", "init", "-q", "-b", "main")
        run(self.origin, self.env, "dvc", "init", "-q")
        (self.origin / ".dvc" / "config").write_text(
            f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {self.remote}\n")
        make_imagefolder(self.origin / DATA, per_class=12, classes=3, mixed=True, corrupt=3, duplicates=3, leaks=5,
                         seed=3)
        (self.origin / DATA / "train" / "class_0" / "deeper").mkdir()
        shutil.copy(self.origin / DATA / "train" / "class_1" / "000001.png",
                    self.origin / DATA / "train" / "class_0" / "deeper" / "copy.png")
        run(self.origin, self.env, "dvc", "add", "-q", DATA)
        run(self.origin, self.env, "git", "add", "-A")
        run(self.origin, self.env, "git", "commit", "-q", "-m", "images")

    def push(self) -> None:
        run(self.origin, self.env, "dvc", "push", "-q", "--all-commits")

    def cloned(self) -> Path:
        run(self.clone.parent, self.env, "git", "clone", "-q", str(self.origin), str(self.clone))
        return self.clone

    def source(self) -> RemoteData:
        return RemoteData(str(self.clone), None, DATA)

    def images(self) -> dict[str, bytes]:
        return {p.relative_to(self.origin / DATA).as_posix(): p.read_bytes()
                for p in (self.origin / DATA).rglob("*") if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    built = Repo(tmp_path)
    for name in ("DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR", "DVC_SITE_CACHE_DIR", "DVC_NO_ANALYTICS"):
        monkeypatch.setenv(name, built.env[name])
    forget()
    yield built
    forget()


def _measure(dataset: Dataset, sizes: Callable[[], Iterator[int]] | None, workers: int) -> dict[str, object]:
    finder = NearDuplicateFinder()
    stats, samples, leaked = compute_stats(dataset, samples_per_class=3, batch_size=7, near_duplicates=finder,
                                           workers=workers, shard_sizes=sizes)
    stats.near_duplicates = finder.result(0.08)
    return {"json": stats.model_dump_json(),
            "samples": {label: images.numpy().tobytes() for label, images in samples.items()},
            "leaked": [(p.split, p.item, p.label, p.image.numpy().tobytes()) for p in leaked]}


def _files(*roots: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for root in roots for p in root.rglob("*")
            if p.is_file() and ".git" not in p.parts}


def test_stream__statistics_equal_the_folder_read_from_disk_for_any_cut_and_worker_count(repo: Repo) -> None:
    repo.push()
    ws = repo.cloned()
    expected = _measure(open_dataset(repo.origin / DATA), None, workers=1)
    assert '"unreadable"' in expected["json"] and expected["leaked"]  # corrupt files and leaks are planted
    for workers, seed in ((1, 0), (2, 1), (1, 2)):
        rng = np.random.default_rng(seed)
        sizes = None if seed == 0 else (lambda rng=rng: (int(rng.integers(1, 20)) for _ in itertools.count()))
        assert _measure(open_streamed_imagefolder(repo.source()), sizes, workers) == expected, (workers, seed)
    assert not (ws / DATA).exists()


def test_stream__writes_no_file_of_the_data_to_the_checkout_the_dvc_cache_or_dvcs_folders(repo: Repo) -> None:
    repo.push()
    ws = repo.cloned()
    dvc_dirs = [Path(repo.env[name]) for name in ("DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR",
                                                  "DVC_SITE_CACHE_DIR")]
    before = _files(ws, *dvc_dirs)
    compute_stats(open_streamed_imagefolder(repo.source()), workers=2)
    after = _files(ws, *dvc_dirs)
    new = {path: size for path, size in after.items() if before.get(path) != size}
    assert not (ws / DATA).exists() and not (ws / ".dvc" / "cache").exists()
    # what DVC keeps is its index of the listing (SQLite files under DVC_SITE_CACHE_DIR): names and md5s,
    # not one byte of an image (every image file starts with the PNG signature)
    assert all(".dvc/tmp" in path or "/index/" in path or "/hashes/" in path or "/links/" in path for path in new), new
    assert not [path for path in new if b"\x89PNG" in Path(path).read_bytes()]
    assert any(body.startswith(b"\x89PNG") for body in repo.images().values())


def test_stream__data_never_pushed__error_says_to_run_dvc_push(repo: Repo) -> None:
    repo.cloned()
    with pytest.raises(StreamError) as raised:
        compute_stats(open_streamed_imagefolder(repo.source()))
    assert "dvc push" in str(raised.value), str(raised.value)


def test_stream__object_changed_in_the_remote__error_names_the_file_and_its_md5(repo: Repo) -> None:
    repo.push()
    repo.cloned()
    objects = sorted(p for p in repo.remote.rglob("*") if p.is_file() and not p.name.endswith(".dir"))
    objects[0].chmod(0o644)
    objects[0].write_bytes(b"not what was pushed")
    with pytest.raises(StreamError, match="does not match its md5") as raised:
        compute_stats(open_streamed_imagefolder(repo.source()))
    assert "dvc push --force" in raised.value.hint


def test_stream__base_revision__reads_that_commits_listing(repo: Repo) -> None:
    base = run(repo.origin, repo.env, "git", "rev-parse", "HEAD").strip()
    (repo.origin / DATA / "train" / "class_2" / "000000.png").unlink()
    run(repo.origin, repo.env, "dvc", "add", "-q", DATA)
    run(repo.origin, repo.env, "git", "commit", "-qam", "one image fewer")
    repo.push()
    repo.cloned()
    head = open_streamed_imagefolder(repo.source())
    old = open_streamed_imagefolder(RemoteData(str(repo.clone), base, DATA))
    head_count = compute_stats(head)[0].splits["train"].count
    assert compute_stats(old)[0].splits["train"].count == head_count + 1


# ---- engine: ray's shard descriptions: the nodes open the remote from its URL, with their own identity


def _node_sources(dataset: Dataset) -> list[NodeSource]:
    return [shard.source for split in dataset.splits.values() for shard in split.shards(itertools.repeat(7))]


def test_open_for_nodes__the_nodes_read_the_remote_from_its_url_alone__statistics_equal_the_folder_on_disk(
        repo: Repo) -> None:
    """Worker processes stand in for the nodes: each opens the remote from the description, no repository."""
    repo.push()
    ws = repo.cloned()
    expected = _measure(open_dataset(repo.origin / DATA), None, workers=1)
    dataset = open_for_nodes(repo.source())
    sources = _node_sources(dataset)
    assert {source.stores for source in sources} == {((None, RemoteStore("storage", str(repo.remote))),)}
    assert not [shard for shard in map(pickle.dumps, sources) if str(ws).encode() in shard]
    assert _measure(dataset, lambda: itertools.repeat(7), workers=2) == expected
    assert not (ws / DATA).exists() and not (ws / ".dvc" / "cache").exists()


def test_open_for_nodes__sends_the_url_and_reach_settings__never_a_credential(repo: Repo) -> None:
    """A `gs://` remote with a project and an endpoint in .dvc/config and a key file in config.local: the
    listing comes from this checkout's cache, the nodes get the URL, project and endpoint only."""
    (repo.origin / ".dvc" / "config").write_text(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = gs://bucket/dvc\n"
        "    projectname = my-project\n    endpointurl = https://storage.example.com\n")
    (repo.origin / ".dvc" / "config.local").write_text(
        "['remote \"storage\"']\n    credentialpath = /runner/secret-key.json\n")
    dataset = open_for_nodes(RemoteData(str(repo.origin), None, DATA, (("GOOGLE_APPLICATION_CREDENTIALS",
                                                                         "/runner/other-key.json"),)))
    store = RemoteStore("storage", "gs://bucket/dvc", (("allow_anonymous_login", False),  # DVC's default
                                                        ("endpointurl", "https://storage.example.com"),
                                                        ("projectname", "my-project")))
    sources = _node_sources(dataset)
    assert sources and {source.stores for source in sources} == {((None, store),)}
    sent = b"".join(pickle.dumps(source) for source in sources)
    assert b"secret-key" not in sent and b"other-key" not in sent and str(repo.origin).encode() not in sent


@pytest.mark.parametrize(("config", "says"), [
    ("", "has no default DVC remote"),
    ("[core]\n    remote = storage\n['remote \"storage\"']\n    url = https://reader:hunter2@dvc.example.com/store\n",
     "password in its URL"),
    ("[core]\n    remote = storage\n['remote \"storage\"']\n    url = gs://bucket/dvc\n    version_aware = true\n",
     "cloud-versioned"),
])
def test_open_for_nodes__a_remote_the_nodes_cannot_be_sent__error_names_engine_ray_and_the_fix(
        repo: Repo, config: str, says: str) -> None:
    (repo.origin / ".dvc" / "config").write_text(config)
    with pytest.raises(StreamError) as raised:
        open_for_nodes(RemoteData(str(repo.origin), None, DATA))
    assert says in raised.value.message and "hunter2" not in str(raised.value)
    assert "`engine: ray`" in raised.value.message or "`engine: local`" in raised.value.hint


def test_open_for_nodes__course_layout__refused_naming_engine_ray_and_the_fix(repo: Repo) -> None:
    make_course(repo.origin / "data" / "course", n_train=20, n_test=5, shards=2, seed=1)
    run(repo.origin, repo.env, "dvc", "add", "-q", "data/course")
    with pytest.raises(DatasetLayoutError) as raised:
        open_for_nodes(RemoteData(str(repo.origin), None, "data/course"))
    assert "`engine: ray`" in raised.value.message and "course layout" in raised.value.message
    assert "train_images_0.pt" in raised.value.message and "`engine: local`" in raised.value.hint
