"""Full lists (findings/*.csv): every planted finding, beyond the first 100, in both layouts, with one
header; cells from data never start a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from mlgate.data.findings import COLUMNS, Measured, cell_text, full_lists, to_csv
from mlgate.data.label_errors import LabelErrorItem
from mlgate.data.layouts import open_dataset
from mlgate.data.report import build_report, render_markdown
from mlgate.data.stats import compute_stats
from tests.fixtures.datasets import make_course, make_imagefolder


def read(files: dict[str, bytes], kind: str) -> list[dict[str, str]]:
    text = files[f"findings/{kind}.csv"].decode("utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)  # one stable header for every kind
    return list(csv.DictReader(io.StringIO(text)))


def test_course_layout__every_leaked_duplicate_and_conflicting_item_is_a_row_not_only_the_first_100(
        tmp_path: Path) -> None:
    truth = make_course(tmp_path / "d", n_train=1_200, n_test=400, duplicates=130, leaks=250, conflicts=110,
                        dtype="uint8")
    stats = compute_stats(open_dataset(tmp_path / "d", "course"))[0]
    assert len(stats.leakage.leaked_items["test"].items) == 100  # report.json keeps its first 100

    files, lists = full_lists(Measured(stats))

    leaked = read(files, "leaked_items")
    assert len(leaked) == 250
    assert {(int(r["item"]), int(r["other_item"])) for r in leaked} == set(truth.leaked_from["test"].items())
    assert {r["split"] for r in leaked} == {"test"} and {r["other_split"] for r in leaked} == {"train"}
    for r in leaked:  # the labels are the ones in the files
        assert int(r["label"]) == truth.labels["test"][int(r["item"])]
        assert int(r["other_label"]) == truth.labels["train"][int(r["other_item"])]
    duplicates = read(files, "exact_duplicates")
    assert {(int(r["item"]), int(r["group"])) for r in duplicates} == set(truth.duplicate_of["train"].items())
    conflicting = read(files, "conflicting_labels")
    assert {(int(r["item"]), int(r["other_item"])) for r in conflicting} == set(truth.relabelled.items())
    assert {f.finding: f.rows for f in lists}["leaked_items"] == 250
    assert {f.finding: (f.rows, f.total) for f in lists}["conflicting_labels"] == (110, 110)
    assert read(files, "label_errors") == []  # written, empty: the pass did not run


def test_imagefolder__same_columns_paths_as_items_and_every_leak(tmp_path: Path) -> None:
    # the fixture plants one leak per class: 110 classes for more leaks than report.json lists
    truth = make_imagefolder(tmp_path / "d", per_class={"train": 2, "test": 1}, classes=110, leaks=105,
                             duplicates=3, size=(8, 8))
    stats = compute_stats(open_dataset(tmp_path / "d", "imagefolder"))[0]

    files, _ = full_lists(Measured(stats))

    leaked = read(files, "leaked_items")
    assert {(r["item"], r["other_item"]) for r in leaked} == set(truth.leaked_from["test"].items())
    assert len(leaked) == 105 and len(stats.leakage.leaked_items["test"].items) == 100
    duplicates = read(files, "exact_duplicates")
    assert {(r["item"], r["other_item"]) for r in duplicates} == set(truth.duplicate_of["train"].items())


def test_image_issues_and_label_errors__one_row_per_item(tmp_path: Path) -> None:
    make_course(tmp_path / "d", n_train=300, n_test=10, dtype="uint8")
    stats = compute_stats(open_dataset(tmp_path / "d", "course"))[0]
    errors = [LabelErrorItem(item=n, label=1, suggested=7, confidence=0.9, label_probability=0.01) for n in range(150)]
    files, lists = full_lists(Measured(stats, errors))
    rows = read(files, "label_errors")
    assert len(rows) == 150  # all of them, not the report's 100
    assert rows[0] == {**dict.fromkeys(COLUMNS, ""), "finding": "label_error", "split": "train", "item": "0",
                       "label": "1", "other_label": "7", "probability": "0.9"}
    report = build_report(title="t", data="d", stats=stats, content_hash=None, changes=None, gates=[], baseline=None,
                          figures={}, full_lists=lists)
    assert "- Likely label errors: full list: `findings/label_errors.csv` (150 rows)" in render_markdown(report, {})


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "'quoted"])
def test_cell__a_formula_start_gets_an_apostrophe_and_removing_one_gives_the_value_back(value: str) -> None:
    text = cell_text(value)
    assert text == "'" + value
    assert text[1:] == value


def test_csv__hostile_paths_stay_one_cell_each_and_inert() -> None:
    text, rows = to_csv(iter([{"finding": "leaked_item", "split": "test", "item": "=cmd|'/c calc'!A0,\n.png",
                               "distance": 0.0}]))
    assert rows == 1
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["item"] == "'=cmd|'/c calc'!A0,\n.png" and row["distance"] == "0"
    assert cell_text("train/cat/1.png") == "train/cat/1.png" and cell_text(12) == "12" and cell_text(None) == ""
