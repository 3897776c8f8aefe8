from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.data.changes import Changes, compare
from mlgate.data.gates import UNITS as DATA_UNITS
from mlgate.data.gates import evaluate_data_gates
from mlgate.data.report import DataReport, build_report, data_outcome, render_markdown, unchanged_outcome
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.model.gates import GateThresholds, evaluate_gates
from mlgate.model.measure.values import Environment, LatencyStats, ModelMeasurement, Throughput
from mlgate.model.report import Action, Baseline, ModelReport, model_outcome
from mlgate.model.report import build_report as build_model_report
from mlgate.model.report import render_markdown as render_model_markdown
from mlgate.report_blocks import COMMENT_LIMIT, Gate, fit, fold, gates_table, plain_text
from mlgate.settings import DataStatsSettings, load_settings
from tests.helpers import data_gate_thresholds


def split(counts: dict[str, int], shape: list[int] | None = None, dtype: str = "float32") -> SplitStats:
    total = sum(counts.values())
    present = [c for c in counts.values() if c]
    return SplitStats(
        count=total, shape=shape or [28, 28], shapes={"28x28": total}, dtype=dtype, channels=1, min=0.0, max=1.0,
        channel_mean=[0.5], channel_std=[0.25], label_counts=counts,
        label_shares={k: v / total for k, v in counts.items()},
        imbalance_ratio=max(present) / min(present), missing_classes=[], nonfinite=0, unreadable=[],
        duplicates=0, histogram=[1, 2], histogram_edges=[0.0, 0.5, 1.0],
    )


def stats(**splits: SplitStats) -> DatasetStats:
    return DatasetStats(layout="course", class_names=None, splits=splits,
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))


def test_compare__per_split_and_per_class_deltas_new_and_removed_classes() -> None:
    base = stats(train=split({"0": 10, "1": 10, "2": 5}), test=split({"0": 3}))
    head = stats(train=split({"0": 12, "1": 10, "10": 4}, shape=[1, 28, 28]), valid=split({"0": 2}))
    changes = compare(base, head, base_name="main")
    train = changes.splits["train"]
    assert (train.count_base, train.count_head, train.count_delta) == (25, 26, 1)
    assert train.label_deltas == {"0": 2, "2": -5, "10": 4}  # numeric order, unchanged classes left out
    assert train.shape_changed and not train.dtype_changed
    assert changes.splits["test"].count_delta == -3 and changes.splits["valid"].count_delta == 2
    assert changes.new_classes == ["10"] and changes.removed_classes == ["2"]
    assert changes.added_splits == ["valid"] and changes.removed_splits == ["test"]
    body = render_markdown(
        build_report(title="T", data="d", stats=head, content_hash=None, changes=changes, gates=[],
                     baseline=None, figures={}), {})
    assert "| `train` | 25 | 26 | +1 | 0: +2, 2: -5, 10: +4 |" in body
    assert "new classes: 10" in body and "removed classes: 2" in body
    assert "`train` item shape 28×28 → 1×28×28" in body


def test_gates_table__shows_value_threshold_verdict_and_by_how_much() -> None:
    table = gates_table([Gate(name="min-samples", value=90, threshold=100, passed=False, detail="10 too few"),
                         Gate(name="max-imbalance", value=1.5, threshold=3.0, passed=True)], DATA_UNITS)
    assert "| `min-samples` | 90 items | 100 items | ❌ fail: 10 too few |" in table
    assert "| `max-imbalance` | 1.50× | 3× | ✅ pass |" in table
    assert gates_table([]) == ""


def test_fit__truncates_under_the_limit_and_closes_an_open_details() -> None:
    body = "## Report\n\n" + fold("Label counts", "| row |\n" * 20_000)
    assert len(body) > COMMENT_LIMIT
    short = fit(body, COMMENT_LIMIT, "See the job summary.")
    assert len(short) <= COMMENT_LIMIT
    assert short.rstrip().endswith("See the job summary.")
    assert short.count("<details>") == short.count("</details>")
    assert fit("small", COMMENT_LIMIT, "x") == "small"


def test_footer__names_the_version_and_the_pinned_image_only_when_it_is_a_valid_reference(monkeypatch) -> None:
    from mlgate import __version__
    from mlgate.report_blocks import footer

    digest = "sha256:" + "ab" * 32
    for image, shown in ((f"ghcr.io/acme/mlgate@{digest}", True), ("evil`\n::error::x", False), ("", False)):
        monkeypatch.setenv("MLGATE_IMAGE", image)
        footer.cache_clear()
        text = footer()
        assert f"mlgate {__version__}" in text
        assert (digest in text) is shown
        assert "\n" not in text
    footer.cache_clear()


def test_reports__end_with_the_footer() -> None:
    from mlgate.report_blocks import footer

    report = build_report(
        title="t", data="d", stats=DatasetStats(layout="course", class_names=None, splits={},
                                                leakage=LeakageStats(train_test_exact_duplicates=0, per_split={},
                                                                     conflicting_labels=0)),
        content_hash=None, changes=None, gates=[], baseline=None, figures={},
    )
    assert render_markdown(report, {}).rstrip().endswith(footer())


# --- one voice for numbers: the same quantity reads the same in the header, the tables and the gates


def data_settings(**inputs: str) -> DataStatsSettings:
    settings = load_settings({"mode": "data-stats", "data": "data", **inputs})
    assert isinstance(settings, DataStatsSettings)
    return settings


def imbalanced() -> DatasetStats:
    """train 1,900 items (largest/smallest class 2.04), test 500 items (2.905): the example data's ratios."""
    train = split({"0": 200, "1": 98, "2": 1_602}).model_copy(
        update={"channel_mean": [0.1213], "imbalance_ratio": 2.04})
    test = split({"0": 79, "1": 191, "2": 230}).model_copy(update={"channel_mean": [0.12], "imbalance_ratio": 2.905})
    return stats(train=train, test=test).model_copy(update={"leakage": LeakageStats(
        train_test_exact_duplicates=3, per_split={"test": 3}, conflicting_labels=0)})


def data_report(data: DatasetStats, gates: list[Gate], *, changes: Changes | None = None) -> DataReport:
    return build_report(title="Data report", data="data", stats=data, content_hash=None, changes=changes,
                        gates=gates, baseline=None, figures={})


def row(markdown: str, title: str) -> list[str]:
    """The cells of the table row whose first cell is ``title``."""
    [line] = [line for line in markdown.splitlines() if line.startswith(f"| {title} |")]
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_data_report__imbalance_mean_and_counts_read_the_same_in_every_place() -> None:
    data = imbalanced()
    thresholds = data_gate_thresholds(data_settings(**{"max-imbalance": "1.2"}))
    body = render_markdown(data_report(data, evaluate_data_gates(data, thresholds)), {})

    # 2.905 with the policy's two decimals and ×: "2.90×", in the splits table and in the gate row alike
    assert row(body, "imbalance (largest/smallest class)") == ["2.04×", "2.90×"]
    value, limit, verdict = row(body, "`max-imbalance`")
    assert (value, limit) == ("2.90×", "1.2×")
    assert verdict == "❌ fail: 1.70 over the 1.2× limit in split `test`"  # 2.905 - 1.2 = 1.705 -> 3 digits
    assert row(body, "mean (per channel)") == ["0.121", "0.120"]  # three digits both, not 0.121 beside 0.12
    assert "**1,900** train · **500** test" in body and row(body, "items") == ["1,900", "500"]


def test_data_gates__rows_named_by_input_with_unit_and_by_how_much() -> None:
    data = imbalanced()
    settings = data_settings(**{"min-samples": "600", "max-imbalance": "3", "fail-on-leakage": "true"})
    gates = evaluate_data_gates(data, data_gate_thresholds(settings))
    table = gates_table(gates, DATA_UNITS)

    assert [g.name for g in gates] == ["min-samples", "max-imbalance", "fail-on-leakage"]
    assert row(table, "`min-samples`") == [
        "500 items", "600 items", "❌ fail: 100 items below the 600 minimum in split `test`"]
    assert "| `max-imbalance` | 2.90× | 3× | ✅ pass |" in table
    assert "| `fail-on-leakage` | 3 items | 0 items | ❌ fail: 3 test items also in train |" in table


def test_data_report__without_gates_says_none_is_configured() -> None:
    body = render_markdown(data_report(imbalanced(), []), {})
    assert body.startswith("## ℹ️ Data report\n\n**No gates configured**: this report cannot fail the step.")
    assert "### Gates\n\nNo gates configured. Set any of `min-samples`, `max-imbalance`" in body
    assert "`fail-on-nonfinite`, " in body and "`baseline-train`, " in body
    assert "`max-label-drift`" in body and "to make this step fail on a limit." in body
    assert "passed" not in body.lower()


def model_measurement(*, p95: float = 12.3, accuracy: float | None = 0.932, size_mb: float = 0.09612,
                      params: int = 24_030) -> ModelMeasurement:
    latency = LatencyStats(predictions=1_000, total_seconds=9.87, mean_ms=9.9, p50_ms=9.5, p90_ms=11.0, p95_ms=p95,
                           p99_ms=14.0, iqr_ms=1.0, stdev_ms=1.25)
    return ModelMeasurement(
        latency=latency, throughput=[Throughput(batch_size=32, samples_per_second=10_913.4, batch_p50_ms=2.9)],
        size_mb=size_mb, params=params, flops_per_prediction=None, peak_memory_mb=None, accuracy=accuracy,
        per_class_accuracy=None, confusion=None, eval_samples=500 if accuracy is not None else 0, robustness=None)


def model_report(thresholds: GateThresholds, candidate: ModelMeasurement | None = None,
                 production: ModelMeasurement | None = None) -> ModelReport:
    candidate = candidate or model_measurement()
    baseline = None if production is None else Baseline.of("mnist:v1", "production", candidate, production)
    return build_model_report(
        title="Model gate", model="mnist:v2", format="torchscript", collection=None, measurement=candidate,
        gates=evaluate_gates(candidate, thresholds, production), baseline=baseline,
        environment=Environment(torch="2", python="3.11", cpu="cpu", threads=1, platform="linux"))


def test_model_report__size_latency_accuracy_read_the_same_in_header_table_and_gate_rows() -> None:
    report = model_report(GateThresholds(max_latency_ms=10, min_accuracy=0.95, max_size_mb=1))
    body = render_model_markdown(report, {})

    assert "torchscript model · 24,030 parameters · 0.0961 MB" in body  # 0.09612 MB, three digits
    assert row(body, "size") == ["0.0961 MB"]
    assert row(body, "`max-size-mb`")[:2] == ["0.0961 MB", "1 MB"]
    assert row(body, "latency p95") == ["12.3 ms"] and row(body, "`max-latency-ms`")[:2] == ["12.3 ms", "10 ms"]
    assert row(body, "accuracy") == ["93.2%"] and row(body, "`min-accuracy`")[:2] == ["93.2%", "95%"]
    assert "batch 32: 10,913 items/s" in body


def test_model_gates__rows_named_by_input_with_unit_and_by_how_much() -> None:
    report = model_report(GateThresholds(max_latency_ms=10, min_accuracy=0.95, max_latency_regression=0.1,
                                         max_accuracy_drop=0.01),
                          production=model_measurement(p95=10.0, accuracy=0.95))
    body = render_model_markdown(report, {})

    assert row(body, "`max-latency-ms`") == ["12.3 ms", "10 ms", "❌ fail: 2.30 ms over the 10 ms limit"]
    assert row(body, "`min-accuracy`") == ["93.2%", "95%", "❌ fail: 1.8 pp below the 95% minimum"]
    assert row(body, "`max-latency-regression`") == [
        "+23.0%", "10%", "❌ fail: 23.0% slower than production (p95 12.3 ms vs 10 ms), 13.0 pp over the 10% limit"]
    assert row(body, "`max-accuracy-drop`") == [
        "1.8 pp", "1 pp", "❌ fail: 1.8 pp lower than production (93.2% vs 95.0%), 0.8 pp over the 1 pp limit"]
    assert row(body, "latency p95") == ["12.3 ms", "10 ms", "1.23×"]
    assert "latency_p95_ms" not in body and "**Failed**: `max-latency-ms`, `min-accuracy`" in body


def test_model_report__without_gates_says_none_is_configured() -> None:
    body = render_model_markdown(model_report(GateThresholds()), {})
    assert "## ℹ️ Model gate" in body and "**No gates configured**: this report cannot fail the step." in body
    assert "### Gates\n\nNo gates configured. Set any of `max-latency-ms`, `max-total-seconds`" in body
    assert "passed" not in body.lower()


def test_act__without_gates_does_not_claim_they_passed() -> None:
    from mlgate.model.promote import PromotionPolicy, carry_out, plan_action

    policy = PromotionPolicy(on_pass="none", promote_alias="production", on_fail_alias="")
    none = carry_out(plan_action(policy, model_report(GateThresholds()), None, None, registry=False),  # type: ignore[arg-type]
                     None, None, {})
    two = carry_out(plan_action(policy, model_report(GateThresholds(max_latency_ms=20, min_accuracy=0.5)),
                                None, None, registry=False), None, None, {})  # type: ignore[arg-type]
    assert none.result == "no gates configured; `on-pass: none`, so nothing else was done."
    assert two.result == "all 2 gates passed; `on-pass: none`, so nothing else was done."


# --- class labels: the name once, the label only where the name does not say it


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("course", ["0", "1", "2"]),
        ("imagefolder digits", ["0", "1", "2"]),  # folders named 0, 1, 2: not "0 (0)"
        ("imagefolder names", ["0 · bird", "1 · cat", "2 · dog"]),  # labels follow the sorted folder names
        ("imagefolder 1-based", ["0 · 1", "1 · 10", "2"]),  # folders 1, 10, 2 sort as text
        ("dataset-class", ["0 · digit 0", "1 · digit 1", "2 · digit 2"]),
    ],
)
def test_data_report__class_labels_per_layout(tmp_path: Path, make: str, expected: list[str]) -> None:
    from mlgate.data.layouts import open_dataset
    from mlgate.data.stats import compute_stats
    from tests.fixtures.datasets import make_course, make_dataset_class, make_imagefolder

    data, dataset_class = tmp_path / "data", None
    if make == "course":
        make_course(data, n_train=30, n_test=9, classes=3)
    elif make == "dataset-class":
        dataset_class, _ = make_dataset_class(tmp_path, data, package=f"labels_{tmp_path.name}", n_train=30)
    else:
        folders = {"imagefolder digits": ["0", "1", "2"], "imagefolder names": ["cat", "dog", "bird"],
                   "imagefolder 1-based": ["1", "2", "10"]}[make]
        make_imagefolder(data, classes=folders, per_class=2)
    dataset = open_dataset(data, "auto", dataset_class=dataset_class, import_root=tmp_path)
    measured = compute_stats(dataset, samples_per_class=1)[0]
    body = render_markdown(data_report(measured, []), {})
    counts = body[body.index("| class |"):]
    shown = [line.split("|")[1].strip() for line in counts.splitlines()[2:] if line.startswith("| ")]
    assert shown == expected


def test_data_report__missing_class_and_changes_use_the_same_class_label() -> None:
    base = stats(train=split({"0": 5, "1": 5, "2": 5}))
    head = stats(train=split({"0": 6, "1": 5}).model_copy(update={"missing_classes": ["2"]}))
    named = ["cat", "dog", "bird|x"]
    head = head.model_copy(update={"class_names": named})
    body = render_markdown(data_report(head, [], changes=compare(base, head, base_name="main")), {})
    assert "| `train` | 15 | 11 | -4 | 0 · cat: +1, 2 · bird\\|x: -5 |" in body
    assert "`train` has no items of class 2 · bird\\|x." in body


# --- the short outcome of every run: plain text, verdict and key figures, failed gates


def test_outcome__data_stats_changed() -> None:
    data = imbalanced()
    base = stats(train=split({"0": 100, "1": 98, "2": 752}), test=split({"0": 79, "1": 191, "2": 230}))
    thresholds = data_gate_thresholds(data_settings(**{"max-imbalance": "1.2"}))
    report = data_report(data, evaluate_data_gates(data, thresholds),
                         changes=compare(base, data, base_name="data-v1"))
    assert data_outcome(report) == (
        "mlgate data-stats: FAILED (1 gate) · data: 1,900 train, 500 test · +950 items against data-v1"
        " · imbalance up to 2.90× (test) · 3 test items also in train\n"
        "failed gate max-imbalance 2.90×: 1.70 over the 1.2× limit in split test"
    )


def test_outcome__data_stats_unchanged_and_without_gates() -> None:
    assert unchanged_outcome("data/processed", "0123456789abcdef", "main", []) == (
        "mlgate data-stats: no gates configured · data/processed unchanged against main (DVC 0123456789)"
        " · no new statistics"
    )
    passed = [Gate(name="min-samples", value=10, threshold=5, passed=True)]
    assert unchanged_outcome("d", None, "", passed).startswith("mlgate data-stats: passed (1 gate) · d unchanged")


def test_outcome__model_gate() -> None:
    report = model_report(GateThresholds(max_latency_ms=10, min_accuracy=0.9)).model_copy(
        update={"action": Action(on_pass="none", result="not promoted: gate `max-latency-ms` failed.")})
    assert model_outcome(report) == (
        "mlgate model-gate: FAILED (1 of 2 gates) · mnist:v2 · p95 latency 12.3 ms · accuracy 93.2% on 500 items"
        " · 0.0961 MB\n"
        "failed gate max-latency-ms 12.3 ms: 2.30 ms over the 10 ms limit\n"
        "next: not promoted: gate max-latency-ms failed."
    )


def test_outcome__promote() -> None:
    from mlgate.model.promote import PromoteReport, Promotion, promote_outcome

    assert promote_outcome(PromoteReport(title="t", promotions=[])) == (
        "mlgate promote: nothing to do · no promotion manifest changed")
    report = PromoteReport(title="t", promotions=[
        Promotion(artifact="a/m:v3", collection="reg/mnist", alias="production", manifest="m.json", linked=True)])
    assert promote_outcome(report) == (
        "mlgate promote: 1 of 1 promotion(s) applied\na/m:v3 now holds production in reg/mnist")


def test_outcome__a_user_value_cannot_start_a_workflow_command() -> None:
    evil = "x\n::error::pwned\r\n##[set-output name=passed]true `y`\x1b[2J"
    report = model_report(GateThresholds()).model_copy(update={"model": evil})
    line = model_outcome(report)
    assert len(line.splitlines()) == 1
    assert not line.lstrip().startswith("::")
    assert "##[" not in line and "\x1b" not in line and "`" not in line
    assert plain_text("::warning::x") == "warning::x"


def test_verdict__one_gate_many_gates_and_none() -> None:
    from mlgate.report_blocks import verdict, verdict_line

    ok = Gate(name="min-samples", value=10, threshold=5, passed=True)
    bad = Gate(name="max-imbalance", value=3.0, threshold=2.0, passed=False)
    assert (verdict([ok]), verdict([bad]), verdict([ok, bad]), verdict([])) == (
        "passed (1 gate)", "FAILED (1 gate)", "FAILED (1 of 2 gates)", "no gates configured")
    assert verdict_line([ok]) == "**Passed**: the gate passed."
    assert verdict_line([ok, ok]) == "**Passed**: all 2 gates passed."
    assert verdict_line([bad]) == "**Failed**: `max-imbalance`."
    assert verdict_line([ok, bad]) == "**Failed**: `max-imbalance` (1 of 2 gates)."


def test_render_unchanged__shows_the_gates_judged_on_cached_statistics() -> None:
    from mlgate.data.report import render_unchanged

    failed = [Gate(name="min-samples", value=90, threshold=100, passed=False, detail="10 items below the 100 minimum")]
    quiet = render_unchanged("Data report", "data", "0123456789abcdef", "main")
    judged = render_unchanged("Data report", "data", "0123456789abcdef", "main", failed)
    assert "nothing to report" in quiet and "### Gates" not in quiet
    assert judged.startswith("## ❌ Data report") and "**Failed**: `min-samples`." in judged
    assert row(judged, "`min-samples`") == ["90 items", "100 items", "❌ fail: 10 items below the 100 minimum"]
