"""``mode: model-gate`` and ``mode: promote`` top-down: gather -> measure -> gate -> act -> publish."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate import workflow
from mlgate.context import RunContext
from mlgate.errors import MlgateError
from mlgate.model.registry import ModelRegistry, ModelVersion
from mlgate.model.settings import ModelGateSettings, PromoteSettings, RegistrySettings
from mlgate.model.target import ModelTarget, resolve_target
from mlgate.publish import Publication, publish, workspace_relative, write_report_files
from mlgate.report import COMMENT_LIMIT, fit, footer
from mlgate.settings import CommonSettings

MANIFEST_DIR = ".mlgate/promotions"

if TYPE_CHECKING:  # the report imports torch: `mode: promote` and refused inputs never need it
    from mlgate.model.report import Action, ModelReport

RegistryFactory = Callable[[RegistrySettings, Mapping[str, str]], ModelRegistry]


class PromotionError(MlgateError):
    """Raised when a promotion manifest is missing, malformed, or records a failed gate."""

    title = "Promotion refused"


def wandb_registry(settings: RegistrySettings, env: Mapping[str, str]) -> ModelRegistry:
    from mlgate.model.registry import RegistryUnauthorized, WandbRegistry

    key = settings.wandb_api_key.get_secret_value() if settings.wandb_api_key else env.get("WANDB_API_KEY", "")
    if not key:
        raise RegistryUnauthorized(
            "No W&B API key: the model lives in W&B, so `wandb-api-key` is needed.",
            hint="with:\n  wandb-api-key: ${{ secrets.WANDB_API_KEY }}",
        )
    workflow.mask(key)
    return WandbRegistry(key, settings.wandb_base_url or env.get("WANDB_BASE_URL") or None)


def run_model_mode(settings: CommonSettings, ctx: RunContext, env: Mapping[str, str],
                   registry_factory: RegistryFactory = wandb_registry) -> int:
    if isinstance(settings, PromoteSettings):
        return run_promote(settings, ctx, env, registry_factory)
    assert isinstance(settings, ModelGateSettings)
    return run_model_gate(settings, ctx, env, registry_factory)


def run_model_gate(settings: ModelGateSettings, ctx: RunContext, env: Mapping[str, str],
                   registry_factory: RegistryFactory = wandb_registry) -> int:
    root = ctx.workspace
    out_dir = settings.out if settings.out.is_absolute() else root / settings.out
    # everything that can be refused is refused before a byte is downloaded or measured
    target = resolve_target(settings.model, settings.registry, ctx.event_name, ctx.event, root)
    publication = Publication.for_run(settings, ctx)
    _check_action(settings, target, publication)
    registry = registry_factory(settings, env) if not target.is_local or target.collection else None

    from mlgate.model.benchmark import environment, measure_model
    from mlgate.model.gate import GateThresholds, evaluate_gates, ratios
    from mlgate.model.loading import load_model
    from mlgate.model.report import Action, Baseline, LatencyMs, build_report, render_markdown

    with tempfile.TemporaryDirectory(prefix="mlgate-model-") as tmp:
        candidate_version, candidate_path = _fetch(target.model, target.is_local, registry, root, Path(tmp) / "c")
        candidate = _load(load_model, candidate_path, candidate_version, settings, root)
        production_version = _production(settings, target, candidate_version, registry)
        production = None
        if production_version is not None:
            _, production_path = _fetch(production_version.name, False, registry, root, Path(tmp) / "p")
            production = _load(load_model, production_path, production_version, settings, root)
        eval_batches, input_shape = _eval_data(settings, root)
        measured, measured_production = measure_model(
            candidate, input_shape=input_shape, predictions=settings.predictions,
            batch_sizes=settings.batch_size_list, eval_data=eval_batches,
            max_eval_samples=settings.max_eval_samples, robustness_eps=settings.robustness_eps,
            threads=settings.threads, baseline=production,
        )

    thresholds = GateThresholds(
        max_latency_ms=settings.max_latency_ms, max_total_seconds=settings.max_total_seconds,
        max_size_mb=settings.max_size_mb, max_params=settings.max_params, min_accuracy=settings.min_accuracy,
        max_latency_regression=settings.max_latency_regression, max_accuracy_drop=settings.max_accuracy_drop,
    )
    gates = evaluate_gates(measured, thresholds, measured_production)
    baseline = None
    if measured_production is not None and production_version is not None:
        baseline = Baseline(
            model=production_version.name, alias=settings.promote_alias,
            total_seconds=measured_production.latency.total_seconds,
            latency_ms=LatencyMs.of(measured_production.latency), size_mb=measured_production.size_mb,
            params=measured_production.params, accuracy=measured_production.accuracy,
            ratios=ratios(measured, measured_production),
        )
    model_name = candidate_version.name if candidate_version else target.model
    report = build_report(
        title=settings.report_title, model=model_name, format=candidate.format, collection=target.collection,
        measurement=measured, gates=gates, baseline=baseline, environment=environment(settings.threads),
    )

    pngs = _figures(report)
    links, note = publication.host_figures({f"{name}.png": png for name, png in pngs.items()})
    hosted = {name: links[f"{name}.png"] for name in pngs if f"{name}.png" in links}
    # a refused promotion (registry or GitHub down, no permission) still publishes the measurements
    failure: MlgateError | None = None
    try:
        action = _act(settings, report, target, candidate_version, registry, publication, hosted)
    except MlgateError as exc:
        failure = exc
        action = Action(on_pass=settings.on_pass, result=f"❌ {exc.title}: {exc.message}")
    report = report.model_copy(update={"action": action})

    local_md = render_markdown(report, {name: f"{name}.png" for name in pngs})
    paths = write_report_files(out_dir, local_md, report.model_dump_json(indent=2), pngs)
    markdown = render_markdown(report, hosted, note=note)
    publish(publication, ctx, markdown, outputs={
        "passed": str(report.passed).lower(),
        "model": report.model,
        "latency-p95-ms": f"{report.latency_ms.p95:.4f}",
        "accuracy": "" if report.accuracy is None else f"{report.accuracy:.6f}",
        "report": workspace_relative(paths.markdown, root),
        "report-json": workspace_relative(paths.json, root),
        "pull-request-url": action.pull_request_url or "",
    })
    print(f"mlgate model-gate: {'passed' if report.passed else 'FAILED'} — {action.result}\n"
          f"report: {workspace_relative(paths.markdown, root)}")
    if failure is not None:
        raise failure
    return 0 if report.passed else 1


def _check_action(settings: ModelGateSettings, target: ModelTarget, publication: Publication) -> None:
    """Refuse an ``on-pass``/``on-fail-alias`` that could never be carried out, before measuring."""
    if settings.on_pass in ("promote", "pull-request") and (target.is_local or target.collection is None):
        raise PromotionError(
            f"`on-pass: {settings.on_pass}` needs a W&B model and a registry collection to promote into; "
            f"got model {target.model!r}" + (" (a local file)" if target.is_local else "")
            + f" and collection {target.collection!r}.",
            hint="with:\n  model: wandb-registry-model/<collection>:staging   # or the dispatch payload\n"
            "  registry: wandb-registry-model/<collection>",
        )
    if settings.on_fail_alias and target.is_local:
        raise PromotionError(
            f"`on-fail-alias: {settings.on_fail_alias}` needs a W&B model; {target.model!r} is a local file.",
            hint="Remove `on-fail-alias`, or gate a W&B artifact such as wandb-registry-model/<collection>:staging.",
        )
    if settings.on_pass == "pull-request" and publication.publisher is None:
        raise PromotionError(
            f"`on-pass: pull-request` cannot open a pull request: {publication.blocked}.",
            hint="with:\n  github-token: ${{ github.token }}\n"
            "and in the workflow:\npermissions:\n  contents: write\n  pull-requests: write",
        )


def _production(settings: ModelGateSettings, target: ModelTarget, candidate: ModelVersion | None,
                registry: ModelRegistry | None) -> ModelVersion | None:
    """The version holding ``promote-alias`` in the target collection, unless that is the candidate."""
    if registry is None or target.collection is None:
        return None
    production = registry.version_with_alias(target.collection, settings.promote_alias)
    if production is not None and _same(production, candidate):
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


def _same(a: ModelVersion, b: ModelVersion | None) -> bool:
    if b is None:
        return False
    return (a.digest is not None and a.digest == b.digest) or a.name == b.name


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


def _eval_data(settings: ModelGateSettings, root: Path) -> tuple[list[tuple[Any, Any]] | None, list[int]]:
    """Eval batches (bounded by max-eval-samples) and the per-item input shape."""
    if settings.eval_data is None:
        if settings.input_shape_list is None:
            raise MlgateError("Without `eval-data` mlgate cannot infer the model's input shape.",
                              hint="with:\n  input-shape: 1,28,28   # or\n  eval-data: data/processed")
        return None, settings.input_shape_list
    from mlgate.data.loaders import DatasetLayoutError, open_dataset
    from mlgate.model.benchmark import infer_input_shape

    data_dir = settings.eval_data if settings.eval_data.is_absolute() else root / settings.eval_data
    dataset = open_dataset(data_dir, settings.layout, dataset_class=settings.dataset_class, import_root=root)
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
    shape = settings.input_shape_list or infer_input_shape(batches[0][0])
    return batches, shape


def _figures(report: ModelReport) -> dict[str, bytes]:
    if not report.confusion:
        return {}
    from mlgate.model.figures import confusion_matrix

    return {"confusion_matrix": confusion_matrix(report.confusion)}


def _act(settings: ModelGateSettings, report: ModelReport, target: ModelTarget, version: ModelVersion | None,
         registry: ModelRegistry | None, publication: Publication, figure_links: Mapping[str, str]) -> Action:
    from mlgate.model.report import Action

    if not report.passed:
        failed = ", ".join(f"`{g.name}`" for g in report.gates if not g.passed)
        result = f"not promoted: gate(s) {failed} failed."
        if settings.on_fail_alias and registry is not None and version is not None:
            # the path the candidate came by: on a registry path the alias shows in the registry
            registry.add_alias(target.model, settings.on_fail_alias)
            result += f" Added alias `{settings.on_fail_alias}` to `{target.model}`."
        return Action(on_pass=settings.on_pass, result=result)
    if settings.on_pass == "none":
        return Action(on_pass="none", result="all gates passed; `on-pass: none`, so nothing else was done.")
    # _check_action made sure of these before anything was measured
    assert version is not None and target.collection is not None and registry is not None
    if settings.on_pass == "promote":
        linked = registry.link(version.name, target.collection, settings.promote_alias)
        result = (f"promoted: `{version.name}` now holds `{settings.promote_alias}` in `{target.collection}`."
                  if linked else f"`{version.name}` already holds `{settings.promote_alias}` in "
                  f"`{target.collection}`: nothing to do.")
        return Action(on_pass="promote", result=result)
    return _promotion_pull_request(settings, report, target, version, publication, figure_links)


def manifest_path(collection: str) -> str:
    return f"{MANIFEST_DIR}/{re.sub(r'[^A-Za-z0-9._-]', '_', collection.rsplit('/', 1)[-1])}.json"


def promotion_manifest(report: ModelReport, version: ModelVersion, collection: str, alias: str) -> dict[str, Any]:
    """What `mode: promote` applies after the merge: a pinned version (`vN`), never a moving alias."""
    return {
        "artifact": version.name, "version": version.version, "digest": version.digest,
        "collection": collection, "alias": alias, "passed": report.passed,
        "metrics": {"latency_ms": report.latency_ms.model_dump(), "total_seconds": report.total_seconds,
                    "size_mb": report.size_mb, "params": report.params, "accuracy": report.accuracy},
        "gates": [g.model_dump() for g in report.gates],
    }


def _promotion_pull_request(settings: ModelGateSettings, report: ModelReport, target: ModelTarget,
                            version: ModelVersion, publication: Publication,
                            figure_links: Mapping[str, str]) -> Action:
    from mlgate.model.report import Action, render_markdown

    assert target.collection is not None and publication.publisher is not None
    manifest = promotion_manifest(report, version, target.collection, settings.promote_alias)
    path = manifest_path(target.collection)
    body = render_markdown(report, figure_links) + (
        f"\n\nMerging this pull request links `{version.name}` into `{target.collection}` with the alias "
        f"`{settings.promote_alias}` (the `mode: promote` workflow on the default branch does it)."
    )
    url = publication.publisher.upsert_pull_request(
        branch=f"mlgate/promote-{Path(path).stem}", base=publication.publisher.default_branch(),
        title=f"Promote {version.name} to {settings.promote_alias}",
        body=fit(body, COMMENT_LIMIT - 1024, "The full report is in the job summary of the gate run."),
        files={path: (json.dumps(manifest, indent=2) + "\n").encode()},
        commit_message=f"mlgate: promote {version.name} to {settings.promote_alias}",
    )
    return Action(on_pass="pull-request", result=f"all gates passed; approve by merging {url}",
                  pull_request_url=url)


def run_promote(settings: PromoteSettings, ctx: RunContext, env: Mapping[str, str],
                registry_factory: RegistryFactory = wandb_registry) -> int:
    """After a human merged a promotion PR: link what each changed manifest names."""
    root = ctx.workspace
    manifests = [settings.manifest] if settings.manifest else list(_pushed_manifests(ctx.event))
    if not manifests:
        workflow.append_summary(ctx.summary_path, "mlgate promote: no promotion manifest changed; nothing to do.")
        workflow.set_outputs(ctx.output_path, {"passed": "true", "model": ""})
        return 0
    registry = registry_factory(settings, env)
    lines, models = [], []
    for rel in manifests:
        manifest = _read_manifest(root / rel)
        linked = registry.link(manifest["artifact"], manifest["collection"], manifest["alias"])
        models.append(manifest["artifact"])
        lines.append(f"- `{manifest['artifact']}` " + (
            f"now holds `{manifest['alias']}` in `{manifest['collection']}`." if linked
            else f"already held `{manifest['alias']}` in `{manifest['collection']}`: nothing to do."))
    markdown = f"## ✅ {settings.title or 'Promotion'}\n\n" + "\n".join(lines) + f"\n\n{footer()}\n"
    print(markdown)
    workflow.append_summary(ctx.summary_path, markdown)
    workflow.set_outputs(ctx.output_path, {"passed": "true", "model": "\n".join(models)})
    return 0


def _pushed_manifests(event: Mapping[str, Any]) -> Iterator[Path]:
    seen: set[str] = set()
    for commit in event.get("commits") or []:
        for path in [*(commit.get("added") or []), *(commit.get("modified") or [])]:
            if path.startswith(MANIFEST_DIR + "/") and path.endswith(".json") and path not in seen:
                seen.add(path)
                yield Path(path)


def _read_manifest(path: Path) -> dict[str, Any]:
    hint = ("A promotion manifest is written by `mode: model-gate` with `on-pass: pull-request`; "
            "merge that pull request unedited, or rerun the gate to open a fresh one.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromotionError(f"Cannot read promotion manifest {path}: {exc}", hint=hint) from exc
    if not isinstance(manifest, dict):
        raise PromotionError(f"Promotion manifest {path} is not a JSON object.", hint=hint)
    wrong = [key for key in ("artifact", "collection", "alias") if not isinstance(manifest.get(key), str)]
    if wrong or "passed" not in manifest:
        raise PromotionError(f"Promotion manifest {path} lacks {', '.join(wrong or ['passed'])} "
                             "(each must be a string; `passed` a boolean).", hint=hint)
    if manifest["passed"] is not True:
        raise PromotionError(f"Promotion manifest {path} records failed gates; refusing to promote.", hint=hint)
    return dict(manifest)
