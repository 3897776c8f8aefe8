"""``mode: model-gate``: fetch -> measure -> gate -> act -> finish.

:func:`run_model_gate` reads top-down and is the one place that reads the settings: each step below
it, in the order it runs, takes the values it uses (:class:`EvalInputs`, :class:`LoadInputs`,
:class:`BenchmarkInputs`, :class:`ReportInputs`, :class:`~mlgate.model.promote.PromotionPolicy`).
Promotion itself (what passing or failing earns) lives in :mod:`mlgate.model.promote`.

Measuring imports torch, so everything that can be refused is refused first, and the modules that
import torch (or draw figures) are imported inside the steps that need them, each saying so.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate import workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.errors import ExitCode, MlgateError
from mlgate.figures.images import CannotDrawFigure, display_images
from mlgate.figures.worker import (
    AccuracyDelta,
    ConfusionDifference,
    ConfusionMatrix,
    FigureJob,
    FlippedExamples,
    render_jobs,
)
from mlgate.model.comparison import Comparison, Uncertainty, compare, confidence_for, uncertainty
from mlgate.model.eval_data import EvalInputs, eval_input, read_eval_batches
from mlgate.model.gates import UNITS, GateThresholds, evaluate_gates
from mlgate.model.generalisation import TRAIN_SAMPLE, Generalisation, from_eval_data
from mlgate.model.lineage import DataLineage, lineage_gate, read_lineage
from mlgate.model.measure.values import BenchmarkError, ModelMeasurement
from mlgate.model.promote import PromotionPolicy, carry_out, check_action, plan_action
from mlgate.model.registry import ModelRegistry, ModelVersion, RegistryLogin, same_version
from mlgate.model.report import Action, Baseline, ModelReport, build_report, model_outcome, render_markdown
from mlgate.model.target import ModelTarget, resolve_target
from mlgate.publish import Finished, Publication, finish
from mlgate.report_blocks import check_summary
from mlgate.settings import DvcInputs, ModelGateSettings

if TYPE_CHECKING:  # measuring imports torch: refused inputs never need it
    from mlgate.data.dvc import DvcRunner
    from mlgate.model.loading import LoadedModel
    from mlgate.model.measure.inputs import ModelInput


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


@dataclasses.dataclass(frozen=True)
class LoadInputs:
    """``model-class``, ``model-kwargs`` and ``trust-pickle``: how a saved model becomes a module."""

    model_class: str | None
    model_kwargs: dict[str, Any]
    trust_pickle: bool


@dataclasses.dataclass(frozen=True)
class BenchmarkInputs:
    """``predictions``, ``batch-sizes``, ``robustness-eps`` and ``threads``: how the models are measured."""

    predictions: int
    batch_sizes: list[int]
    robustness_eps: float | None
    threads: int


@dataclasses.dataclass(frozen=True)
class ReportInputs:
    """What the report adds to the measurements: its title, the gates, the production alias."""

    title: str
    thresholds: GateThresholds
    gate_significance: float | None
    """``gate-significance``: None gates on point estimates (intervals at 95 %)."""
    require_data_lineage: bool
    promote_alias: str
    threads: int


def run_model_gate(settings: ModelGateSettings, ctx: RunContext, clients: Clients) -> ExitCode:
    evaluation = EvalInputs(settings.eval_data, settings.layout, settings.dataset_class, settings.eval_split,
                            settings.max_eval_samples, settings.input_shape_list)
    loading = LoadInputs(settings.model_class, settings.model_kwargs_dict, settings.trust_pickle)
    benchmark = BenchmarkInputs(settings.predictions, settings.batch_size_list, settings.robustness_eps,
                                settings.threads)
    policy = PromotionPolicy(settings.on_pass, settings.promote_alias, settings.on_fail_alias)
    thresholds = GateThresholds.model_validate(settings.model_dump(include=set(GateThresholds.model_fields)))
    reporting = ReportInputs(settings.report_title, thresholds, settings.gate_significance,
                             settings.require_data_lineage, settings.promote_alias, settings.threads)
    dvc_inputs = DvcInputs.model_validate(settings.model_dump(include=set(DvcInputs.model_fields)))

    # everything that can be refused is refused before a byte is downloaded or measured
    target = resolve_target(settings.model, settings.registry, ctx.event_name, ctx.event, ctx.workspace)
    if target.is_local:
        ctx.in_workspace(Path(target.model), "model")  # a model file: inside the workspace, symlinks followed
    publication = Publication.for_run(settings, ctx, clients)
    check_action(policy, target, publication)
    registry = None
    if not target.is_local or target.collection:
        registry = clients.registry(RegistryLogin(settings.wandb_api_key, settings.wandb_base_url), clients.env)
    eval_batches, model_input = _eval_data(evaluation, dvc_inputs, ctx, clients.dvc)  # before any download
    measured = _measure(target, registry, policy.promote_alias, loading, benchmark, evaluation, eval_batches,
                        model_input, ctx)
    lineage = _lineage(evaluation, reporting.require_data_lineage, ctx, registry, measured.candidate_version,
                       clients.dvc)
    report = _report(reporting, target, measured)
    report = _with_lineage_and_gap(report, lineage, measured.generalisation, reporting.require_data_lineage)
    with workflow.phase("Drawing the figures"):
        figures = _figures(evaluation.split, report, measured)
    # the report is final: what it earns is decided from it, then carried out in one place
    planned = plan_action(policy, report, target, measured.candidate_version, registry=registry is not None,
                          compared_with=measured.production_version)
    failure: MlgateError | None = None
    try:
        action = carry_out(planned, registry, publication, figures)
    except MlgateError as exc:  # a refused promotion still publishes the measurements, then fails the step
        failure = exc
        action = Action(on_pass=policy.on_pass, result=f"❌ {exc.title}: {exc.message}")
    code = finish(_finished(report.model_copy(update={"action": action}), figures), publication, ctx)
    if failure is not None:
        raise failure
    return code


def _eval_data(evaluation: EvalInputs, dvc_inputs: DvcInputs, ctx: RunContext,
               dvc: DvcRunner) -> tuple[list[tuple[Any, Any]] | None, ModelInput]:
    """Eval batches (bounded by max-eval-samples; pulled through DVC first when it tracks them) and
    the per-item input shape, ``input-shape`` squared with one eval item."""
    if evaluation.data is None:
        return None, eval_input(evaluation, None)
    from mlgate.data.pull import dvc_session, pull_if_tracked  # start-up: DVC's module (and yaml) only with eval data

    with dvc_session(dvc_inputs, dvc) as runner:
        pull_if_tracked(dvc_inputs, runner, evaluation.data, "eval-data")
    with workflow.phase(f"Reading {evaluation.data}"):
        batches = read_eval_batches(evaluation, ctx.in_workspace(evaluation.data, "eval-data"), ctx.workspace)
    return batches, eval_input(evaluation, batches)


def _measure(target: ModelTarget, registry: ModelRegistry | None, promote_alias: str, loading: LoadInputs,
             benchmark: BenchmarkInputs, evaluation: EvalInputs, eval_batches: list[tuple[Any, Any]] | None,
             model_input: ModelInput, ctx: RunContext) -> Measured:
    """Download and load the candidate and production models, check that they take the input shape,
    then time them interleaved."""
    from mlgate.model.measure.run import MeasureOptions, measure_model  # start-up: imports torch

    root = ctx.workspace
    with tempfile.TemporaryDirectory(prefix="mlgate-model-") as tmp:
        with workflow.phase(f"Loading the model {target.model}"):
            candidate_version, candidate_path = _fetch(target.model, target.is_local, registry, root, Path(tmp) / "c")
            candidate = _load(candidate_path, candidate_version, loading, root)
            production_version = _production(target, candidate_version, registry, promote_alias)
            production = None
            if production_version is not None:
                _, production_path = _fetch(production_version.name, False, registry, root, Path(tmp) / "p")
                production = _load(production_path, production_version, loading, root)
        input_shape = _fit_input(model_input, evaluation.input_shape, eval_batches, candidate, production,
                                 production_version)
        options = MeasureOptions(
            input_shape=input_shape, predictions=benchmark.predictions, batch_sizes=benchmark.batch_sizes,
            max_eval_samples=evaluation.max_samples, robustness_eps=benchmark.robustness_eps,
            threads=benchmark.threads,
        )
        with workflow.phase("Benchmarking" + (f" against {production_version.name}" if production_version else "")):
            try:
                measured, measured_production = measure_model(candidate, options, eval_data=eval_batches,
                                                              baseline=production, progress=workflow.progress())
            except ArithmeticError as exc:  # a 0 or an overflow in the numbers measured: say which inputs matter
                raise BenchmarkError(
                    f"Measuring {target.model} failed: {type(exc).__name__}: {exc}.",
                    hint="Check the inputs that size the benchmark: `batch-sizes` (positive integers), "
                    "`predictions`, `input-shape` and `max-eval-samples`, and that the eval data is not empty.",
                ) from exc
        generalisation = _generalisation(evaluation, benchmark.threads, ctx, candidate, input_shape, eval_batches,
                                         measured)
    return Measured(measured, candidate_version, candidate.format, measured_production,
                    production_version if measured_production is not None else None, generalisation=generalisation)


def _report(reporting: ReportInputs, target: ModelTarget, measured: Measured) -> ModelReport:
    from mlgate.model.measure.environment import environment  # start-up: imports torch

    baseline = None
    if measured.production is not None and measured.production_version is not None:
        baseline = Baseline.of(measured.production_version.name, reporting.promote_alias,
                               measured.candidate, measured.production)
    comparison, uncertainty = _significance(reporting.gate_significance, measured)
    return build_report(
        title=reporting.title,
        model=measured.candidate_version.name if measured.candidate_version else target.model,
        format=measured.format, collection=target.collection, measurement=measured.candidate,
        gates=evaluate_gates(measured.candidate, reporting.thresholds, measured.production,
                             tested=comparison if reporting.gate_significance is not None else None),
        baseline=baseline, environment=environment(reporting.threads), comparison=comparison,
        uncertainty=uncertainty,
    )


def _significance(gate_significance: float | None,
                  measured: Measured) -> tuple[Comparison | None, Uncertainty | None]:
    """Paired tests against production (when there is one) and the candidate's own intervals, at the
    confidence ``gate-significance`` implies (95 % without it)."""
    confidence = confidence_for(gate_significance)
    comparison = None
    if measured.production is not None:
        comparison = compare(measured.candidate, measured.production, confidence)
    return comparison, uncertainty(measured.candidate, confidence)


def _figures(split: str, report: ModelReport, measured: Measured | None = None) -> dict[str, bytes]:
    """The confusion matrix and, with a production model, the per-class accuracy change, the flipped
    items (pixels from ``measured``) and the confusion-matrix difference."""
    if not report.confusion:
        return {}
    jobs: dict[str, FigureJob] = {
        "confusion_matrix": ConfusionMatrix(report.confusion, model=report.model, split=split),
    }
    b = report.baseline
    if b is not None and b.per_class_accuracy and report.per_class_accuracy:
        overall = (report.accuracy, b.accuracy) if report.accuracy is not None and b.accuracy is not None else None
        jobs["per_class_accuracy_change"] = AccuracyDelta(
            report.per_class_accuracy, b.per_class_accuracy, candidate_name=report.model, production_name=b.model,
            split=split, eval_samples=report.eval_samples, overall=overall)
    jobs.update(_change_figures(split, report, measured))
    return render_jobs(jobs)


def _change_figures(split: str, report: ModelReport, measured: Measured | None) -> dict[str, FigureJob]:
    """What changed against production: the flipped items and the confusion-matrix difference."""
    agreement = report.comparison.agreement if report.comparison is not None else None
    if agreement is None or report.baseline is None:
        return {}
    names = {"candidate_name": report.model, "production_name": report.baseline.model}
    jobs: dict[str, FigureJob] = {"confusion_matrix_change": ConfusionDifference(
        agreement.confusion_difference, split=split, eval_samples=agreement.items, **names)}
    items = measured.candidate.items if measured is not None else None
    if items is not None and (agreement.production_only_right or agreement.candidate_only_right):
        try:
            images = display_images([flip.pixels for flip in items.flips])
        except CannotDrawFigure as exc:
            workflow.annotate("notice", "Figure flipped_items left out", exc.message)
            return jobs
        jobs["flipped_items"] = FlippedExamples(
            images, [(f.item, f.label, f.production, f.candidate) for f in items.flips],
            lost=agreement.production_only_right, gained=agreement.candidate_only_right, split=split, **names)
    return jobs


def _finished(report: ModelReport, figures: Mapping[str, bytes]) -> Finished:
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
        check_summary=check_summary(model_outcome(report), report.gates, UNITS), gated=bool(report.gates),
    )


def _production(target: ModelTarget, candidate: ModelVersion | None, registry: ModelRegistry | None,
                promote_alias: str) -> ModelVersion | None:
    """The version holding ``promote-alias`` in the target collection, unless that is the candidate."""
    if registry is None or target.collection is None:
        return None
    production = registry.version_with_alias(target.collection, promote_alias)
    if production is not None and same_version(production, candidate):
        workflow.annotate("notice", "Already in production",
                          f"{production.name} already holds `{promote_alias}`; nothing to compare with.")
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


def _load(path: Path, version: ModelVersion | None, loading: LoadInputs, root: Path) -> LoadedModel:
    from mlgate.model.loading import ModelLoadError, load_model  # start-up: imports torch

    try:
        return load_model(path, model_class=loading.model_class, model_kwargs=loading.model_kwargs,
                          trust_pickle=loading.trust_pickle, import_root=root)
    except ModelLoadError as exc:
        if version is None:  # a local file: its path already names it
            raise
        # the path in the message is a temporary download folder: say which artifact it came from
        raise type(exc)(f"W&B artifact {version.name}: {exc.message}", hint=exc.hint) from exc


def _fit_input(model_input: ModelInput, given: list[int] | None, eval_batches: list[tuple[Any, Any]] | None,
               candidate: LoadedModel, production: LoadedModel | None,
               production_version: ModelVersion | None) -> list[int]:
    """The per-item shape both models take, checked with one call each before anything is timed."""
    from mlgate.model.measure.inputs import fit_model  # start-up: imports torch

    models = [(candidate, "model")]
    if production is not None and production_version is not None:
        models.append((production, f"production model {production_version.name}"))
    for model, what in models:
        model_input = fit_model(model, model_input, given=given,
                                eval_images=eval_batches[0][0] if eval_batches else None, what=what)
        if model_input.notice:
            workflow.annotate("notice", "Input shape", model_input.notice)
            model_input = dataclasses.replace(model_input, notice=None)
    return model_input.shape


def _generalisation(evaluation: EvalInputs, threads: int, ctx: RunContext, candidate: LoadedModel,
                    input_shape: list[int], eval_batches: list[tuple[Any, Any]] | None,
                    measured: ModelMeasurement) -> Generalisation | None:
    """Accuracy on a seeded sample of eval-data's train split next to eval accuracy ("Did I overfit?");
    None without eval data or a train split. A failure here is a warning: the gates do not need it."""
    if evaluation.data is None or not eval_batches:
        return None
    try:
        with workflow.phase(f"Generalisation gap: accuracy on up to {TRAIN_SAMPLE:,} train items"):
            return from_eval_data(evaluation, ctx.in_workspace(evaluation.data, "eval-data"), ctx.workspace,
                                  candidate, input_shape, list(eval_batches[0][0].shape[1:]), measured.accuracy,
                                  measured.eval_samples, threads=threads)
    except Exception as exc:  # degrade: the report says the gap is missing and why, the gate still runs
        workflow.annotate("warning", "Generalisation gap not measured", f"{type(exc).__name__}: {exc}")
        return None


def _lineage(evaluation: EvalInputs, required: bool, ctx: RunContext, registry: ModelRegistry | None,
             candidate: ModelVersion | None, dvc: DvcRunner) -> DataLineage | None:
    """The run that logged the candidate and its data version, against eval-data's DVC hash."""
    if candidate is None and not required:
        return None
    with workflow.phase("Reading the model's lineage"):
        eval_data = ctx.in_workspace(evaluation.data, "eval-data") if evaluation.data else None
        return read_lineage(registry, candidate, dvc, eval_data, ctx.workspace, required=required)


def _with_lineage_and_gap(report: ModelReport, lineage: DataLineage | None, generalisation: Generalisation | None,
                          required: bool) -> ModelReport:
    """The report with its lineage, generalisation gap and ``require-data-lineage`` gate."""
    gates = [*report.gates, *lineage_gate(lineage, required)]
    return report.model_copy(update={"lineage": lineage, "generalisation": generalisation, "gates": gates,
                                     "passed": all(g.passed for g in gates)})
