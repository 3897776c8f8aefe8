"""``mode: data-stats``: which data versions -> measure -> report -> finish.

:func:`run_data_stats` reads top-down; each step is a function below it, in the order it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate import workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.data.changes import Changes, compare
from mlgate.data.dvc import DataDiff, DvcError, DvcRunner
from mlgate.data.layouts import Dataset, open_dataset
from mlgate.data.report import DataReport, build_report, render_markdown, render_unchanged
from mlgate.data.stats import DatasetStats, LeakageStats, compute_stats
from mlgate.data.stats_cache import StatsCache
from mlgate.errors import ExitCode
from mlgate.figures.worker import FigureJob, FigureWorker, LabelDistribution, LossCurve, PixelHistogram, SampleGrid
from mlgate.publish import Finished, Publication, finish
from mlgate.settings import DataStatsSettings

if TYPE_CHECKING:
    from torch import Tensor

    from mlgate.data.baseline import BaselineResult


@dataclasses.dataclass(frozen=True)
class DataVersions:
    """The dataset's DVC content hash in this checkout and at the pull request's base commit."""

    head_hash: str | None
    base_hash: str | None = None
    base_sha: str | None = None
    base_ref: str = ""

    @property
    def unchanged(self) -> bool:
        return self.base_hash is not None and self.base_hash == self.head_hash


@dataclasses.dataclass(frozen=True)
class Measured:
    dataset: Dataset
    stats: DatasetStats
    samples: dict[int, Tensor]
    """Up to ``samples-per-class`` train images per label, for the sample grid."""
    changes: Changes | None


def run_data_stats(settings: DataStatsSettings, ctx: RunContext, clients: Clients,
                   figure_worker: FigureWorker | None = None) -> ExitCode:
    publication = Publication.for_run(settings, ctx, clients)
    cache = StatsCache(ctx.in_workspace(settings.cache_dir), publication.branch_store, settings.assets_branch)
    with _dvc(settings, clients) as dvc:
        versions = _versions(settings, ctx, dvc)
        measured = None if versions.unchanged else _measure(settings, ctx, dvc, versions, cache)
    if measured is None:
        return finish(_unchanged(settings, versions, cache), publication, ctx)
    baseline = _train_baseline(settings, measured.dataset, measured.stats) if settings.baseline_train else None
    figures = (figure_worker or FigureWorker(None)).render(_figure_jobs(settings, measured, baseline))
    report = _report(settings, versions, measured, baseline, figures)
    cache.flush()
    return finish(_finished(report, figures, _label_counts(measured.stats)), publication, ctx)


def _versions(settings: DataStatsSettings, ctx: RunContext, dvc: DvcRunner | None) -> DataVersions:
    """Content hashes, without downloading: equal hashes mean the pull request leaves the data alone."""
    data = settings.data.as_posix()
    head_hash = dvc.content_hash(data) if dvc else None
    pr = ctx.pull_request
    if dvc is None or pr is None or not settings.compare_base or settings.baseline_data is not None:
        return DataVersions(head_hash)
    return DataVersions(head_hash, _base_hash(dvc, pr.base_sha, data), pr.base_sha, pr.base_ref)


def _measure(settings: DataStatsSettings, ctx: RunContext, dvc: DvcRunner | None, versions: DataVersions,
             cache: StatsCache) -> Measured:
    """Pull the data, compute its statistics (cached by content hash) and compare with the base."""
    data = settings.data.as_posix()
    if dvc and _should_pull(settings, dvc, data):
        dvc.pull(data)
    dataset = _open(settings, ctx.in_workspace(settings.data), ctx)
    stats, samples = compute_stats(dataset, samples_per_class=settings.samples_per_class)
    if versions.head_hash:
        cache.put(_cache_key(versions.head_hash, settings), stats)
    return Measured(dataset, stats, samples, _changes(settings, ctx, dvc, versions, stats, cache))


def _figure_jobs(settings: DataStatsSettings, measured: Measured,
                 baseline: BaselineResult | None) -> dict[str, FigureJob]:
    from mlgate.figures.data import CannotDrawFigure, display_samples

    stats = measured.stats
    jobs: dict[str, FigureJob] = {"label_distribution": LabelDistribution(_label_counts(stats))}
    try:
        displays = display_samples(measured.samples, per_class=settings.samples_per_class)
        jobs["sample_grid"] = SampleGrid(displays, stats.class_names, settings.samples_per_class)
    except CannotDrawFigure as exc:  # feature vectors, not images: no grid, say why
        workflow.annotate("notice", "No sample grid", exc.message)
    histograms = {n: (s.histogram, s.histogram_edges) for n, s in stats.splits.items() if s.histogram}
    if histograms:
        jobs["pixel_histogram"] = PixelHistogram(histograms)
    if baseline is not None:
        jobs["baseline_loss"] = LossCurve(baseline.losses, title="Sanity baseline: training loss")
    return jobs


def _report(settings: DataStatsSettings, versions: DataVersions, measured: Measured,
            baseline: BaselineResult | None, figures: Mapping[str, bytes]) -> DataReport:
    from mlgate.data.gates import evaluate_data_gates

    return build_report(
        title=settings.report_title, data=settings.data.as_posix(), stats=measured.stats,
        content_hash=versions.head_hash, changes=measured.changes,
        gates=evaluate_data_gates(measured.stats, settings, baseline), baseline=baseline,
        figures={name: f"{name}.png" for name in figures},
    )


def _finished(report: DataReport, figures: Mapping[str, bytes], label_counts: dict[str, dict[str, int]]) -> Finished:
    from mlgate.figures.data import label_distribution_mermaid

    fallback = label_distribution_mermaid(label_counts)  # shown when the figures cannot be hosted
    return Finished(
        passed=report.passed, report_json=report.model_dump_json(indent=2), figures=figures,
        render=lambda links, note: render_markdown(report, links, fallback_chart=fallback, note=note),
        outputs={"data-changed": "" if report.data_changed is None else str(report.data_changed).lower()},
    )


def _unchanged(settings: DataStatsSettings, versions: DataVersions, cache: StatsCache) -> Finished:
    """The data is byte-for-byte the base branch's: one line, no pull, no comment (stay quiet)."""
    from mlgate.data.gates import evaluate_data_gates

    cached = cache.get(_cache_key(versions.head_hash, settings)) if versions.head_hash else None
    stats = cached or DatasetStats(
        layout=settings.layout, class_names=None, splits={},
        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0),
    )
    gates = evaluate_data_gates(stats, settings) if cached else []
    report = build_report(
        title=settings.report_title, data=settings.data.as_posix(), stats=stats,
        content_hash=versions.head_hash, changes=None, gates=gates, baseline=None, figures={},
    ).model_copy(update={"data_changed": False})
    markdown = render_unchanged(settings.report_title, settings.data.as_posix(), versions.head_hash,
                                versions.base_ref)
    return Finished(passed=report.passed, report_json=report.model_dump_json(indent=2),
                    render=lambda links, note: markdown, outputs={"data-changed": "false"}, comment=False)


@contextlib.contextmanager
def _dvc(settings: DataStatsSettings, clients: Clients) -> Iterator[DvcRunner | None]:
    """A DVC runner when the repository uses DVC (and the user did not switch it off), with the
    service-account key in a private temp file for exactly as long as DVC runs."""
    runner = clients.dvc
    if settings.dvc_pull == "false" and not settings.compare_base:
        yield None
        return
    if not runner.is_dvc_repo():
        if settings.dvc_pull == "true":
            raise DvcError(
                f"`dvc-pull: true` but {runner.repo} is not a DVC repository (no .dvc folder).",
                hint="Run the step after actions/checkout in a DVC repository, or set `dvc-pull: auto`.",
            )
        yield None
        return
    if settings.gcp_credentials is None:
        yield runner
        return
    from mlgate.gcp import service_account_credentials

    with service_account_credentials(settings.gcp_credentials.get_secret_value(), mask=workflow.mask) as extra:
        yield runner.with_env(extra)


def _should_pull(settings: DataStatsSettings, dvc: DvcRunner, data: str) -> bool:
    if settings.dvc_pull == "false":
        return False
    return settings.dvc_pull == "true" or bool(dvc.tracked_targets(data))


def _base_hash(dvc: DvcRunner, base_sha: str, data: str) -> str | None:
    try:
        return dvc.content_hash(data, rev=base_sha)
    except DvcError as exc:
        workflow.annotate(
            "warning", "No base-branch comparison",
            f"Cannot read {data} at the base commit {base_sha[:12]}: {exc.message} "
            "Check out with `fetch-depth: 0` so the base commit is in the clone.",
        )
        return None


def _cache_key(content_hash: str | None, settings: DataStatsSettings) -> str:
    from mlgate.data.report import SCHEMA_VERSION

    return f"{content_hash}-{settings.layout}-{settings.dataset_class or ''}-v{SCHEMA_VERSION}"


def _label_counts(stats: DatasetStats) -> dict[str, dict[str, int]]:
    return {name: split.label_counts for name, split in stats.splits.items()}


def _open(settings: DataStatsSettings, data_dir: Path, ctx: RunContext) -> Dataset:
    return open_dataset(data_dir, settings.layout, dataset_class=settings.dataset_class, import_root=ctx.workspace)


def _changes(settings: DataStatsSettings, ctx: RunContext, dvc: DvcRunner | None, versions: DataVersions,
             head: DatasetStats, cache: StatsCache) -> Changes | None:
    """Base statistics from a local copy, the cache, or the base revision's data (pulled only then)."""
    if settings.baseline_data is not None:
        base_dir = ctx.in_workspace(settings.baseline_data)
        base_stats, _ = compute_stats(_open(settings, base_dir, ctx), samples_per_class=1)
        return compare(base_stats, head, base_name=settings.baseline_data.as_posix())
    base_sha, base_hash = versions.base_sha, versions.base_hash
    if dvc is None or base_sha is None or base_hash is None:
        return None
    data = settings.data.as_posix()
    files: DataDiff = dvc.diff(base_sha, "HEAD", data)
    cached = cache.get(_cache_key(base_hash, settings))
    if cached is None:
        with tempfile.TemporaryDirectory(prefix="mlgate-base-") as tmp:
            base_dir = dvc.materialize(base_sha, data, Path(tmp))
            cached, _ = compute_stats(_open(settings, base_dir, ctx), samples_per_class=1)
        cache.put(_cache_key(base_hash, settings), cached)
    return compare(cached, head, base_name=versions.base_ref or base_sha[:12], base_hash=base_hash,
                   head_hash=versions.head_hash, files=files)


def _train_baseline(settings: DataStatsSettings, dataset: Dataset, stats: DatasetStats) -> BaselineResult:
    from mlgate.data.baseline import train_baseline
    from mlgate.data.layouts import DatasetLayoutError

    if "train" not in dataset.splits or "test" not in dataset.splits:
        raise DatasetLayoutError(
            f"`baseline-train: true` needs a `train` and a `test` split; found {', '.join(dataset.splits)}.",
            hint="Add a test split to the dataset, or set `baseline-train: false`.",
        )

    def pairs(name: str) -> Iterator[tuple[Tensor, Tensor]]:
        for batch in dataset.splits[name].batches():
            yield batch.images, batch.labels

    labels = [int(label) for split in stats.splits.values() for label in split.label_counts]
    return train_baseline(pairs("train"), pairs("test"), num_classes=max(labels) + 1,
                          time_budget_s=settings.baseline_time_budget)


__all__ = ["DataReport", "run_data_stats"]
