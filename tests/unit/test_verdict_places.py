"""Where the verdict shows besides the comment: the check run's summary and conclusion, the annotation on
the line of the ``.dvc`` file / ``dvc.lock`` that records the data's hash, and the promotion's model card."""

from __future__ import annotations

import pytest

from mlgate.data.annotations import hash_annotations
from mlgate.data.changes import compare
from mlgate.data.dvc import hash_line
from mlgate.data.report import DataReport, build_report
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.github.checks import conclusion
from mlgate.model.card import card_path, render_card
from mlgate.model.comparison import Uncertainty
from mlgate.model.gates import GateThresholds, evaluate_gates
from mlgate.model.measure.values import Environment, LatencyStats, ModelMeasurement, Throughput
from mlgate.model.registry import ModelVersion
from mlgate.model.report import ModelReport
from mlgate.model.report import build_report as build_model_report
from mlgate.report_blocks import Gate, Interval, check_summary

# what `dvc add data/processed` writes (DVC 3), and a dvc.lock whose dependency precedes the output
DVC_FILE = """outs:
- md5: 2b9c1e4d0f3a5b6c7d8e9f0a1b2c3d4e.dir
  size: 1254400
  nfiles: 4
  hash: md5
  path: processed
"""
DVC_LOCK = """schema: '2.0'
stages:
  prepare:
    cmd: python prepare.py
    deps:
    - path: prepare.py
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 812
    outs:
    - path: data/processed
      hash: md5
      md5: "fedcba9876543210fedcba9876543210.dir"
      size: 30
      nfiles: 3
"""


@pytest.mark.parametrize(("text", "md5", "line"), [
    (DVC_FILE, "2b9c1e4d0f3a5b6c7d8e9f0a1b2c3d4e.dir", 2),
    (DVC_LOCK, "fedcba9876543210fedcba9876543210.dir", 13),  # quoted, in the outs, not the deps
    (DVC_LOCK, "0123456789abcdef0123456789abcdef", 8),
    (DVC_FILE, "2b9c1e4d0f3a5b6c7d8e9f0a1b2c3d4e", None),  # the hash without `.dir` is another value
    (DVC_FILE.replace("md5: 2b9c", "etag: 2b9c"), "2b9c1e4d0f3a5b6c7d8e9f0a1b2c3d4e.dir", 2),  # cloud outputs
])
def test_hash_line__the_line_that_records_the_hash(text: str, md5: str, line: int | None) -> None:
    assert hash_line(text, md5) == line
    if line is not None:
        assert md5 in text.splitlines()[line - 1]  # independent check: the line holds it


def split(counts: dict[str, int]) -> SplitStats:
    total = sum(counts.values())
    return SplitStats(
        count=total, shape=[28, 28], shapes={"28x28": total}, dtype="uint8", channels=1, min=0.0, max=1.0,
        channel_mean=[0.5], channel_std=[0.25], label_counts=counts,
        label_shares={k: v / total for k, v in counts.items()},
        imbalance_ratio=max(counts.values()) / min(counts.values()), missing_classes=[], nonfinite=0,
        unreadable=[], duplicates=0, histogram=[1, 2], histogram_edges=[0.0, 0.5, 1.0],
    )


def stats(**splits: SplitStats) -> DatasetStats:
    return DatasetStats(layout="course", class_names=None, splits=splits,
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))


def data_report(*, gates: list[Gate], changed: bool = True) -> DataReport:
    base = stats(train=split({"0": 300, "1": 300}), test=split({"0": 50, "1": 50}))
    head = stats(train=split({"0": 400, "1": 400}), test=split({"0": 50, "1": 50}))
    changes = compare(base, head, base_name="main", base_hash="aaa.dir", head_hash="bbb.dir" if changed else "aaa.dir")
    return build_report(title="Data report", data="data/processed", stats=head, content_hash="bbb.dir",
                        changes=changes, gates=gates, baseline=None, figures={})


FAILED = Gate(name="min-samples", value=800, threshold=1000, passed=False, detail="200 under")
PASSED = Gate(name="min-samples", value=800, threshold=100, passed=True)


def test_hash_annotations__warning_on_a_failed_gate_with_the_counts_that_changed() -> None:
    (note,) = hash_annotations(data_report(gates=[FAILED]), [("data/processed.dvc", 2)])
    assert (note.path, note.line, note.level) == ("data/processed.dvc", 2, "warning")
    first, *rest = note.message.splitlines()
    assert first.startswith("mlgate data-stats: FAILED (1 gate)")
    # train 600 -> 800 (the test split did not change and is not listed)
    assert "train: 600 -> 800 (+200) items" in rest and not any(line.startswith("test:") for line in rest)


def test_hash_annotations__notice_when_passed_none_when_the_data_did_not_change() -> None:
    (note,) = hash_annotations(data_report(gates=[PASSED]), [("dvc.lock", 13)])
    assert note.level == "notice" and note.title == "Data report: data/processed changed"
    assert hash_annotations(data_report(gates=[PASSED], changed=False), [("dvc.lock", 13)]) == ()


def test_check_summary_and_conclusion__gate_table_or_neutral_when_nothing_is_gated() -> None:
    summary = check_summary("mlgate x: FAILED (1 gate)\nfailed gate min-samples 800: 200 under", [FAILED], {})
    assert summary.splitlines()[0] == "- failed gate min-samples 800: 200 under"  # the title holds the first
    assert "| `min-samples` | 800 | 1,000 | ❌ fail: 200 under |" in summary
    assert "No gates configured" in check_summary("mlgate x: no gates configured", [], {})
    assert [conclusion(True, True), conclusion(False, True), conclusion(True, False), conclusion(False, False)] == [
        "success", "failure", "neutral", "neutral"]


def model_report(*, uncertainty: Uncertainty | None = None) -> ModelReport:
    latency = LatencyStats(predictions=1_000, total_seconds=9.87, mean_ms=9.9, p50_ms=9.5, p90_ms=11.0,
                           p95_ms=12.3, p99_ms=14.0, iqr_ms=1.0, stdev_ms=1.25)
    m = ModelMeasurement(
        latency=latency, throughput=[Throughput(batch_size=32, samples_per_second=10_913.4, batch_p50_ms=2.9)],
        size_mb=0.09612, params=24_030, flops_per_prediction=None, peak_memory_mb=None, accuracy=0.932,
        per_class_accuracy=None, confusion=None, eval_samples=500, robustness=None)
    return build_model_report(
        title="Model gate", model="acme/mnist-train/mnist-cnn:v3", format="torchscript", collection="reg/mnist",
        measurement=m, gates=evaluate_gates(m, GateThresholds(max_latency_ms=20, min_accuracy=0.9)), baseline=None,
        environment=Environment(torch="2.5.1", python="3.11.7", cpu="AMD EPYC", threads=2, platform="linux"),
        uncertainty=uncertainty)


VERSION = ModelVersion(name="acme/mnist-train/mnist-cnn:v3", version="v3", aliases=["staging"], collection="mnist-cnn",
                       digest="4f1c0a", metadata={})


def row(card: str, name: str) -> list[str]:
    line = next(line for line in card.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_model_card__metrics_identity_gates_and_how_measured() -> None:
    card = render_card(model_report(), VERSION, "reg/mnist", "production")
    assert card.startswith("# Model card: `acme/mnist-train/mnist-cnn:v3`")
    assert row(card, "digest") == ["`4f1c0a`"] and row(card, "alias on merge") == ["`production`"]
    assert row(card, "accuracy") == ["93.2% on 500 eval items"]  # no interval column without intervals
    assert row(card, "latency p95") == ["12.3 ms"] and row(card, "parameters") == ["24,030"]
    assert row(card, "throughput, batch 32") == ["10,913 items/s"]
    assert "## Gates" in card and "| `max-latency-ms` | 12.3 ms | 20 ms |" in card
    assert "CPU `AMD EPYC`, 2 torch threads, torch 2.5.1" in card
    assert "1,000 single-item predictions" in card and "accuracy: 500 eval items" in card
    assert card_path(".mlgate/promotions/mnist.json") == ".mlgate/promotions/mnist.md"


def test_model_card__intervals_where_the_gate_bootstrapped_them() -> None:
    uncertainty = Uncertainty(confidence=0.95, accuracy=Interval(value=0.932, low=0.910, high=0.953, confidence=0.95),
                              latency_p50_ms=Interval(value=9.5, low=9.3, high=9.8, confidence=0.95),
                              latency_p95_ms=Interval(value=12.3, low=11.7, high=13.1, confidence=0.95))
    card = render_card(model_report(uncertainty=uncertainty), VERSION, "reg/mnist", "production")
    assert row(card, "accuracy") == ["93.2% on 500 eval items", "95% CI 91.0% to 95.3%"]
    assert row(card, "latency p95") == ["12.3 ms", "95% CI 11.7 ms to 13.1 ms"]
    assert row(card, "size") == ["0.0961 MB", "–"]  # measured once: no interval


def test_model_card__lineage_and_generalisation_when_the_gate_read_them() -> None:
    from mlgate.model.generalisation import Generalisation
    from mlgate.model.lineage import DataHash, DataLineage
    from mlgate.model.registry import LineageRun

    lineage = DataLineage(
        run=LineageRun(id="3kq9x2ab", name="brisk-sun-12", project="acme/mnist-train", url="https://wandb.ai/r"),
        datasets=[], hashes=[DataHash(value="aaaa1111", logged="aaaa1111.dir", source="run config `data_md5`")],
        ignored=[], eval_data="data/processed", repository_hash="bbbb2222.dir", verdict="differs",
        reason="the run logged aaaa1111, the repository has bbbb2222")
    gap = Generalisation(train_split="train", eval_split="test", train_samples=500, train_items_read=5_000,
                         train_accuracy=0.99, eval_accuracy=0.932, eval_samples=500, gap=0.058, gap_margin=0.025,
                         reading="overfitting: the gap is beyond the margin", seed=0, notes=[])
    report = model_report().model_copy(update={"lineage": lineage, "generalisation": gap})
    card = render_card(report, VERSION, "reg/mnist", "production")
    lineage_part = card.split("## Lineage", 1)[1].split("## Gates", 1)[0]
    assert "- run: brisk-sun-12 (" in lineage_part and "`https://wandb.ai/r`" in lineage_part  # shown, not linked
    assert "`bbbb2222.dir`" in lineage_part
    assert row(card, "train − eval accuracy")[0] == "5.8 pp"  # 0.99 - 0.932
