"""Drift gates, the drift and image-issue sections of the data report, and the drift figure."""

from __future__ import annotations

import numpy as np
import pytest

from mlgate.data.drift import DriftReport, compute_drift
from mlgate.data.gates import evaluate_drift_gates
from mlgate.data.image_issues import ImageIssues, IssueItems
from mlgate.data.report import build_report, render_markdown
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.figures.distributions import draw_drift_overlay
from mlgate.figures.images import CannotDrawFigure
from mlgate.settings import DataStatsSettings, load_settings
from tests.helpers import data_gate_thresholds

EDGES = (np.arange(65) * 4.0).tolist()
FLAT = [100] * 64
BRIGHTER = [0] * 8 + [100] * 56  # every pixel 32 values brighter: KS 0.125 on this grid


def _split(labels: dict[str, int], histogram: list[int], mean: float = 128.0,
           issues: ImageIssues | None = None) -> SplitStats:
    count = sum(labels.values())
    return SplitStats(
        count=count, shape=[28, 28], shapes={"28x28": count}, dtype="uint8", channels=1, min=0, max=255,
        channel_mean=[mean], channel_std=[74.0], label_counts=labels,
        label_shares={k: v / count for k, v in labels.items()}, imbalance_ratio=1.0, missing_classes=[],
        nonfinite=0, unreadable=[], duplicates=0, histogram=histogram, histogram_edges=EDGES,
        image_issues=issues or ImageIssues(),
    )


def _stats(**splits: SplitStats) -> DatasetStats:
    return DatasetStats(layout="npz", class_names=None, splits=splits,
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))


def _settings(**inputs: str) -> DataStatsSettings:
    settings = load_settings({"mode": "data-stats", "data": "d", **inputs})
    assert isinstance(settings, DataStatsSettings)
    return settings


BASE = _stats(train=_split({"0": 5000, "1": 5000}, FLAT), test=_split({"0": 1000, "1": 1000}, FLAT))
DRIFTED = _stats(train=_split({"0": 5000, "1": 5000}, FLAT),
                 test=_split({"0": 1300, "1": 700}, BRIGHTER, mean=160.0))


def test_drift_gates__worst_split_against_the_limit() -> None:
    drift = compute_drift(DRIFTED, BASE, "main")
    label, pixel = evaluate_drift_gates(drift, data_gate_thresholds(
        _settings(**{"max-label-drift": "0.1", "max-pixel-drift": "0.2"})))
    assert (label.name, label.value, label.passed) == ("max-label-drift", pytest.approx(0.15), False)
    assert label.detail.startswith("label shares of `test` moved by 15.0% (χ² p = ")
    assert label.detail.endswith("against `main`, over the 10% limit")
    assert (pixel.name, pixel.value, pixel.passed, pixel.detail) == ("max-pixel-drift", 0.125, True, "")


def test_drift_gates__without_a_base_are_not_evaluated_and_do_not_fail() -> None:
    settings = data_gate_thresholds(_settings(**{"max-label-drift": "0.01", "max-pixel-drift": "0.01"}))
    for drift in (None, compute_drift(DRIFTED)):
        gates = evaluate_drift_gates(drift, settings)
        expected = (True, None, "not evaluated: no base to compare with")
        assert [(g.passed, g.value, g.detail) for g in gates] == [expected] * 2
    assert evaluate_drift_gates(None, data_gate_thresholds(_settings())) == []
    assert [g.value for g in evaluate_drift_gates(None, settings, unchanged=True)] == [0.0, 0.0]


def _report(head: DatasetStats, drift: DriftReport) -> str:
    report = build_report(title="Data report", data="d", stats=head, content_hash=None, changes=None, gates=[],
                          baseline=None, figures={}, drift=drift)
    return render_markdown(report, {})


def test_report__drift_that_moved_gets_a_table_and_plain_words() -> None:
    body = _report(DRIFTED, compute_drift(DRIFTED, BASE, "main"))
    section = body.split("### Drift\n\n")[1].split("\n### ")[0]
    assert "Against `main`:" in section
    assert "| `test` | 2,000 → 2,000 | 15.0% |" in section
    # χ² of [[1000, 1000], [1300, 700]]: expected 1150 / 850 per row, 2 (150²/1150 + 150²/850) = 92.1;
    # Wasserstein of uniform [0, 256] against uniform [32, 256]: 32²/512 + 224 · 0.125 / 2 = 16 (6.25 % of 256)
    assert "| 15.0% | 92.1 (dof 1), p < 0.001 | 0.125 (0.0515) | 16 (6.2%) | +0.43 σ / 0.00 σ | ⚠️ moved: labels, " \
        "pixel intensities, channel mean/std |" in section
    assert "- `test`: label shares moved by 15.0% (TVD), χ² p < 0.001; pixel intensities KS 0.125" in section
    assert "**Train → test** (within this data): ⚠️ `test` differs from `train` in labels" in section
    assert "**Label drift:** `test` label shares moved by 15.0% (TVD)" in body  # a next step


def test_report__drift_within_noise_is_folded_and_says_so() -> None:
    same = _stats(train=_split({"0": 5000, "1": 5000}, FLAT), test=_split({"0": 1010, "1": 990}, FLAT))
    body = _report(same, compute_drift(same, BASE, "main"))
    assert "### Drift" not in body
    assert "<details><summary>Drift (`main` → head): nothing moved beyond sampling noise</summary>" in body
    assert "`test` still represents `train`: label shares within noise (TVD 0.5%, χ² p = " in body
    assert "Label drift" not in body


def test_report__image_issues_table_only_when_present() -> None:
    assert "### Image issues" not in _report(BASE, compute_drift(BASE))
    issues = ImageIssues(checked=10_000, constant=IssueItems(total=3, items=[4, 9, 12]),
                         dark=IssueItems(total=1, items=[9]))
    head = _stats(train=_split({"0": 5000, "1": 5000}, FLAT, issues=issues), test=BASE.splits["test"])
    body = _report(head, compute_drift(head))
    table = body.split("### Image issues\n\n")[1].split("\n\n")[0]
    assert table.splitlines()[2] == "| constant (every pixel equal) | 3 | 0 | `train` 4, `train` 9, `train` 12 |"
    assert table.splitlines()[3].startswith("| very dark (fewer than 1% of pixels reach 25% of the range) | 1 | 0 |")
    assert "**Image issues:** `train` has 3 constant, 1 very dark: look at them" in body


def test_drift_figure__one_row_per_compared_split_with_the_ks_gap_marked() -> None:
    drift = compute_drift(DRIFTED, BASE, "main")
    fig = draw_drift_overlay(
        {n: (s.histogram, s.histogram_edges) for n, s in DRIFTED.splits.items()},
        {n: (s.histogram, s.histogram_edges) for n, s in BASE.splits.items()},
        {n: s.label_counts for n, s in DRIFTED.splits.items()}, {n: s.label_counts for n, s in BASE.splits.items()},
        ks={n: (d.pixels.ks, d.pixels.ks_at) for n, d in drift.splits.items() if d.pixels},
        tvd={n: d.labels.tvd for n, d in drift.splits.items() if d.labels}, base_name="main")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["train: pixel values (CDF)", "train: label shares; TVD 0.0%",
                      "test: pixel values (CDF)", "test: label shares; TVD 15.0%"]
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert legend == ["base main", "head", "KS 0.125"]
    with pytest.raises(CannotDrawFigure):
        draw_drift_overlay({"train": (FLAT, EDGES)}, {}, {}, {}, ks={}, tvd={})
