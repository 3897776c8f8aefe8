"""The picture of leaked pairs: each leaked item beside its train copy, checked on the artist tree."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.text import Text

from mlgate.cli import main
from mlgate.data.layouts import open_dataset
from mlgate.data.stats import compute_stats
from mlgate.figures.images import CannotDrawFigure, display_images
from mlgate.figures.items import draw_leaked_pairs
from mlgate.figures.worker import LeakedPairs, _load_jobs
from tests.fixtures.datasets import make_course, make_imagefolder

EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def pictured(fig: Figure) -> tuple[list[AxesImage], list[tuple[str, str]], list[Text]]:
    """The images, each image's (header, label) caption, and the "=" marks, in drawing order."""
    (ax,) = fig.axes
    texts = [t for t in ax.texts if t.get_text() != "="]
    headers = [t.get_text() for t in texts if t.get_va() == "bottom"]
    labels = [t.get_text() for t in texts if t.get_va() == "top"]
    return ax.images, list(zip(headers, labels, strict=True)), [t for t in ax.texts if t.get_text() == "="]


def test_leaked_pairs__example_data_shows_its_3_pairs_side_by_side() -> None:
    _, _, leaked = compute_stats(open_dataset(EXAMPLE_DATA))

    fig = draw_leaked_pairs(display_images([p.image for p in leaked]),
                            [(p.split, p.item, p.label, p.train_item, p.train_label) for p in leaked], total=3)

    images, captions, equals = pictured(fig)
    assert len(images) == 6 and len(equals) == 3
    assert captions == [
        ("test\nitem 0", "label 3"), ("train\nitem 908", "label 3"),
        ("test\nitem 10", "label 8"), ("train\nitem 388", "label 8"),
        ("test\nitem 20", "label 1"), ("train\nitem 522", "label 1"),
    ]
    assert "Test items that are exact copies of train items: all 3" in [t.get_text() for t in fig.texts]
    # one row, left to right; each item and its train copy show the same pixels
    extents = [image.get_extent() for image in images]
    assert len({round(e[2], 6) for e in extents}) == 1
    assert [e[0] for e in extents] == sorted(e[0] for e in extents)
    for left, right in zip(images[::2], images[1::2], strict=True):
        np.testing.assert_array_equal(left.get_array(), right.get_array())


def test_leaked_pairs__8_of_many_in_two_rows_with_paths_and_differing_labels_in_red() -> None:
    images = [np.random.default_rng(i).random((20, 30, 3)) for i in range(8)]
    pairs = [("test", f"test/cat/{i:06d}.png", 0, f"train/cat/{100 + i:06d}.png", 0 if i != 5 else 1)
             for i in range(8)]

    fig = draw_leaked_pairs(images, pairs, ["cat", "dog"], total=250)

    shown, captions, equals = pictured(fig)
    assert len(shown) == 16 and len(equals) == 8
    assert len({round(image.get_extent()[2], 6) for image in shown}) == 2  # 4 pairs per row
    assert "Test items that are exact copies of train items: first 8 of 250" in [t.get_text() for t in fig.texts]
    # a path too wide for its image keeps its end; the split folder is in the header already
    assert captions[0] == ("test\n…000000.png", "0: cat")
    assert captions[1] == ("train\n…000100.png", "0: cat")
    red = [t.get_text() for t in fig.axes[0].texts if t.get_color() != "black"]
    assert red == ["0: cat", "1: dog"]  # pair 5: the test copy is labelled otherwise than its train source
    assert fig.get_figwidth() <= 8.0


def test_leaked_pairs__five_pairs_are_balanced_over_two_rows() -> None:
    fig = draw_leaked_pairs([np.zeros((8, 8, 3))] * 5, [("valid", f"valid/a/{i}.png", 0, i, 0) for i in range(5)],
                            total=5)

    images, captions, _ = pictured(fig)
    assert captions[:2] == [("valid\na/0.png", "label 0"), ("train\nitem 0", "label 0")]
    rows: dict[float, int] = {}
    for image in images:
        rows[round(image.get_extent()[2], 6)] = rows.get(round(image.get_extent()[2], 6), 0) + 1
    assert sorted(rows.values()) == [4, 6]  # 3 + 2 pairs
    assert "Valid items that are exact copies of train items: all 5" in [t.get_text() for t in fig.texts]


def test_leaked_pairs__nothing_to_draw_is_an_error() -> None:
    with pytest.raises(CannotDrawFigure):
        draw_leaked_pairs([], [], total=0)


def test_leaked_pairs_job__crosses_the_worker_boundary_and_renders() -> None:
    job = LeakedPairs([np.zeros((4, 4, 3))], [("test", "test/a/1.png", 0, 7, 0)], None, total=1)

    (received,) = _load_jobs(io.BytesIO(pickle.dumps({"leaked_pairs": job}))).values()

    np.testing.assert_equal(dataclasses.asdict(received), dataclasses.asdict(job))
    assert received.render().startswith(b"\x89PNG")


def run_data_stats(data: Path, out: Path) -> Any:
    code = main(["data-stats", "--data", str(data), "--out", str(out), "--dvc-pull", "false",
                 "--cache-dir", str(out.parent / f"{out.name}-cache")], env={"GITHUB_WORKSPACE": str(data.parent)})
    assert code == 0
    return json.loads((out / "report.json").read_text())


def test_data_stats__writes_the_pair_picture_only_when_something_leaked(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "leaky", per_class=3, classes=2, leaks=2, seed=3)
    make_course(tmp_path / "clean", n_train=30, n_test=10, seed=4)

    leaky = run_data_stats(tmp_path / "leaky", tmp_path / "out-leaky")
    clean = run_data_stats(tmp_path / "clean", tmp_path / "out-clean")

    assert leaky["figures"]["leaked_pairs"] == "leaked_pairs.png"
    assert (tmp_path / "out-leaky" / "leaked_pairs.png").read_bytes().startswith(b"\x89PNG")
    assert leaky["leakage"]["leaked_items"]["test"]["total"] == 2
    assert "![Leaked items beside their train copies](leaked_pairs.png)" in (
        tmp_path / "out-leaky" / "report.md").read_text()
    assert "leaked_pairs" not in clean["figures"]
