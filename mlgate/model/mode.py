"""``mode: model-gate``: fetch -> measure -> gate -> act -> finish.

:func:`run_model_gate` reads top-down; each step is a function below it, in the order it runs.
Promotion itself (what passing or failing earns) lives in :mod:`mlgate.model.promote`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate import workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.errors import ExitCode, MlgateError
from mlgate.model.promote import act, check_action
from mlgate.model.registry import ModelRegistry, ModelVersion, same_version
from mlgate.model.target import ModelTarget, resolve_target
from mlgate.publish import Finished, Publication, finish
from mlgate.settings import ModelGateSettings

if TYPE_CHECKING:  # measuring imports torch: refused inputs never need it
    from mlgate.data.dvc import DvcRunner
    from mlgate.model.comparison import Comparison, Uncertainty
    from mlgate.model.generalisation import Generalisation
    from mlgate.model.lineage import DataLineage
    from mlgate.model.loading import LoadedModel
    from mlgate.model.measure.inputs import ModelInput
    from mlgate.model.measure.values import ModelMeasurement
    from mlgate.model.report import Action, ModelReport


@dataclasses.dataclass(frozen=True)
class Measured:
    """The candidate (and the production model, when there is one) measured in the same run."""

    candidate: ModelMeasurement
    candidate_version: ModelVersion | None
    """None for a model file in the workspace."""
    format: str
    production: ModelMeasurement | None = None
    production_version: ModelVersion | None = None
    generalisation: Generalisation | None = None
    """The candidate's accuracy on a sample of train next to eval (eval-data with a train split)."""


def run_model_gate(settings: ModelGateSettings, ctx: RunContext, clients: Clients) -> ExitCode:
    # everything that can be refused is refused before a byte is downloaded or measured
    target = resolve_target(settings.model, settings.registry, ctx.event_name, ctx.event, ctx.workspace)
    if target.is_local:
        ctx.in_workspace(Path(target.model), "model")  # a model file: inside the workspace, symlinks followed
    publication = Publication.for_run(settings, ctx, clients)
    check_action(settings, target, publication)
    registry = clients.registry(settings, clients.env) if not target.is_local or target.collection else None
    measured = _measure(settings, ctx, target, registry, clients.dvc)
    lineage = _lineage(settings, ctx, registry, measured.candidate_version, clients.dvc)
    report = _report(settings, target, measured)
    report = _with_lineage_and_gap(settings, report, lineage, measured.generalisation)
    with workflow.phase("Drawing the figures"):
        figures = _figures(settings, report, measured)
    failure: MlgateError | None = None
    try:
        action = act(settings, report, target, measured.candidate_version, registry, publication, figures,
                     compared_with=measured.production_version)
    except MlgateError as exc:  # a refused promotion still publishes the measurements, then fails the step
        failure = exc
        action = _refused(settings, exc)
    code = finish(_finished(report.model_copy(update={"action": action}), figures), publication, ctx)
    if failure is not None:
        raise failure
    return code


def _measure(settings: ModelGateSettings, ctx: RunContext, target: ModelTarget,
             registry: ModelRegistry | None, dvc: DvcRunner) -> Measured:
    """Read the eval data, download and load the candidate and production models, check that they
    take the input shape, then time them interleaved."""
    from mlgate.model.loading import load_model
    from mlgate.model.measure.run import MeasureOptions, measure_model

    root = ctx.workspace
    eval_batches, model_input = _eval_data(settings, ctx, dvc)  # a data mismatch fails before any download
    with tempfile.TemporaryDirectory(prefix="mlgate-model-") as tmp:
        with workflow.phase(f"Loading the model {target.model}"):
            candidate_version, candidate_path = _fetch(target.model, target.is_local, registry, root, Path(tmp) / "c")
            candidate = _load(load_model, candidate_path, candidate_version, settings, root)
            production_version = _production(settings, target, candidate_version, registry)
            production = None
            if production_version is not None:
                _, production_path = _fetch(production_version.name, False, registry, root, Path(tmp) / "p")
                production = _load(load_model, production_path, production_version, settings, root)
        input_shape = _fit_input(settings, model_input, eval_batches, candidate, production, production_version)
        options = MeasureOptions(
            input_shape=input_shape, predictions=settings.predictions, batch_sizes=settings.batch_size_list,
            max_eval_samples=settings.max_eval_samples, robustness_eps=settings.robustness_eps,
            threads=settings.threads,
        )
        with workflow.phase("Benchmarking" + (f" against {production_version.name}" if production_version else "")):
            try:
                measured, measured_production = measure_model(candidate, options, eval_data=eval_batches,
                                                              baseline=production, progress=workflow.progress())
            except ArithmeticError as exc:  # a 0 or an overflow in the numbers measured: say which inputs matter
                from mlgate.model.measure.values import BenchmarkError

                raise BenchmarkError(
                    f"Measuring {target.model} failed: {type(exc).__name__}: {exc}.",
                    hint="Check the inputs that size the benchmark: `batch-sizes` (positive integers), "
                    "`predictions`, `input-shape` and `max-eval-samples`, and that the eval data is not empty.",
                ) from exc
        generalisation = _generalisation(settings, ctx, candidate, input_shape, eval_batches, measured)
    return Measured(measured, candidate_version, candidate.format, measured_production,
                    production_version if measured_production is not None else None, generalisation=generalisation)


def _report(settings: ModelGateSettings, target: ModelTarget, measured: Measured) -> ModelReport:
    from mlgate.model.gates import GateThresholds, evaluate_gates
    from mlgate.model.measure.environment import environment
    from mlgate.model.report import Baseline, build_report

    thresholds = GateThresholds.model_validate(settings.model_dump(include=set(GateThresholds.model_fields)))
    baseline = None
    if measured.production is not None and measured.production_version is not None:
        baseline = Baseline.of(measured.production_version.name, settings.promote_alias,
                               measured.candidate, measured.production)
    comparison, uncertainty = _significance(settings, measured)
    return build_report(
        title=settings.report_title,
        model=measured.candidate_version.name if measured.candidate_version else target.model,
        format=measured.format, collection=target.collection, measurement=measured.candidate,
        gates=evaluate_gates(measured.candidate, thresholds, measured.production,
                             tested=comparison if settings.gate_significance is not None else None),
        baseline=baseline, environment=environment(settings.threads), comparison=comparison, uncertainty=uncertainty,
    )


def _significance(settings: ModelGateSettings, measured: Measured) -> tuple[Comparison | None, Uncertainty | None]:
    """Paired tests against production (when there is one) and the candidate's own intervals, at the
    confidence ``gate-significance`` implies (95 % without it)."""
    from mlgate.model.comparison import compare, confidence_for, uncertainty

    confidence = confidence_for(settings.gate_significance)
    comparison = None
    if measured.production is not None:
        comparison = compare(measured.candidate, measured.production, confidence)
    return comparison, uncertainty(measured.candidate, confidence)


def _figures(settings: ModelGateSettings, report: ModelReport, measured: Measured | None = None) -> dict[str, bytes]:
    """The confusion matrix and, with a production model, the per-class accuracy change, the flipped
    items (pixels from ``measured``) and the confusion-matrix difference."""
    if not report.confusion:
        return {}
    from mlgate.figures.worker import AccuracyDelta, ConfusionMatrix, FigureJob, render_jobs

    jobs: dict[str, FigureJob] = {
        "confusion_matrix": ConfusionMatrix(report.confusion, model=report.model, split=settings.eval_split),
    }
    b = report.baseline
    if b is not None and b.per_class_accuracy and report.per_class_accuracy:
        overall = (report.accuracy, b.accuracy) if report.accuracy is not None and b.accuracy is not None else None
        jobs["per_class_accuracy_change"] = AccuracyDelta(
            report.per_class_accuracy, b.per_class_accuracy, candidate_name=report.model, production_name=b.model,
            split=settings.eval_split, eval_samples=report.eval_samples, overall=overall)
    jobs.update(_change_figures(settings, report, measured))
    return render_jobs(jobs)


def _change_figures(settings: ModelGateSettings, report: ModelReport, measured: Measured | None) -> dict[str, Any]:
    """What changed against production: the flipped items and the confusion-matrix difference."""
    agreement = report.comparison.agreement if report.comparison is not None else None
    if agreement is None or report.baseline is None:
        return {}
    from mlgate.figures.worker import ConfusionDifference, FlippedExamples

    names = {"candidate_name": report.model, "production_name": report.baseline.model}
    jobs: dict[str, Any] = {"confusion_matrix_change": ConfusionDifference(
        agreement.confusion_difference, split=settings.eval_split, eval_samples=agreement.items, **names)}
    items = measured.candidate.items if measured is not None else None
    if items is not None and (agreement.production_only_right or agreement.candidate_only_right):
        from mlgate.figures.data import CannotDrawFigure, display_images

        try:
            images = display_images([flip.pixels for flip in items.flips])
        except CannotDrawFigure as exc:
            workflow.annotate("notice", "Figure flipped_items left out", exc.message)
            return jobs
        jobs["flipped_items"] = FlippedExamples(
            images, [(f.item, f.label, f.production, f.candidate) for f in items.flips],
            lost=agreement.production_only_right, gained=agreement.candidate_only_right,
            split=settings.eval_split, **names)
    return jobs


def _refused(settings: ModelGateSettings, exc: MlgateError) -> Action:
    from mlgate.model.report import Action

    return Action(on_pass=settings.on_pass, result=f"❌ {exc.title}: {exc.message}")


def _finished(report: ModelReport, figures: Mapping[str, bytes]) -> Finished:
    from mlgate.model.report import model_outcome, render_markdown

    action = report.action
    assert action is not None
    return Finished(
        passed=report.passed, report_json=report.model_dump_json(indent=2), figures=figures,
        render=lambda links, note: render_markdown(report, links, note=note),
        outputs={
            "model": report.model,
            "latency-p95-ms": f"{report.latency_ms.p95:.4f}",
            "accuracy": "" if report.accuracy is None else f"{report.accuracy:.6f}",
            "pull-request-url": action.pull_request_url or "",
        },
        headline=model_outcome(report),
        check_summary=_check_summary(report), gated=bool(report.gates),
    )


def _check_summary(report: ModelReport) -> str:
    from mlgate.model.gates import UNITS
    from mlgate.model.report import model_outcome
    from mlgate.report import check_summary

    return check_summary(model_outcome(report), report.gates, UNITS)


def _production(settings: ModelGateSettings, target: ModelTarget, candidate: ModelVersion | None,
                registry: ModelRegistry | None) -> ModelVersion | None:
    """The version holding ``promote-alias`` in the target collection, unless that is the candidate."""
    if registry is None or target.collection is None:
        return None
    production = registry.version_with_alias(target.collection, settings.promote_alias)
    if production is not None and same_version(production, candidate):
        workflow.annotate("notice", "Already in production",
                          f"{production.name} already holds `{settings.promote_alias}`; nothing to compare with.")
        return None
    return production


def _fetch(model: str, is_local: bool, registry: ModelRegistry | None, root: Path,
           dest: Path) -> tuple[ModelVersion | None, Path]:
    if is_local:
        return None, root / model
    assert registry is not None
    version = registry.resolve(model)
    registry.download(version.name, dest)
    return version, dest


def _load(load_model: Callable[..., Any], path: Path, version: ModelVersion | None, settings: ModelGateSettings,
          root: Path) -> Any:
    from mlgate.model.loading import ModelLoadError

    try:
        return load_model(path, model_class=settings.model_class, model_kwargs=settings.model_kwargs_dict,
                          trust_pickle=settings.trust_pickle, import_root=root)
    except ModelLoadError as exc:
        if version is None:  # a local file: its path already names it
            raise
        # the path in the message is a temporary download folder: say which artifact it came from
        raise type(exc)(f"W&B artifact {version.name}: {exc.message}", hint=exc.hint) from exc


def _eval_data(settings: ModelGateSettings, ctx: RunContext,
               dvc: DvcRunner) -> tuple[list[tuple[Any, Any]] | None, ModelInput]:
    """Eval batches (bounded by max-eval-samples; pulled through DVC first when it tracks them) and
    the per-item input shape, ``input-shape`` squared with one eval item."""
    from mlgate.model.measure.inputs import resolve_input_shape

    if settings.eval_data is None:
        return None, resolve_input_shape(settings.input_shape_list, None)
    from mlgate.data.layouts import DatasetLayoutError, open_dataset
    from mlgate.data.pull import dvc_session, pull_if_tracked

    with dvc_session(settings, dvc) as runner:
        pull_if_tracked(settings, runner, settings.eval_data, "eval-data")
    with workflow.phase(f"Reading {settings.eval_data}"):
        dataset = open_dataset(ctx.in_workspace(settings.eval_data, "eval-data"), settings.layout,
                               dataset_class=settings.dataset_class, import_root=ctx.workspace)
        if settings.eval_split not in dataset.splits:
            raise DatasetLayoutError(
                f"`eval-data` {settings.eval_data} has no split {settings.eval_split!r}; "
                f"found: {', '.join(dataset.splits)}.",
                hint=f"with:\n  eval-split: {next(iter(dataset.splits), 'test')}",
            )
        batches: list[tuple[Any, Any]] = []
        taken = 0
        for batch in dataset.splits[settings.eval_split].batches(1024):
            remaining = settings.max_eval_samples - taken
            if remaining <= 0:
                break
            batches.append((batch.images[:remaining], batch.labels[:remaining]))
            taken += min(remaining, len(batch.labels))
    if not batches:
        raise DatasetLayoutError(f"Split {settings.eval_split!r} of `eval-data` {settings.eval_data} is empty.")
    resolved = resolve_input_shape(settings.input_shape_list, list(batches[0][0].shape[1:]),
                                   data=f"{settings.eval_data.as_posix()}, split {settings.eval_split}")
    if resolved.notice:
        workflow.annotate("notice", "Input shape", resolved.notice)
    return batches, dataclasses.replace(resolved, notice=None)


def _fit_input(settings: ModelGateSettings, model_input: ModelInput, eval_batches: list[tuple[Any, Any]] | None,
               candidate: LoadedModel, production: LoadedModel | None,
               production_version: ModelVersion | None) -> list[int]:
    """The per-item shape both models take, checked with one call each before anything is timed."""
    from mlgate.model.measure.inputs import fit_model

    models = [(candidate, "model")]
    if production is not None and production_version is not None:
        models.append((production, f"production model {production_version.name}"))
    for model, what in models:
        model_input = fit_model(model, model_input, given=settings.input_shape_list,
                                eval_images=eval_batches[0][0] if eval_batches else None, what=what)
        if model_input.notice:
            workflow.annotate("notice", "Input shape", model_input.notice)
            model_input = dataclasses.replace(model_input, notice=None)
    return model_input.shape


def _generalisation(settings: ModelGateSettings, ctx: RunContext, candidate: LoadedModel, input_shape: list[int],
                    eval_batches: list[tuple[Any, Any]] | None, measured: ModelMeasurement) -> Generalisation | None:
    """Accuracy on a seeded sample of eval-data's train split next to eval accuracy ("Did I overfit?");
    None without eval data or a train split. A failure here is a warning: the gates do not need it."""
    if settings.eval_data is None or not eval_batches:
        return None
    from mlgate.model.generalisation import TRAIN_SAMPLE, from_eval_data

    try:
        with workflow.phase(f"Generalisation gap: accuracy on up to {TRAIN_SAMPLE:,} train items"):
            return from_eval_data(settings, ctx.in_workspace(settings.eval_data, "eval-data"), ctx.workspace,
                                  candidate, input_shape, list(eval_batches[0][0].shape[1:]), measured.accuracy,
                                  measured.eval_samples)
    except Exception as exc:  # degrade: the report says the gap is missing and why, the gate still runs
        workflow.annotate("warning", "Generalisation gap not measured", f"{type(exc).__name__}: {exc}")
        return None


def _lineage(settings: ModelGateSettings, ctx: RunContext, registry: ModelRegistry | None,
             candidate: ModelVersion | None, dvc: DvcRunner) -> DataLineage | None:
    """The run that logged the candidate and its data version, against eval-data's DVC hash."""
    if candidate is None and not settings.require_data_lineage:
        return None
    from mlgate.model.lineage import read_lineage

    with workflow.phase("Reading the model's lineage"):
        eval_data = ctx.in_workspace(settings.eval_data, "eval-data") if settings.eval_data else None
        return read_lineage(registry, candidate, dvc, eval_data, ctx.workspace,
                            required=settings.require_data_lineage)


def _with_lineage_and_gap(settings: ModelGateSettings, report: ModelReport, lineage: DataLineage | None,
                          generalisation: Generalisation | None) -> ModelReport:
    """The report with its lineage, generalisation gap and ``require-data-lineage`` gate."""
    from mlgate.model.lineage import lineage_gate

    gates = [*report.gates, *lineage_gate(lineage, settings.require_data_lineage)]
    return report.model_copy(update={"lineage": lineage, "generalisation": generalisation, "gates": gates,
                                     "passed": all(g.passed for g in gates)})
