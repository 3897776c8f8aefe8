"""``mode: data-stats``: which data versions -> measure -> report -> finish.

:func:`run_data_stats` reads top-down; each step is a function below it, in the order it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate import workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.data.annotations import dvc_annotations
from mlgate.data.baseline import train_baseline
from mlgate.data.changes import Changes, compare
from mlgate.data.drift import compute_drift
from mlgate.data.dvc import DataDiff, DvcError, DvcRunner, repo_relative
from mlgate.data.findings import FOLDER as FINDINGS_FOLDER
from mlgate.data.findings import FullList, full_lists
from mlgate.data.findings import Measured as FindingsOf
from mlgate.data.gates import UNITS, DataGateThresholds, evaluate_data_gates, evaluate_drift_gates
from mlgate.data.label_errors import find_label_errors
from mlgate.data.layouts import Dataset, DatasetLayoutError, open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.pull import dvc_session, pull_if_tracked, stream_source
from mlgate.data.report import (
    FIGURE_TITLES,
    SCHEMA_VERSION,
    DataReport,
    build_report,
    data_outcome,
    render_markdown,
    render_unchanged,
    unchanged_outcome,
)
from mlgate.data.shard_cache import FileDigests, ShardCache
from mlgate.data.shards import worker_count
from mlgate.data.stats import DatasetStats, LeakageStats, LeakedPixels, compute_stats
from mlgate.data.stats_cache import StatsCache, fetch_from_branch, publish_to_branch
from mlgate.data.stream import open_for_nodes, open_streamed_imagefolder
from mlgate.errors import ExitCode
from mlgate.figures.distributions import label_distribution_mermaid
from mlgate.figures.images import CannotDrawFigure, display_images
from mlgate.figures.samples import display_samples
from mlgate.figures.worker import (
    DriftOverlay,
    FigureJob,
    FigureWorker,
    LabelDistribution,
    LabelErrorGrid,
    LeakedPairs,
    LossCurve,
    NearGroups,
    PixelHistogram,
    SampleGrid,
)
from mlgate.publish import Finished, Publication, finish, workspace_relative
from mlgate.report_blocks import check_summary, plain_text
from mlgate.settings import DataStatsSettings, DvcInputs, Layout, Workers

if TYPE_CHECKING:
    from torch import Tensor

    from mlgate.data.baseline import BaselineResult
    from mlgate.data.drift import DriftReport
    from mlgate.data.label_errors import LabelErrors, LabelErrorsFound
    from mlgate.data.shards import Engine
    from mlgate.data.stream import RemoteData


@dataclasses.dataclass(frozen=True)
class DataInputs:
    """Which data is read and how: ``data``, ``layout``, ``dataset-class``, and the local copy to compare
    with, ``baseline-data`` (the statistics cache's keys name the layout and class too)."""

    data: Path
    layout: Layout
    dataset_class: str | None
    baseline_data: Path | None


@dataclasses.dataclass(frozen=True)
class ComputeInputs:
    """How the statistics pass runs: ``workers`` processes here or ``engine: ray`` at ``ray-address``,
    keeping ``samples-per-class`` images for the sample grid; ``near-duplicate-distance`` for the
    near-duplicate search, which ``engine: ray`` runs while connected to the cluster."""

    samples_per_class: int
    workers: Workers
    engine: str
    ray_address: str | None
    near_duplicate_distance: float


@dataclasses.dataclass(frozen=True)
class CacheInputs:
    """Where statistics are cached: ``cache-dir`` on the runner, ``assets-branch`` in the repository."""

    cache_dir: Path
    assets_branch: str


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
    base: DatasetStats | None = None
    """The statistics ``changes`` compares with, for the base-vs-head figures."""
    leaked: list[LeakedPixels] = dataclasses.field(default_factory=list)
    """The first leaked items with their pixels, for the picture of leaked pairs."""
    near: NearDuplicateFinder | None = None
    """Every item's thumbnail, for the near-duplicate search (``stats.near_duplicates`` once it ran)."""

    @functools.cached_property
    def drift(self) -> DriftReport:
        """Drift against the base (when compared) and of each split against train, for the report and figure."""

        return compute_drift(self.stats, self.base, self.changes.base if self.changes else None)


def run_data_stats(settings: DataStatsSettings, ctx: RunContext, clients: Clients,
                   figure_worker: FigureWorker | None = None) -> ExitCode:
    data = DataInputs(settings.data, settings.layout, settings.dataset_class, settings.baseline_data)
    compute = ComputeInputs(settings.samples_per_class, settings.workers, settings.engine, settings.ray_address,
                            settings.near_duplicate_distance)
    caching = CacheInputs(settings.cache_dir, settings.assets_branch)
    thresholds = DataGateThresholds.model_validate(settings.model_dump(include=set(DataGateThresholds.model_fields)))
    dvc_inputs = DvcInputs.model_validate(settings.model_dump(include=set(DvcInputs.model_fields)))
    title = settings.report_title

    publication = Publication.for_run(settings, ctx, clients)
    with dvc_session(dvc_inputs, clients.dvc, needed=settings.compare_base) as dvc:
        versions = _versions(data, settings.compare_base, ctx, dvc)
        cache = _gather_cached(data, caching, ctx, versions, publication)
        measured = None if versions.unchanged else _measure(data, compute, dvc_inputs, ctx, dvc, versions, cache)
    if measured is None:
        return finish(_unchanged(title, data, thresholds, versions, cache), publication, ctx)
    worker = figure_worker or FigureWorker(None)
    worker.send(_figure_jobs(compute.samples_per_class, measured))  # drawn on the other core while the searches run
    if measured.near is not None:
        with workflow.phase("Searching for near-duplicates"):
            measured.stats.near_duplicates = measured.near.result(settings.near_duplicate_distance)
        measured = dataclasses.replace(measured, near=None)  # its per-item columns are spent: not held to the end
    if versions.head_hash:
        cache.put(_cache_key(versions.head_hash, data), measured.stats)
    baseline = label_errors = None
    if settings.baseline_train:
        started = time.perf_counter()
        with workflow.phase("Training the sanity baseline"):
            baseline = _train_baseline(settings.baseline_time_budget, measured.dataset, measured.stats)
        with workflow.phase("Looking for likely label errors"):
            label_errors = _find_label_errors(measured.dataset, measured.stats,
                                              settings.baseline_time_budget - (time.perf_counter() - started))
    with workflow.phase("Drawing the figures"):
        drawn = worker.render(_late_figure_jobs(measured, baseline, label_errors))
        figures = {name: drawn[name] for name in FIGURE_TITLES if name in drawn}
    files, lists = full_lists(FindingsOf(measured.stats, label_errors.flagged if label_errors else None))
    report = _report(title, data.data, thresholds, versions, measured, baseline, figures,
                     label_errors=label_errors.result if label_errors else None, full_lists=lists)
    if report.data_changed is None and ctx.pull_request is not None:
        report = report.model_copy(update={"data_changed": _changed_in_git(
            ctx.in_workspace(data.data, "data"), ctx.pull_request.base_sha)})
    _publish_cached(caching.assets_branch, cache, publication)
    findings_dir = workspace_relative(publication.out_dir / FINDINGS_FOLDER, ctx.workspace)
    return finish(_finished(report, figures, _label_counts(measured.stats), dvc=clients.dvc, files=files,
                            findings_dir=findings_dir), publication, ctx)


def _changed_in_git(data: Path, base_sha: str) -> bool:
    """Whether git sees ``data`` differ between the pull request's base and HEAD, for the `data-changed`
    output when DVC could not say (data that DVC does not track, ``compare-base: false``, data new on
    this branch). True when git cannot show the base (a shallow checkout): unchanged is not proven."""

    done = subprocess.run(["git", "diff", "--quiet", base_sha, "HEAD", "--", data.name, f"{data.name}.dvc"],
                          cwd=data.parent, capture_output=True, check=False, timeout=120)
    return done.returncode != 0


def _versions(inputs: DataInputs, compare_base: bool, ctx: RunContext, dvc: DvcRunner | None) -> DataVersions:
    """Content hashes, without downloading: equal hashes mean the pull request leaves the data alone."""
    data = inputs.data.as_posix()
    head_hash = dvc.content_hash(data) if dvc else None
    pr = ctx.pull_request
    if dvc is None or pr is None or not compare_base or inputs.baseline_data is not None:
        return DataVersions(head_hash)
    return DataVersions(head_hash, _base_hash(dvc, pr.base_sha, data), pr.base_sha, pr.base_ref)


def _gather_cached(data: DataInputs, caching: CacheInputs, ctx: RunContext, versions: DataVersions,
                   publication: Publication) -> StatsCache:
    """The statistics cache, with the entries for this data and its base read from the assets branch
    now, while gathering the inputs: measuring never touches GitHub."""
    keys = [_cache_key(h, data) for h in (versions.head_hash, versions.base_hash) if h]
    return StatsCache(ctx.in_workspace(caching.cache_dir, "cache-dir"),
                      fetch_from_branch(publication.branch_store, caching.assets_branch, keys))


def _publish_cached(assets_branch: str, cache: StatsCache, publication: Publication) -> None:
    """Put the statistics this run computed on the assets branch (publishing, beside ``finish()``)."""
    publish_to_branch(publication.branch_store, assets_branch, cache.pending)


def _measure(inputs: DataInputs, compute: ComputeInputs, dvc_inputs: DvcInputs, ctx: RunContext,
             dvc: DvcRunner | None, versions: DataVersions, cache: StatsCache) -> Measured:
    """Pull the data, compute its statistics (the states of unchanged shards read from ``cache-dir``)
    and compare with the base."""
    data = inputs.data.as_posix()
    on_nodes = _read_on_nodes(inputs, compute, dvc_inputs, dvc)
    streaming = (dvc_inputs.dvc_pull == "stream" or on_nodes) and dvc is not None
    if not streaming:
        pull_if_tracked(dvc_inputs, dvc, inputs.data, "data")
    data_dir = ctx.in_workspace(inputs.data, "data")
    shards = ShardCache(cache.folder, FileDigests(data_dir, _manifest(dvc, data_dir)))
    reading = (f"Reading {data} from the DVC remote on the Ray nodes" if on_nodes
               else f"Streaming {data} from the DVC remote" if streaming else f"Reading {data}")
    with _engine(compute) as engine:
        with workflow.phase(f"{reading} and computing its statistics"):
            if streaming:
                assert dvc is not None
                dataset = _remote_dataset(stream_source(dvc_inputs, dvc, inputs.data, "data"), inputs, on_nodes)
            else:
                dataset = _open(inputs, data_dir, ctx)
            near: NearDuplicateFinder | None = NearDuplicateFinder() if engine is None else _cluster_finder()
            stats, samples, leaked = compute_stats(dataset, samples_per_class=compute.samples_per_class,
                                                   progress=_items_read(), near_duplicates=near,
                                                   workers=_workers(compute), shard_cache=shards, engine=engine)
            _log_shards(shards)
        if engine is not None:  # its thumbnails may be on the cluster: searched while connected
            with workflow.phase("Searching for near-duplicates"):
                stats.near_duplicates = near.result(compute.near_duplicate_distance) if near else stats.near_duplicates
            near = None
        base = inputs.baseline_data.as_posix() if inputs.baseline_data else None
        if base is None and dvc is not None and versions.base_hash is not None:
            base = versions.base_ref or versions.base_sha
        with workflow.phase(f"Comparing with {base}") if base else contextlib.nullcontext():
            changes, base_stats = _changes(inputs, compute, dvc_inputs, ctx, dvc, versions, stats, cache, engine)
    shards.prune()
    return Measured(dataset, stats, samples, changes, base_stats, leaked, near)


def _read_on_nodes(inputs: DataInputs, compute: ComputeInputs, dvc_inputs: DvcInputs, dvc: DvcRunner | None) -> bool:
    """Whether the Ray nodes read ``data`` from the DVC remote themselves (``engine: ray`` and DVC tracks it,
    ``dvc-pull`` not `false`): this runner then lists the files and pulls nothing. A user's Dataset class is
    reduced on this runner (its objects need not cross to a node), so it is pulled as with `engine: local`."""
    if compute.engine != "ray" or dvc is None or dvc_inputs.dvc_pull == "false" or inputs.dataset_class:
        return False
    rel = repo_relative(inputs.data, dvc.repo)
    return dvc_inputs.dvc_pull in ("true", "stream") or (rel is not None and bool(dvc.tracked_targets(rel)))


def _remote_dataset(source: RemoteData, inputs: DataInputs, on_nodes: bool) -> Dataset:
    """``source`` read from the DVC remote: by the Ray nodes with their own identity, or streamed here."""
    return open_for_nodes(source, inputs.layout) if on_nodes else open_streamed_imagefolder(source)


def _cluster_finder() -> NearDuplicateFinder:
    """The near-duplicate finder of ``engine: ray``: the search runs on the cluster when the shards'
    thumbnails stayed there (:mod:`mlgate.data.ray_near_duplicates`)."""
    # local: the ray engine is optional; the local engine never loads it
    from mlgate.data.ray_near_duplicates import ClusterNearDuplicateFinder

    return ClusterNearDuplicateFinder()


def _manifest(dvc: DvcRunner | None, data_dir: Path) -> dict[str, str] | None:
    """DVC's md5 of every file of the data folder (its ``.dir`` listing), for the shard cache's keys."""
    if dvc is None:
        return None
    try:
        return dvc.manifest(data_dir.resolve().relative_to(dvc.repo.resolve()).as_posix())
    except (DvcError, ValueError):  # ValueError: a folder outside the repository
        return None


def _log_shards(shards: ShardCache) -> None:
    """Say what the shard cache served and every entry it refused (recomputed, never trusted)."""

    print(plain_text(f"  {shards.summary()}"), flush=True)
    if shards.refused:
        workflow.annotate("warning", "Shard cache entries recomputed",
                          f"{len(shards.refused)} entr{'y' if len(shards.refused) == 1 else 'ies'} in "
                          f"{shards.folder} could not be trusted and were recomputed: "
                          + "; ".join(shards.refused[:5]) + (" …" if len(shards.refused) > 5 else ""))


def _workers(compute: ComputeInputs) -> int:
    return worker_count(compute.workers)


@contextlib.contextmanager
def _engine(compute: ComputeInputs) -> Iterator[Engine | None]:
    """The Ray cluster for ``engine: ray`` (Ray imported only then); None: this machine's workers."""
    if compute.engine != "ray":
        yield None
        return
    # local: the ray engine is optional; the local engine never loads it
    from mlgate.data.ray_engine import connect

    assert compute.ray_address is not None  # the settings require it with engine: ray
    with connect(compute.ray_address) as engine:
        yield engine


def _items_read() -> Callable[[int, int], None]:
    return workflow.rate("items read")


def _figure_jobs(samples_per_class: int, measured: Measured) -> dict[str, FigureJob]:
    """The figures of the statistics pass, drawn while the searches and the baseline run."""

    stats, base = measured.stats, measured.base
    base_name = measured.changes.base if measured.changes else "base"
    jobs: dict[str, FigureJob] = {"label_distribution": LabelDistribution(
        _label_counts(stats), base_counts=_label_counts(base) if base else None, base_name=base_name)}
    try:
        displays = display_samples(measured.samples, per_class=samples_per_class)
        sample_split = "train" if "train" in measured.dataset.splits else next(iter(measured.dataset.splits), "")
        jobs["sample_grid"] = SampleGrid(displays, stats.class_names, samples_per_class, sample_split)
    except CannotDrawFigure as exc:  # feature vectors, not images: no grid, say why
        workflow.annotate("notice", "No sample grid", exc.message)
    histograms = {n: (s.histogram, s.histogram_edges) for n, s in stats.splits.items() if s.histogram}
    if histograms:
        base_histograms = {n: (s.histogram, s.histogram_edges) for n, s in base.splits.items() if s.histogram} \
            if base else None
        jobs["pixel_histogram"] = PixelHistogram(histograms, items={n: s.count for n, s in stats.splits.items()},
                                                 base=base_histograms, base_name=base_name)
    if measured.leaked:
        with contextlib.suppress(CannotDrawFigure):  # not images: the sample grid's notice said so
            jobs["leaked_pairs"] = LeakedPairs(
                display_images([leak.image for leak in measured.leaked]),
                [(leak.split, leak.item, leak.label, leak.train_item, leak.train_label) for leak in measured.leaked],
                stats.class_names, stats.leakage.train_test_exact_duplicates)
    if base is not None and measured.drift.splits:
        compared = {name: stats.splits[name] for name in measured.drift.splits}
        jobs["drift_overlay"] = DriftOverlay(
            histograms={n: (s.histogram, s.histogram_edges) for n, s in compared.items() if s.histogram},
            base_histograms={n: (base.splits[n].histogram, base.splits[n].histogram_edges) for n in compared
                             if base.splits[n].histogram},
            label_counts={n: s.label_counts for n, s in compared.items()},
            base_counts={n: base.splits[n].label_counts for n in compared},
            ks={n: (d.pixels.ks, d.pixels.ks_at) for n, d in measured.drift.splits.items() if d.pixels},
            tvd={n: d.labels.tvd for n, d in measured.drift.splits.items() if d.labels},
            base_name=base_name)
    return jobs


def _late_figure_jobs(measured: Measured, baseline: BaselineResult | None,
                      label_errors: LabelErrorsFound | None) -> dict[str, FigureJob]:
    """The figures of what ran after the statistics pass: near-duplicates, baseline, label errors."""
    jobs: dict[str, FigureJob] = {}
    if measured.stats.near_duplicates.pictured:
        jobs["near_groups"] = _near_groups_job(measured.stats)
    if baseline is not None:
        title = (f"Sanity baseline: training loss of a {baseline.model}\n"
                 f"train split, {baseline.train_samples:,} items, {baseline.epochs} epochs, {baseline.steps:,} steps")
        jobs["baseline_loss"] = LossCurve(baseline.losses, title=title, step_every=baseline.log_every)
    if label_errors is not None:
        jobs.update(_label_error_jobs(measured, label_errors))
    return jobs


def _near_groups_job(stats: DatasetStats) -> NearGroups:
    """The picture of near-leaked items beside their closest train item, or (when nothing leaked) of the
    largest near-duplicate groups within a split."""

    near = stats.near_duplicates
    shown = near.pictured
    leaked = bool(near.near_leaked)
    total = near.near_leaked if leaked else sum(g.total for g in near.within.values() if g.total)
    return NearGroups(
        display_images([image for group in shown for image in group.images]),
        [(tuple(group.members), group.distance, group.size) for group in shown],
        stats.class_names, total, leaked, near.threshold)


def _report(title: str, data: Path, thresholds: DataGateThresholds, versions: DataVersions, measured: Measured,
            baseline: BaselineResult | None, figures: Mapping[str, bytes], *,
            label_errors: LabelErrors | None = None, full_lists: list[FullList] | None = None) -> DataReport:
    return build_report(
        title=title, data=data.as_posix(), stats=measured.stats,
        content_hash=versions.head_hash, changes=measured.changes,
        gates=evaluate_data_gates(measured.stats, thresholds, baseline)
        + evaluate_drift_gates(measured.drift, thresholds), baseline=baseline,
        figures={name: f"{name}.png" for name in figures}, drift=measured.drift, label_errors=label_errors,
        full_lists=full_lists,
    )


def _finished(report: DataReport, figures: Mapping[str, bytes], label_counts: dict[str, dict[str, int]], *,
              dvc: DvcRunner | None = None, files: Mapping[str, bytes] | None = None,
              findings_dir: str = "") -> Finished:

    fallback = label_distribution_mermaid(label_counts)  # shown when the figures cannot be hosted
    return Finished(
        passed=report.passed, report_json=report.model_dump_json(indent=2), figures=figures,
        render=lambda links, note: render_markdown(report, links, fallback_chart=fallback, note=note),
        outputs={"data-changed": "" if report.data_changed is None else str(report.data_changed).lower(),
                 "findings-dir": findings_dir if files else ""},
        files=files or {},
        headline=data_outcome(report),
        check_summary=check_summary(data_outcome(report), report.gates, UNITS), gated=bool(report.gates),
        annotations=dvc_annotations(report, dvc) if dvc is not None else (),
    )


def _unchanged(title: str, inputs: DataInputs, thresholds: DataGateThresholds, versions: DataVersions,
               cache: StatsCache) -> Finished:
    """The data is byte-for-byte the base branch's: one line, no pull, and no new comment (an existing
    one is edited to say so, its old numbers folded away)."""
    data = inputs.data.as_posix()
    cached = cache.get(_cache_key(versions.head_hash, inputs)) if versions.head_hash else None
    stats = cached or DatasetStats(
        layout=inputs.layout, class_names=None, splits={},
        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0),
    )
    gates = evaluate_data_gates(stats, thresholds) + evaluate_drift_gates(None, thresholds, unchanged=True) \
        if cached else []
    report = build_report(
        title=title, data=data, stats=stats,
        content_hash=versions.head_hash, changes=None, gates=gates, baseline=None, figures={},
    ).model_copy(update={"data_changed": False})
    markdown = render_unchanged(title, data, versions.head_hash, versions.base_ref, gates)
    return Finished(passed=report.passed, report_json=report.model_dump_json(indent=2),
                    render=lambda links, note: markdown, outputs={"data-changed": "false"},
                    comment="update-existing", gated=bool(gates),
                    headline=unchanged_outcome(data, versions.head_hash, versions.base_ref, gates))


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


def _cache_key(content_hash: str | None, data: DataInputs) -> str:
    return f"{content_hash}-{data.layout}-{data.dataset_class or ''}-v{SCHEMA_VERSION}"


def _label_counts(stats: DatasetStats) -> dict[str, dict[str, int]]:
    # an empty split has no shares to draw; the report's findings say it is empty
    return {name: split.label_counts for name, split in stats.splits.items() if split.count}


def _open(data: DataInputs, data_dir: Path, ctx: RunContext) -> Dataset:
    return open_dataset(data_dir, data.layout, dataset_class=data.dataset_class, import_root=ctx.workspace)


def _changes(inputs: DataInputs, compute: ComputeInputs, dvc_inputs: DvcInputs, ctx: RunContext,
             dvc: DvcRunner | None, versions: DataVersions, head: DatasetStats, cache: StatsCache,
             engine: Engine | None = None) -> tuple[Changes | None, DatasetStats | None]:
    """Base statistics from a local copy, the cache, or the base revision's data (pulled only then),
    and what changed against them."""
    if inputs.baseline_data is not None:
        base_dir = ctx.in_workspace(inputs.baseline_data, "baseline-data")
        base_stats = compute_stats(_open(inputs, base_dir, ctx), samples_per_class=1,
                                   workers=_workers(compute), progress=_items_read(), engine=engine)[0]
        return compare(base_stats, head, base_name=inputs.baseline_data.as_posix()), base_stats
    base_sha, base_hash = versions.base_sha, versions.base_hash
    if dvc is None or base_sha is None or base_hash is None:
        return None, None
    data = inputs.data.as_posix()
    files: DataDiff = dvc.diff(base_sha, "HEAD", data)
    cached = cache.get(_cache_key(base_hash, inputs))
    if cached is None:
        cached = _base_stats(inputs, compute, dvc_inputs, ctx, dvc, base_sha, engine)
        cache.put(_cache_key(base_hash, inputs), cached)
    return compare(cached, head, base_name=versions.base_ref or base_sha[:12], base_hash=base_hash,
                   head_hash=versions.head_hash, files=files), cached


def _base_stats(inputs: DataInputs, compute: ComputeInputs, dvc_inputs: DvcInputs, ctx: RunContext,
                dvc: DvcRunner, base_sha: str, engine: Engine | None) -> DatasetStats:
    """Statistics of the data at the base commit: streamed from the DVC remote (`dvc-pull: stream`) or read
    from it by the Ray nodes (``engine: ray``), else downloaded to a temporary folder (``dvc get``) and read there."""
    on_nodes = _read_on_nodes(inputs, compute, dvc_inputs, dvc)
    if dvc_inputs.dvc_pull == "stream" or on_nodes:
        base = _remote_dataset(stream_source(dvc_inputs, dvc, inputs.data, "data", rev=base_sha), inputs, on_nodes)
        return compute_stats(base, samples_per_class=1, workers=_workers(compute), progress=_items_read(),
                             engine=engine)[0]
    with tempfile.TemporaryDirectory(prefix="mlgate-base-") as tmp:
        base_dir = dvc.materialize(base_sha, inputs.data.as_posix(), Path(tmp))
        return compute_stats(_open(inputs, base_dir, ctx), samples_per_class=1,
                             workers=_workers(compute), progress=_items_read(), engine=engine)[0]


BASELINE_SHARE = 0.75
"""Share of ``baseline-time-budget`` the sanity baseline may train for; the label-error pass gets what is
left after it (all but the baseline's few seconds on most datasets, a quarter at least)."""


def _train_baseline(time_budget_s: float, dataset: Dataset, stats: DatasetStats) -> BaselineResult:
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
                          time_budget_s=time_budget_s * BASELINE_SHARE)


def _find_label_errors(dataset: Dataset, stats: DatasetStats, budget_s: float) -> LabelErrorsFound:
    """Likely label errors in train, in what is left of ``baseline-time-budget`` after the baseline."""

    def batches() -> Iterator[tuple[Tensor, Tensor, tuple[str, ...] | None]]:
        for batch in dataset.splits["train"].batches():
            yield batch.images, batch.labels, batch.ids

    labels = [int(label) for split in stats.splits.values() for label in split.label_counts]
    return find_label_errors(batches(), num_classes=max(labels) + 1, time_budget_s=max(budget_s, 0.0))


def _label_error_jobs(measured: Measured, found: LabelErrorsFound) -> dict[str, FigureJob]:
    """The grid of the first flagged items, given label -> suggested; none for items that are not images."""

    result = found.result
    if not found.pixels:
        return {}
    try:
        images = display_images(found.pixels)
    except CannotDrawFigure:  # feature vectors: the table says it all
        return {}
    errors = [(e.item, e.label, e.suggested, e.confidence) for e in result.items[:len(images)]]
    return {"label_errors": LabelErrorGrid(images, errors, measured.stats.class_names, result.flagged, result.split)}


__all__ = ["DataReport", "run_data_stats"]
