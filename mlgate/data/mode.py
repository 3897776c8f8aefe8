"""``mode: data-stats`` top-down: gather inputs -> compute -> render -> publish."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate import workflow
from mlgate.context import RunContext
from mlgate.data.changes import Changes, compare
from mlgate.data.dvc import DataDiff, DvcError, DvcRunner
from mlgate.data.figure_worker import FigureWorker, Job
from mlgate.data.loaders import Dataset, open_dataset
from mlgate.data.report import DataReport, build_report, render_markdown, render_unchanged
from mlgate.data.stats import DatasetStats, LeakageStats, compute_stats
from mlgate.data.stats_cache import StatsCache
from mlgate.publish import Publication, publish, workspace_relative, write_report_files
from mlgate.settings import DataStatsSettings

if TYPE_CHECKING:
    from torch import Tensor

    from mlgate.data.baseline import BaselineResult


def run_data_stats(settings: DataStatsSettings, ctx: RunContext, env: Mapping[str, str],
                   figure_worker: FigureWorker | None = None) -> int:
    root = ctx.workspace
    data_rel = settings.data.as_posix()
    data_dir = settings.data if settings.data.is_absolute() else root / settings.data
    out_dir = settings.out if settings.out.is_absolute() else root / settings.out
    publication = Publication.for_run(settings, ctx)
    cache = StatsCache(root / settings.cache_dir, publication.publisher, settings.assets_branch)

    with _dvc(settings, root, env) as dvc:
        head_hash = dvc.content_hash(data_rel) if dvc else None
        pr = ctx.pull_request
        base_hash: str | None = None
        if dvc and pr and settings.compare_base and settings.baseline_data is None:
            base_hash = _base_hash(dvc, pr.base_sha, data_rel)
            if base_hash is not None and base_hash == head_hash:
                return _report_unchanged(settings, ctx, publication, cache, head_hash, pr.base_ref, out_dir)
        if dvc and _should_pull(settings, dvc, data_rel):
            dvc.pull(data_rel)
        dataset = _open(settings, data_dir, root)
        stats, samples = compute_stats(dataset, samples_per_class=settings.samples_per_class)
        if head_hash:
            cache.put(_cache_key(head_hash, settings), stats)
        changes = _changes(settings, dvc, pr.base_sha if pr else None, pr.base_ref if pr else "",
                           data_rel, base_hash, head_hash, stats, cache, root)

    from mlgate.data import figures
    from mlgate.data.gates import evaluate_data_gates

    baseline = _train_baseline(settings, dataset, stats) if settings.baseline_train else None
    label_counts = {n: s.label_counts for n, s in stats.splits.items()}
    jobs: dict[str, Job] = {"label_distribution": ("label_distribution", (label_counts,), {})}
    try:
        displays = figures.display_samples(samples, per_class=settings.samples_per_class)
        jobs["sample_grid"] = ("sample_grid_of_displays", (displays, stats.class_names),
                               {"per_class": settings.samples_per_class})
    except figures.CannotDrawFigure as exc:  # feature vectors, not images: no grid, say why
        workflow.annotate("notice", "No sample grid", exc.message)
    histograms = {n: (s.histogram, s.histogram_edges) for n, s in stats.splits.items() if s.histogram}
    if histograms:
        jobs["pixel_histogram"] = ("pixel_histogram", (histograms,), {})
    if baseline is not None:
        jobs["baseline_loss"] = ("loss_curve", (baseline.losses,), {"title": "Sanity baseline: training loss"})
    pngs = (figure_worker or FigureWorker(None)).render(jobs)
    report = build_report(
        title=settings.report_title, data=data_rel, stats=stats, content_hash=head_hash, changes=changes,
        gates=evaluate_data_gates(stats, settings, baseline), baseline=baseline,
        figures={name: f"{name}.png" for name in pngs},
    )

    local_md = render_markdown(report, {name: f"{name}.png" for name in pngs})
    paths = write_report_files(out_dir, local_md, report.model_dump_json(indent=2), pngs)
    cache.flush()
    links, note = publication.host_figures({f"{name}.png": png for name, png in pngs.items()})
    fallback = figures.label_distribution_mermaid(label_counts)
    markdown = render_markdown(
        report, {name: links[f"{name}.png"] for name in pngs if f"{name}.png" in links},
        fallback_chart=fallback, note=note,
    )
    publish(publication, ctx, markdown, outputs={
        "passed": str(report.passed).lower(),
        "report": workspace_relative(paths.markdown, root),
        "report-json": workspace_relative(paths.json, root),
        "data-changed": "" if report.data_changed is None else str(report.data_changed).lower(),
    })
    return 0 if report.passed else 1


def _report_unchanged(
    settings: DataStatsSettings, ctx: RunContext, publication: Publication, cache: StatsCache,
    content_hash: str | None, base_ref: str, out_dir: Path,
) -> int:
    """The data is byte-for-byte the base branch's: one line, no pull, no comment (stay quiet)."""
    from mlgate.data.gates import evaluate_data_gates

    cached = cache.get(_cache_key(content_hash, settings)) if content_hash else None
    stats = cached or DatasetStats(
        layout=settings.layout, class_names=None, splits={},
        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0),
    )
    gates = evaluate_data_gates(stats, settings) if cached else []
    report = build_report(
        title=settings.report_title, data=settings.data.as_posix(), stats=stats, content_hash=content_hash,
        changes=None, gates=gates, baseline=None, figures={},
    ).model_copy(update={"data_changed": False})
    markdown = render_unchanged(settings.report_title, settings.data.as_posix(), content_hash, base_ref)
    paths = write_report_files(out_dir, markdown, report.model_dump_json(indent=2), {})
    publish(publication.without_comment(), ctx, markdown, outputs={
        "passed": str(report.passed).lower(),
        "report": workspace_relative(paths.markdown, ctx.workspace),
        "report-json": workspace_relative(paths.json, ctx.workspace),
        "data-changed": "false",
    })
    return 0 if report.passed else 1


@contextlib.contextmanager
def _dvc(settings: DataStatsSettings, root: Path, env: Mapping[str, str]) -> Iterator[DvcRunner | None]:
    """A DVC runner when the repository uses DVC (and the user did not switch it off), with the
    service-account key in a private temp file for exactly as long as DVC runs."""
    runner = DvcRunner(root, env)
    if settings.dvc_pull == "false" and not settings.compare_base:
        yield None
        return
    if not runner.is_dvc_repo():
        if settings.dvc_pull == "true":
            raise DvcError(
                f"`dvc-pull: true` but {root} is not a DVC repository (no .dvc folder).",
                hint="Run the step after actions/checkout in a DVC repository, or set `dvc-pull: auto`.",
            )
        yield None
        return
    if settings.gcp_credentials is None:
        yield runner
        return
    from mlgate.gcp import service_account_credentials

    with service_account_credentials(settings.gcp_credentials.get_secret_value(), mask=workflow.mask) as extra:
        yield DvcRunner(root, {**env, **extra})


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


def _open(settings: DataStatsSettings, data_dir: Path, root: Path) -> Dataset:
    return open_dataset(data_dir, settings.layout, dataset_class=settings.dataset_class, import_root=root)


def _changes(
    settings: DataStatsSettings, dvc: DvcRunner | None, base_sha: str | None, base_ref: str, data: str,
    base_hash: str | None, head_hash: str | None, head: DatasetStats, cache: StatsCache, root: Path,
) -> Changes | None:
    """Base statistics from a local copy, the cache, or the base revision's data (pulled only then)."""
    if settings.baseline_data is not None:
        base_dir = settings.baseline_data if settings.baseline_data.is_absolute() else root / settings.baseline_data
        base_stats, _ = compute_stats(_open(settings, base_dir, root), samples_per_class=1)
        return compare(base_stats, head, base_name=settings.baseline_data.as_posix())
    if dvc is None or base_sha is None or base_hash is None:
        return None
    files: DataDiff = dvc.diff(base_sha, "HEAD", data)
    cached = cache.get(_cache_key(base_hash, settings))
    if cached is None:
        with tempfile.TemporaryDirectory(prefix="mlgate-base-") as tmp:
            base_dir = dvc.materialize(base_sha, data, Path(tmp))
            cached, _ = compute_stats(_open(settings, base_dir, root), samples_per_class=1)
        cache.put(_cache_key(base_hash, settings), cached)
    return compare(cached, head, base_name=base_ref or base_sha[:12], base_hash=base_hash,
                   head_hash=head_hash, files=files)


def _train_baseline(settings: DataStatsSettings, dataset: Dataset, stats: DatasetStats) -> BaselineResult:
    from mlgate.data.baseline import train_baseline
    from mlgate.data.loaders import DatasetLayoutError

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
