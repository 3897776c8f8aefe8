"""The data report's "Next" section: one step per finding, naming the items, on the rendered Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgate.data.baseline import BaselineResult
from mlgate.data.gates import evaluate_data_gates
from mlgate.data.layouts import open_dataset
from mlgate.data.report import build_report, render_markdown
from mlgate.data.stats import DatasetStats, compute_stats
from mlgate.settings import DataStatsSettings, load_settings
from tests.fixtures.datasets import make_course, make_imagefolder
from tests.helpers import data_gate_thresholds

EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def settings(**inputs: str) -> DataStatsSettings:
    loaded = load_settings({"mode": "data-stats", "data": "data", **inputs})
    assert isinstance(loaded, DataStatsSettings)
    return loaded


def next_section(stats: DatasetStats, baseline: BaselineResult | None = None, **inputs: str) -> str:
    """The rendered "### Next" section, up to the footer."""
    gates = evaluate_data_gates(stats, data_gate_thresholds(settings(**inputs)), baseline)
    report = build_report(title="Data report", data="data", stats=stats, content_hash=None, changes=None,
                          gates=gates, baseline=baseline, figures={})
    markdown = render_markdown(report, {})
    section = markdown[markdown.index("### Next\n\n") + len("### Next\n\n"):]
    return section[: section.index("\n\n<sub>")]


def steps(section: str) -> list[str]:
    return [line.removeprefix("- ") for line in section.splitlines()]


def test_next__example_data_names_the_leaked_and_duplicate_items_and_nothing_else() -> None:
    stats = compute_stats(open_dataset(EXAMPLE_DATA))[0]

    leakage, duplicates = steps(next_section(stats))

    assert leakage == (
        "**Leakage:** 3 `test` items are also in `train`: remove the copies from `train` (or these items from "
        "`test`), or regenerate the split so no item is in both: "
        "`test` 0 = `train` 908, `test` 10 = `train` 388, `test` 20 = `train` 522."
    )
    assert duplicates == ("**Duplicates:** drop 2 repeated `train` items, keeping the first copy: "
                          "`train` 1799 (copy of `train` 509), `train` 1899 (copy of `train` 541).")


def test_next__says_how_many_more_and_where_they_are_listed(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=400, n_test=150, duplicates=3, leaks=120, conflicts=7, classes=5, seed=2)
    stats = compute_stats(open_dataset(tmp_path))[0]

    leakage, duplicates, conflicts = steps(next_section(stats))

    shown = ", ".join(f"`test` {n} = `train` {truth.leaked_from['test'][n]}" for n in range(5))
    assert leakage.endswith(f"is in both: {shown} and 115 more (report.json lists the first 100).")
    assert duplicates.startswith("**Duplicates:** drop 10 repeated `train` items")
    assert duplicates.endswith(" and 5 more (all in report.json).")
    first = min(truth.relabelled)
    labels = truth.labels["train"]
    assert conflicts.startswith("**Conflicting labels:** 7 items are labelled twice, differently: keep the right "
                                "label and relabel or drop the other copy: ")
    assert (f"`train` {truth.relabelled[first]} (label {labels[truth.relabelled[first]]}) vs "
            f"`train` {first} (label {labels[first]})") in conflicts


def test_next__imagefolder_items_are_file_paths_and_unreadable_files_are_named(tmp_path: Path) -> None:
    truth = make_imagefolder(tmp_path, per_class=3, classes=2, corrupt=2, leaks=1, seed=5)
    stats = compute_stats(open_dataset(tmp_path))[0]

    leakage, unreadable = steps(next_section(stats))

    ((item, source),) = truth.leaked_from["test"].items()
    assert leakage == ("**Leakage:** 1 `test` item is also in `train`: remove the copy from `train` (or this "
                       f"item from `test`), or regenerate the split so no item is in both: `{item}` = `{source}`.")
    assert unreadable == ("**Unreadable files:** re-export or delete the 2 `train` files listed under Findings; "
                          "they are left out of every statistic.")


def test_next__imbalance_only_when_over_the_gate(tmp_path: Path) -> None:
    make_course(tmp_path, n_train=60, n_test=200, classes=4, seed=1)
    stats = compute_stats(open_dataset(tmp_path))[0]
    ratios = {name: s.imbalance_ratio or 0.0 for name, s in stats.splits.items()}
    worst = max(ratios, key=lambda name: ratios[name])
    counts = stats.splits[worst].label_counts
    large, small = max(counts, key=lambda c: counts[c]), min(counts, key=lambda c: counts[c])

    over = next_section(stats, **{"max-imbalance": "1.01"})
    within = next_section(stats, **{"max-imbalance": str(ratios[worst] + 1)})

    (step,) = steps(over)
    assert step == (f"**Imbalance:** `{worst}` has {counts[large] / counts[small]:.2f}× as many items of class "
                    f"{large} ({counts[large]}) as of class {small} ({counts[small]}); `max-imbalance` allows 1.01×. "
                    "Add items of the small classes, resample, or weight the loss by class; raise `max-imbalance` "
                    "if the imbalance is real.")
    assert within.startswith("Nothing to fix")


def test_next__nonfinite_missing_classes_and_too_few_items(tmp_path: Path) -> None:
    make_course(tmp_path, n_train=50, n_test=3, classes=10, nonfinite=4, seed=6)
    stats = compute_stats(open_dataset(tmp_path))[0]
    missing = stats.splits["test"].missing_classes

    section = next_section(stats, **{"min-samples": "20"})

    assert steps(section) == [
        "**Too few items:** `test` has 3 items; `min-samples` asks for 20. Add items, or lower `min-samples`.",
        "**NaN/Inf:** 4 `train` items hold NaN or Inf: fix the step that wrote them (a division by zero, a log of 0) "
        "or drop them; they are left out of the mean, std and histogram.",
        f"**Missing classes:** add `test` items of class {', '.join(missing)}, or nothing measured on `test` covers "
        "them.",
    ]


def test_next__a_baseline_that_does_not_learn(tmp_path: Path) -> None:
    make_course(tmp_path, n_train=40, n_test=10, classes=2, seed=8)
    stats = compute_stats(open_dataset(tmp_path))[0]
    baseline = BaselineResult(
        model="logistic regression", epochs=3, steps=30, seconds=0.5, train_samples=40, test_samples=10,
        losses=[0.7, 0.69], log_every=1, initial_loss=0.7, final_loss=0.69, test_accuracy=0.5, chance_accuracy=0.6,
        converged=False, stopped_early=False, time_budget_s=10.0,
    )

    (step,) = steps(next_section(stats, baseline))

    assert step.startswith("**The baseline does not learn:** a logistic regression reached 50.0% test accuracy "
                           "against 60.0% by always guessing the most common class.")
    assert "paired with its own label" in step


def test_next__nothing_found_says_so_in_one_line(tmp_path: Path) -> None:
    make_course(tmp_path, n_train=40, n_test=20, classes=2, seed=9)
    stats = compute_stats(open_dataset(tmp_path))[0]
    assert not np.any([s.duplicates or s.nonfinite or s.missing_classes for s in stats.splits.values()])

    assert next_section(stats) == (
        "Nothing to fix: no leakage, duplicates, conflicting labels, unreadable files or NaN/Inf."
    )


def test_next__is_the_last_section_before_the_footer() -> None:
    stats = compute_stats(open_dataset(EXAMPLE_DATA))[0]
    report = build_report(title="T", data="d", stats=stats, content_hash=None, changes=None, gates=[], baseline=None,
                          figures={})

    markdown = render_markdown(report, {"leaked_pairs": "leaked_pairs.png"})

    headings = [line for line in markdown.splitlines() if line.startswith("### ")]
    assert headings[-1] == "### Next"
    assert "![Leaked items beside their train copies](leaked_pairs.png)" in markdown
