from __future__ import annotations

from mlgate.data.changes import compare
from mlgate.data.report import build_report, render_markdown
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.report import COMMENT_LIMIT, Gate, fit, fold, gates_table


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
                         Gate(name="max-imbalance", value=1.5, threshold=3.0, passed=True)])
    assert "| `min-samples` | 90 | 100 | ❌ fail — 10 too few |" in table
    assert "| `max-imbalance` | 1.5 | 3 | ✅ pass |" in table
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
    from mlgate.report import footer

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
    from mlgate.report import footer

    report = build_report(
        title="t", data="d", stats=DatasetStats(layout="course", class_names=None, splits={},
                                                leakage=LeakageStats(train_test_exact_duplicates=0, per_split={},
                                                                     conflicting_labels=0)),
        content_hash=None, changes=None, gates=[], baseline=None, figures={},
    )
    assert render_markdown(report, {}).rstrip().endswith(footer())
