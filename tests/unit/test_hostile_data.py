"""Hostile data and model files: symlinks out of the data folder, decompression bombs, labels that are not
class indices, empty splits, broken model files. Each case runs the real entry point (``mlgate.cli.main``)
or the loader it calls, and asserts the exit code, the message, and that nothing outside was read."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mlgate.cli import main
from mlgate.data.layouts import DatasetClassError, open_dataset
from mlgate.data.layouts.base import MAX_LABEL, broken_link
from mlgate.data.layouts.imagefolder import MAX_IMAGE_PIXELS
from mlgate.data.stats import compute_stats
from mlgate.errors import ExitCode
from mlgate.model.loading import ModelLoadError, load_model
from tests.fixtures.datasets import huge_png, make_course, make_dataset_class, make_imagefolder

NOT_FOLLOWED = "a symlink to outside the data folder, not followed"


@dataclass
class Outcome:
    code: int
    out: str  # stdout and stderr together
    report: dict[str, Any] | None
    markdown: str


@pytest.fixture
def data_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run data-stats on ``workspace/<name>`` as the CLI does; the workspace is ``tmp_path/ws``."""

    def run(name: str = "data") -> Outcome:
        workspace = tmp_path / "ws"
        out = workspace / "out"
        code = main(["data-stats", "--data", str(workspace / name), "--out", str(out), "--dvc-pull", "false",
                     "--cache-dir", str(tmp_path / "cache")], env={"GITHUB_WORKSPACE": str(workspace)})
        captured = capsys.readouterr()
        report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
        markdown = (out / "report.md").read_text() if (out / "report.md").exists() else ""
        return Outcome(code, captured.out + captured.err, report, markdown)

    return run


def _stats(root: Path) -> Any:
    """The statistics data-stats computes for ``root`` (without rendering the report: faster)."""
    return compute_stats(open_dataset(root))[0]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the workspace holding a 'secret' class of images that must never be read."""
    truth = make_imagefolder(tmp_path / "outside", per_class=5, classes=["secret"], splits=("train",), seed=9)
    assert truth.counts["train"] == 5
    return tmp_path / "outside"


# ---------------------------------------------------------------------------------------------------
# Symlinks out of the data folder


@pytest.mark.reliability("data", "ImageFolder class folder that is a symlink to a folder outside the data folder",
                         "exit 0; not read (counts and classes exclude it); listed as unreadable with the reason")
def test_imagefolder__class_folder_symlink_out_of_root_is_listed_not_read(ws: Path, outside: Path,
                                                                          data_stats: Any) -> None:
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    (ws / "data" / "train" / "evil").symlink_to(outside / "train" / "secret")

    result = data_stats()

    assert result.code == ExitCode.PASSED
    assert result.report is not None
    train = result.report["splits"]["train"]
    assert train["count"] == truth.counts["train"]
    assert result.report["class_names"] == truth.class_names
    assert train["unreadable"] == [f"train/evil/ ({NOT_FOLLOWED})"]
    assert f"`train/evil/ ({NOT_FOLLOWED})`" in result.markdown


@pytest.mark.reliability("data", "ImageFolder image that is a symlink to a PNG outside the data folder",
                         "not decoded; listed as unreadable with the reason")
def test_imagefolder__image_symlink_out_of_root_is_listed_not_read(ws: Path, outside: Path) -> None:
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    secret = next((outside / "train" / "secret").iterdir())
    (ws / "data" / "test" / "class_0" / "zz_link.png").symlink_to(secret)

    stats = _stats(ws / "data")

    assert stats.splits["test"].count == truth.counts["test"]
    assert stats.splits["test"].unreadable == [f"test/class_0/zz_link.png ({NOT_FOLLOWED})"]


@pytest.mark.reliability("data", "ImageFolder split folder (`test/`) that is a symlink to a folder outside",
                         "the split is not read; listed as unreadable with the reason")
def test_imagefolder__split_folder_symlink_out_of_root_is_listed_not_read(ws: Path, outside: Path,
                                                                          ) -> None:
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, splits=("train",), seed=1)
    (ws / "data" / "test").symlink_to(outside / "train")

    stats = _stats(ws / "data")

    assert list(stats.splits) == ["train"]
    assert stats.splits["train"].count == truth.counts["train"]
    assert stats.splits["train"].unreadable == [f"test/ ({NOT_FOLLOWED})"]


@pytest.mark.reliability("data", "ImageFolder folder below a class folder that is a symlink to outside",
                         "not entered; listed as unreadable with the reason")
def test_imagefolder__nested_folder_symlink_out_of_root_is_listed(ws: Path, outside: Path) -> None:
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    (ws / "data" / "train" / "class_1" / "more").symlink_to(outside / "train" / "secret")

    stats = _stats(ws / "data")

    assert stats.splits["train"].count == truth.counts["train"]
    assert stats.splits["train"].unreadable == [f"train/class_1/more/ ({NOT_FOLLOWED})"]


@pytest.mark.reliability("data", "ImageFolder of nothing but symlinks to outside (`data` -> class folders elsewhere)",
                         "exit 2; layout not recognised; names the links not followed")
def test_imagefolder__only_outside_symlinks_is_refused(ws: Path, outside: Path, data_stats: Any) -> None:
    (ws / "data" / "train").mkdir(parents=True)
    (ws / "data" / "train" / "secret").symlink_to(outside / "train" / "secret")

    result = data_stats()

    assert result.code == ExitCode.ERROR
    assert "Could not recognise the dataset layout" in result.out
    assert f"train/secret/ ({NOT_FOLLOWED})" in result.out
    assert "Traceback" not in result.out


@pytest.mark.reliability("data", "ImageFolder class folder that is a symlink to another folder inside the data folder",
                         "followed: its images are counted")
def test_imagefolder__symlink_inside_root_is_followed(ws: Path) -> None:
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    (ws / "data" / "train" / "alias").symlink_to(ws / "data" / "test" / "class_0")

    stats = _stats(ws / "data")

    assert stats.splits["train"].count == truth.counts["train"] + 3
    assert stats.splits["train"].unreadable == []


@pytest.mark.reliability("data", "data files that are DVC `symlink`-cache links into `.dvc/cache`",
                         "exit 0; followed: read as usual")
def test_course__dvc_symlink_cache_is_followed(ws: Path) -> None:
    truth = make_course(ws / "staging", n_train=6, n_test=3, seed=2)
    cache = ws / ".dvc" / "cache" / "files" / "md5"
    cache.mkdir(parents=True)
    (ws / "data").mkdir()
    for file in truth.files:
        target = cache / file.name
        file.rename(target)
        (ws / "data" / file.name).symlink_to(target)

    dataset = open_dataset(ws / "data")
    items = sum(batch.images.shape[0] for batch in dataset.splits["train"].batches())

    assert items == 6


@pytest.mark.reliability("data", "course shard (`train_images_1.pt`) that is a symlink to a file outside",
                         "the shard pair is not read; listed as unreadable with the reason")
def test_course__shard_symlink_out_of_root_is_listed_not_read(ws: Path, tmp_path: Path) -> None:
    make_course(ws / "data", n_train=8, n_test=3, shards=2, seed=2)
    make_course(tmp_path / "elsewhere", n_train=50, n_test=3, shards=None, seed=3)
    (ws / "data" / "train_images_1.pt").unlink()
    (ws / "data" / "train_target_1.pt").unlink()
    (ws / "data" / "train_images_1.pt").symlink_to(tmp_path / "elsewhere" / "train_images.pt")
    (ws / "data" / "train_target_1.pt").symlink_to(tmp_path / "elsewhere" / "train_target.pt")

    stats = _stats(ws / "data")

    assert stats.splits["train"].count == 4  # shard 0 only, not the 50 items outside
    assert stats.splits["train"].unreadable == [
        f"train_images_1.pt / train_target_1.pt ({NOT_FOLLOWED})"]


@pytest.mark.reliability("data", "`test.npz` that is a symlink to a file outside the data folder",
                         "not read; listed as unreadable with the reason")
def test_npz__file_symlink_out_of_root_is_listed_not_read(ws: Path, tmp_path: Path) -> None:
    (ws / "data").mkdir()
    np.savez(ws / "data" / "train.npz", x=np.zeros((4, 2, 2), np.uint8), y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "secret.npz", x=np.ones((9, 2, 2), np.uint8), y=np.zeros(9, np.int64))
    (ws / "data" / "test.npz").symlink_to(tmp_path / "secret.npz")

    stats = _stats(ws / "data")

    assert stats.splits["test"].count == 0
    assert stats.splits["test"].unreadable == [f"test.npz ({NOT_FOLLOWED})"]


# ---------------------------------------------------------------------------------------------------
# Symbolic links that lead nowhere: loops, chains longer than the system follows, missing targets

LOOP = "a symbolic link loop (it leads back to itself), not followed"
CHAIN = "a chain of 100 symbolic links, more than the system follows, not followed"
DANGLING = "a dangling symbolic link (its target does not exist), not followed"
REASONS = {"loop": LOOP, "chain": CHAIN, "dangling": DANGLING}
KINDS = pytest.mark.parametrize(("kind", "what"), [
    ("loop", "looping back to itself"), ("chain", "heading a chain of 100 links"),
    ("dangling", "to a missing target")],
    ids=["loop", "chain", "dangling"])
"""The three ways a symbolic link leads nowhere, and how a catalogue row says each."""


def broken(at: Path, kind: str, elsewhere: Path) -> str:
    """Make ``at`` a symbolic link of ``kind`` (``loop``: to itself; ``chain``: 100 links deep to a real
    file; ``dangling``: to a missing file), the chain's links kept in ``elsewhere``; returns the reason."""
    if kind == "loop":
        at.symlink_to(at.name)
    elif kind == "dangling":
        at.symlink_to(elsewhere / "missing")
    else:
        chain = elsewhere / f"chain-{at.name}"
        chain.mkdir(parents=True)
        (chain / "end").write_bytes(b"not data")
        links = [at, *(chain / f"{i}" for i in range(1, 100))]
        for link, target in zip(links, [*links[1:], chain / "end"], strict=True):
            link.symlink_to(target)
    return REASONS[kind]


@pytest.mark.parametrize("kind", ["loop", "chain", "dangling"])
def test_broken_link__says_loop_chain_or_dangling(tmp_path: Path, kind: str) -> None:
    (tmp_path / "real.png").write_bytes(b"x")
    (tmp_path / "good.png").symlink_to("real.png")
    reason = broken(tmp_path / "bad.png", kind, tmp_path / "links")

    assert broken_link(tmp_path / "bad.png") == reason
    assert broken_link(tmp_path / "good.png") is None and broken_link(tmp_path / "real.png") is None
    with pytest.raises(OSError):  # independent check: the system will not open it either
        (tmp_path / "bad.png").read_bytes()


def test_broken_link__a_loop_of_two_links_is_a_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    assert broken_link(tmp_path / "a") == LOOP


# where: (the link, the split that lists it, the listed path) of an ImageFolder made by make_imagefolder
IMAGEFOLDER_PLACES = {
    "image": ("train/class_0/zz.png", "train", "train/class_0/zz.png"),
    "folder below a class": ("train/class_1/more", "train", "train/class_1/more"),
    "class folder": ("test/evil", "test", "test/evil"),
    "split folder": ("valid", "train", "valid"),
}


@KINDS
@pytest.mark.parametrize("where", list(IMAGEFOLDER_PLACES))
@pytest.mark.reliability("data", "ImageFolder {where} that is a symbolic link {what}",
                         "not read, no crash; listed as unreadable under its split, the reason says symbolic link")
def test_imagefolder__link_loop_chain_or_dangling_is_listed_not_read(ws: Path, tmp_path: Path, kind: str, what: str,
                                                                     where: str) -> None:
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    link, split, listed = IMAGEFOLDER_PLACES[where]
    reason = broken(ws / "data" / link, kind, tmp_path / "links")

    stats = _stats(ws / "data")

    assert {name: s.count for name, s in stats.splits.items()} == truth.counts
    assert {name: s.unreadable for name, s in stats.splits.items() if s.unreadable} == {
        split: [f"{listed} ({reason})"]}


@KINDS
@pytest.mark.parametrize("which", ["images", "target"])
@pytest.mark.reliability("data", "course shard's {which} file (`train_{which}_1.pt`) a symbolic link {what}",
                         "the shard pair is not read; listed as unreadable, the reason says symbolic link; "
                         "never exit 2 for it")
def test_course__shard_link_loop_chain_or_dangling_is_listed_not_read(ws: Path, tmp_path: Path, kind: str, what: str,
                                                                      which: str) -> None:
    make_course(ws / "data", n_train=8, n_test=3, shards=2, seed=2)
    (ws / "data" / f"train_{which}_1.pt").unlink()
    reason = broken(ws / "data" / f"train_{which}_1.pt", kind, tmp_path / "links")

    stats = _stats(ws / "data")

    assert stats.splits["train"].count == 4  # shard 0 only
    assert stats.splits["train"].unreadable == [f"train_images_1.pt / train_target_1.pt ({reason})"]


@KINDS
@pytest.mark.reliability("data", "`test.npz` a symbolic link {what}",
                         "not read; listed as unreadable, the reason says symbolic link")
def test_npz__link_loop_chain_or_dangling_is_listed_not_read(ws: Path, tmp_path: Path, kind: str, what: str) -> None:
    (ws / "data").mkdir()
    np.savez(ws / "data" / "train.npz", x=np.zeros((4, 2, 2), np.uint8), y=np.array([0, 1, 0, 1]))
    reason = broken(ws / "data" / "test.npz", kind, tmp_path / "links")

    stats = _stats(ws / "data")

    assert stats.splits["train"].count == 4 and stats.splits["test"].count == 0
    assert stats.splits["test"].unreadable == [f"test.npz ({reason})"]


def test_links_that_lead_nowhere__listed_alike_in_small_shards_read_by_two_worker_processes(
        ws: Path, tmp_path: Path) -> None:
    import itertools

    make_imagefolder(ws / "folder", per_class=4, classes=2, seed=1)
    broken(ws / "folder" / "train" / "class_0" / "self.png", "loop", tmp_path / "links")
    broken(ws / "folder" / "train" / "class_1" / "deep.png", "chain", tmp_path / "links")
    broken(ws / "folder" / "test" / "class_1" / "gone", "dangling", tmp_path / "links")
    make_course(ws / "course", n_train=8, n_test=3, shards=2, seed=2)
    (ws / "course" / "train_target_1.pt").unlink()
    broken(ws / "course" / "train_target_1.pt", "loop", tmp_path / "links")
    expected = {
        "folder": {"train": [f"train/class_0/self.png ({LOOP})", f"train/class_1/deep.png ({CHAIN})"],
                   "test": [f"test/class_1/gone ({DANGLING})"]},
        "course": {"train": [f"train_images_1.pt / train_target_1.pt ({LOOP})"]},
    }
    for name, unreadable in expected.items():
        one = compute_stats(open_dataset(ws / name))[0]
        two = compute_stats(open_dataset(ws / name), batch_size=2, workers=2,
                            shard_sizes=lambda: itertools.repeat(2))[0]
        assert {split: s.unreadable for split, s in two.splits.items() if s.unreadable} == unreadable
        assert two.model_dump_json() == one.model_dump_json()


@pytest.mark.reliability("data", "data-stats on an ImageFolder with a self-linked image, a 100-link chain and a "
                         "dangling folder link", "exit 0 (never 4): each listed under Findings, saying symbolic link")
def test_data_stats__broken_links_are_findings_not_a_crash(ws: Path, tmp_path: Path, data_stats: Any) -> None:
    make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    broken(ws / "data" / "train" / "class_0" / "self.png", "loop", tmp_path / "links")
    broken(ws / "data" / "train" / "class_1" / "deep.png", "chain", tmp_path / "links")
    broken(ws / "data" / "test" / "class_1" / "gone", "dangling", tmp_path / "links")

    result = data_stats()

    assert result.code == ExitCode.PASSED, result.out
    assert result.report is not None
    assert result.report["splits"]["train"]["unreadable"] == [f"train/class_0/self.png ({LOOP})",
                                                              f"train/class_1/deep.png ({CHAIN})"]
    assert result.report["splits"]["test"]["unreadable"] == [f"test/class_1/gone ({DANGLING})"]
    assert f"`train/class_0/self.png ({LOOP})`" in result.markdown


# ---------------------------------------------------------------------------------------------------
# Pixel budget


@pytest.mark.parametrize(("width", "height", "reason"), [
    pytest.param(13000, 13000, "13000×13000 = 169 M pixels exceeds the 40 M pixel budget", id="13000x13000",
                 marks=pytest.mark.reliability(
                     "data", "164 KB PNG of 13000×13000 pixels (a decompression bomb PIL only warns about)",
                     "not decoded (peak memory stays flat); listed as unreadable: "
                     "`13000×13000 = 169 M pixels exceeds the 40 M pixel budget`")),
    pytest.param(7000, 6000, "7000×6000 = 42 M pixels exceeds the 40 M pixel budget", id="just-over",
                 marks=pytest.mark.reliability(
                     "data", "PNG of 7000×6000 pixels, just over the 40 M pixel budget",
                     "not decoded; listed as unreadable with its size and the budget")),
    pytest.param(20000, 20000, "400 M pixels exceeds the 40 M pixel budget", id="pil-error",
                 marks=pytest.mark.reliability(
                     "data", "PNG of 20000×20000 pixels (PIL's DecompressionBombError)",
                     "not decoded; listed as unreadable: `400 M pixels exceeds the 40 M pixel budget`")),
])
def test_imagefolder__image_over_pixel_budget_is_listed_not_decoded(
    ws: Path, width: int, height: int, reason: str
) -> None:
    assert width * height > MAX_IMAGE_PIXELS
    truth = make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    (ws / "data" / "train" / "class_0" / "zz_huge.png").write_bytes(huge_png(width, height, complete=False))

    stats = _stats(ws / "data")  # filterwarnings=error: PIL's DecompressionBombWarning would fail this

    assert stats.splits["train"].count == truth.counts["train"]
    assert stats.splits["train"].unreadable == [f"train/class_0/zz_huge.png ({reason})"]


@pytest.mark.reliability("data", "data-stats on an ImageFolder holding a complete 164 KB PNG of 13000×13000",
                         "exit 0; the report lists it under Findings with `13000×13000 = 169 M pixels exceeds "
                         "the 40 M pixel budget`; no DecompressionBombWarning")
def test_data_stats__decompression_bomb_is_a_finding(ws: Path, data_stats: Any) -> None:
    make_imagefolder(ws / "data", per_class=3, classes=2, seed=1)
    bomb = huge_png(13000, 13000)
    assert len(bomb) < 200_000
    (ws / "data" / "test" / "class_1" / "bomb.png").write_bytes(bomb)

    result = data_stats()

    assert result.code == ExitCode.PASSED
    assert "`test/class_1/bomb.png (13000×13000 = 169 M pixels exceeds the 40 M pixel budget)`" in result.markdown
    assert "DecompressionBomb" not in result.out


# ---------------------------------------------------------------------------------------------------
# Labels


def _course(root: Path, labels: list[Any] | torch.Tensor | np.ndarray, *, images: int | None = None,
            test: int = 2) -> None:
    root.mkdir(parents=True)
    n = len(labels) if images is None else images
    torch.save(torch.arange(n * 4, dtype=torch.uint8).reshape(n, 2, 2), root / "train_images.pt")
    torch.save(labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels), root / "train_target.pt")
    torch.save(torch.full((test, 2, 2), 200, dtype=torch.uint8), root / "test_images.pt")
    torch.save(torch.zeros(test, dtype=torch.int64), root / "test_target.pt")


@pytest.mark.parametrize(("labels", "expected"), [
    pytest.param([0, 1, -3, 1], "Split 'train': label -3 of item 2 (train_images.pt / train_target.pt) "
                 f"is outside [0, {MAX_LABEL:,})", id="negative",
                 marks=pytest.mark.reliability("data", "a negative label (-3)",
                                               "exit 2; names the split, item 2, the value and [0, 1,048,576)")),
    pytest.param([0, 2**40, 1], f"Split 'train': label {2**40} of item 1", id="2**40",
                 marks=pytest.mark.reliability("data", "a label of 2**40",
                                               "exit 2 before any allocation; names the split, item, value and bound")),
    pytest.param([0, MAX_LABEL], f"label {MAX_LABEL} of item 1", id="bound",
                 marks=pytest.mark.reliability("data", "a label equal to the bound 2**20",
                                               "exit 2; names the item, the value and the bound")),
    pytest.param(torch.tensor([0.0, 1.5]), "Split 'train': label 1.5 of item 1 (train_images.pt / train_target.pt) "
                 "is not an integer", id="fraction",
                 marks=pytest.mark.reliability("data", "a fractional float label (1.5)",
                                               "exit 2; names the split, item 1 and the value; says not an integer")),
    pytest.param(torch.tensor([0.0, float("nan")]), "label nan of item 1", id="nan",
                 marks=pytest.mark.reliability("data", "a NaN label",
                                               "exit 2; names the item and says not an integer")),
    pytest.param(torch.tensor([float("inf"), 0.0]), f"label inf of item 0 (train_images.pt / train_target.pt) "
                 f"is outside [0, {MAX_LABEL:,})", id="inf",
                 marks=pytest.mark.reliability("data", "an infinite float label",
                                               "exit 2; names the item, the value and the bound")),
    pytest.param(torch.tensor([[0, 1], [1, 0]]), "labels must be one integer per item, got shape (2, 2)",
                 id="one-hot", marks=pytest.mark.reliability("data", "one-hot labels of shape (N, K)",
                                                             "exit 2; says one integer per item, names the shape")),
])
def test_course__labels_that_are_not_class_indices_fail(ws: Path, data_stats: Any, labels: Any,
                                                        expected: str) -> None:
    _course(ws / "data", labels)

    result = data_stats()

    assert result.code == ExitCode.ERROR
    assert expected in result.out
    assert "Traceback" not in result.out
    assert result.report is None  # nothing judged, nothing published


@pytest.mark.reliability("data", "fewer labels than images (5 images, 4 labels)",
                         "exit 2; names the split, the files and both counts")
def test_course__labels_of_the_wrong_length_fail(ws: Path, data_stats: Any) -> None:
    _course(ws / "data", [0, 1, 0, 1], images=5)

    result = data_stats()

    assert result.code == ExitCode.ERROR
    assert "Split 'train': train_images.pt / train_target.pt: 5 images but 4 labels." in result.out
    assert "Traceback" not in result.out


@pytest.mark.reliability("data", "a negative label in the second shard of a sharded split",
                         "exit 2; the item index counts across shards")
def test_course__bad_label_index_counts_across_shards(ws: Path, data_stats: Any) -> None:
    make_course(ws / "data", n_train=8, n_test=2, shards=2, seed=1)
    labels = torch.load(ws / "data" / "train_target_1.pt")
    labels = torch.as_tensor(labels).clone()
    labels[1] = -1
    torch.save(labels, ws / "data" / "train_target_1.pt")

    result = data_stats()

    assert result.code == ExitCode.ERROR
    assert "Split 'train': label -1 of item 5 (train_images_1.pt / train_target_1.pt)" in result.out


@pytest.mark.reliability("data", "npz `test.npz` with a negative label (uint8 images, int8 labels)",
                         "exit 2; names split `test`, the item and the value")
def test_npz__negative_label_in_test_fails(ws: Path, data_stats: Any) -> None:
    (ws / "data").mkdir()
    np.savez(ws / "data" / "train.npz", x=np.zeros((3, 2, 2), np.uint8), y=np.array([0, 1, 2], np.uint8))
    np.savez(ws / "data" / "test.npz", x=np.ones((3, 2, 2), np.uint8), y=np.array([1, 0, -7], np.int8))

    result = data_stats()

    assert result.code == ExitCode.ERROR
    assert "Split 'test': label -7 of item 2 (test.npz [x, y])" in result.out


@pytest.mark.reliability("data", "a user Dataset class (`dataset-class`) whose item 3 of `test` has label -2",
                         "exit 2; names the class, the split, item 3, the value and the bound")
def test_dataset_class__negative_label_fails(tmp_path: Path) -> None:
    spec, _ = make_dataset_class(tmp_path / "repo", tmp_path / "data", package="hostile_labels_pkg", n_test=5)
    with np.load(tmp_path / "data" / "test.npz") as archive:
        images, labels = archive["images"], archive["labels"].copy()
    labels[3] = -2
    np.savez(tmp_path / "data" / "test.npz", images=images, labels=labels)
    dataset = open_dataset(tmp_path / "data", dataset_class=spec, import_root=tmp_path / "repo")

    with pytest.raises(DatasetClassError) as raised:
        list(dataset.splits["test"].batches())

    assert raised.value.exit_code == ExitCode.ERROR
    assert f"{spec} (test) item 3: label -2 is outside [0, {MAX_LABEL:,})" in raised.value.message


# ---------------------------------------------------------------------------------------------------
# Empty splits


@pytest.mark.reliability("data", "an empty `test` split (`test_images.pt` of shape (0, 2, 2))",
                         "exit 0; the report is written with the label figure for `train` and a notice that "
                         "`test` is empty")
def test_empty_split__report_renders_with_a_notice(ws: Path, data_stats: Any) -> None:
    _course(ws / "data", [0, 1, 2, 1], test=0)

    result = data_stats()

    assert result.code == ExitCode.PASSED
    assert result.report is not None
    assert result.report["splits"]["test"]["count"] == 0
    assert "❌ `test` is empty: its files hold zero items" in result.markdown
    assert "has no items of class" not in result.markdown
    assert "label_distribution" in result.report["figures"]


@pytest.mark.reliability("data", "an ImageFolder `test` split whose only image is corrupt",
                         "exit 0; the report says `test` is empty because every file is unreadable, and lists it")
def test_empty_split__all_unreadable_says_why(ws: Path, data_stats: Any) -> None:
    make_imagefolder(ws / "data", per_class=2, classes=2, splits=("train",), seed=1)
    (ws / "data" / "test" / "class_0").mkdir(parents=True)
    (ws / "data" / "test" / "class_0" / "broken.png").write_bytes(b"\x89PNG not really")

    result = data_stats()

    assert result.code == ExitCode.PASSED
    assert "❌ `test` is empty: every file of it is unreadable" in result.markdown
    assert "`test/class_0/broken.png`" in result.markdown


# ---------------------------------------------------------------------------------------------------
# Model files


def _state_dict_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.ones(64, 64)}, buffer)
    return buffer.getvalue()


def _refused(path: Path) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as raised:
        load_model(path)
    assert raised.value.exit_code == ExitCode.ERROR
    return raised.value


@pytest.mark.reliability("data", "`model` file that is empty (0 bytes)", "exit 2: says the file is empty")
def test_model__empty_file(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"")

    assert "is empty (0 bytes)" in _refused(tmp_path / "model.pt").message


@pytest.mark.reliability("data", "`model` file cut short (half of a torch.save archive)",
                         "exit 2: says it cannot read the model file with torch.load")
def test_model__truncated_archive(tmp_path: Path) -> None:
    data = _state_dict_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])

    assert "Cannot read model file" in _refused(tmp_path / "model.pt").message


@pytest.mark.reliability("data", "`model` file cut to its first 10 bytes (a torch.save pickle header)",
                         "exit 2: says it cannot read the model file")
def test_model__truncated_to_a_few_bytes(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(_state_dict_bytes()[:10])

    assert "Cannot read model file" in _refused(tmp_path / "model.pt").message


@pytest.mark.reliability("data", "`model.pt2` zip bomb (one deflated 64 MB entry of zeros, 64 KB on disk)",
                         "exit 2 before unpacking: says it looks like a zip bomb and gives the limits")
def test_model__zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "model.pt2"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model/archive_format", "pt2")
        archive.writestr("model/data/weights/bomb", bytes(64 * 2**20))
    assert path.stat().st_size < 2**20

    error = _refused(path)

    assert "looks like a zip bomb" in error.message
    assert "'model/data/weights/bomb' unpacks" in error.message


@pytest.mark.reliability("data", "`model` that is a folder holding only an empty sub-folder",
                         "exit 2: says there is no model file in it")
def test_model__folder_without_files(tmp_path: Path) -> None:
    (tmp_path / "artifact" / "empty").mkdir(parents=True)

    error = _refused(tmp_path / "artifact")

    assert "No model file in directory" in error.message
    assert "it holds: nothing" in error.message


@pytest.mark.reliability("data", "`model` folder whose only model file is a symlink to a file outside it",
                         "exit 2: no model file; names the link as not followed; the target is never opened")
def test_model__folder_with_symlink_out_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.pt").write_bytes(_state_dict_bytes())
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "model.pt").symlink_to(tmp_path / "elsewhere.pt")

    error = _refused(tmp_path / "artifact")

    assert "No model file in directory" in error.message
    assert "Not followed (symlinks to outside the folder): model.pt." in error.message
