"""The model-gate report: ``report.json`` (a public contract) and its Markdown; imports no torch."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from mlgate import numbers
from mlgate.model.gates import GATES, UNITS
from mlgate.model.measure.values import Environment, LatencyStats, ModelMeasurement
from mlgate.numbers import count, megabytes, ms, number, percent, seconds
from mlgate.report import Gate, fold, footer, gates_section, icon, outcome, verdict_line

SCHEMA_VERSION = "1"


class LatencyMs(BaseModel):
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    iqr: float
    stdev: float

    @classmethod
    def of(cls, stats: LatencyStats) -> LatencyMs:
        return cls(p50=stats.p50_ms, p90=stats.p90_ms, p95=stats.p95_ms, p99=stats.p99_ms,
                   mean=stats.mean_ms, iqr=stats.iqr_ms, stdev=stats.stdev_ms)


class Baseline(BaseModel):
    """The production model, measured in the same run, and candidate/production ratios."""

    model: str
    alias: str
    total_seconds: float
    latency_ms: LatencyMs
    size_mb: float
    params: int
    accuracy: float | None
    ratios: dict[str, float]
    per_class_accuracy: dict[str, float] | None = None
    """Class (as a string) -> accuracy on the same eval data as the candidate."""

    @classmethod
    def of(cls, model: str, alias: str, candidate: ModelMeasurement, production: ModelMeasurement) -> Baseline:
        from mlgate.model.gates import ratios

        return cls(model=model, alias=alias, total_seconds=production.latency.total_seconds,
                   latency_ms=LatencyMs.of(production.latency), size_mb=production.size_mb,
                   params=production.params, accuracy=production.accuracy, ratios=ratios(candidate, production),
                   per_class_accuracy=production.per_class_accuracy)


class Action(BaseModel):
    """What happened after the gates: promoted, pull request opened, alias added, or nothing."""

    on_pass: str
    result: str
    pull_request_url: str | None = None


class ModelReport(BaseModel):
    """``report.json`` of ``mode: model-gate``. Documented by schemas/model-gate-report.schema.json."""

    schema_version: str = SCHEMA_VERSION
    mode: str = "model-gate"
    title: str
    passed: bool
    model: str
    format: str
    collection: str | None
    predictions: int
    total_seconds: float
    latency_ms: LatencyMs
    throughput: dict[str, float]
    """Batch size (as a string) -> samples per second."""
    size_mb: float
    params: int
    flops_per_prediction: int | None
    peak_memory_mb: float | None
    accuracy: float | None
    per_class_accuracy: dict[str, float] | None
    confusion: list[list[int]] | None
    eval_samples: int
    robustness: dict[str, float] | None
    gates: list[Gate]
    baseline: Baseline | None
    environment: Environment
    notes: list[str]
    action: Action | None = None


def build_report(*, title: str, model: str, format: str, collection: str | None, measurement: ModelMeasurement,
                 gates: list[Gate], baseline: Baseline | None, environment: Environment) -> ModelReport:
    m = measurement
    return ModelReport(
        title=title, passed=all(g.passed for g in gates), model=model, format=format, collection=collection,
        predictions=m.latency.predictions, total_seconds=m.latency.total_seconds,
        latency_ms=LatencyMs.of(m.latency),
        throughput={str(t.batch_size): t.samples_per_second for t in m.throughput},
        size_mb=m.size_mb, params=m.params, flops_per_prediction=m.flops_per_prediction,
        peak_memory_mb=m.peak_memory_mb, accuracy=m.accuracy, per_class_accuracy=m.per_class_accuracy,
        confusion=m.confusion, eval_samples=m.eval_samples, robustness=m.robustness, gates=gates,
        baseline=baseline, environment=environment, notes=list(m.notes),
    )


def _ratio(report: ModelReport, key: str) -> str:
    if report.baseline is None or key not in report.baseline.ratios:
        return ""
    return numbers.ratio(report.baseline.ratios[key])


def model_outcome(report: ModelReport) -> str:
    """The plain-text outcome of a run: verdict, p95 latency, accuracy, size, failed gates, what was done."""
    p95 = f"p95 latency {ms(report.latency_ms.p95)}"
    if "latency_p95" in (report.baseline.ratios if report.baseline else {}):
        p95 += f" ({_ratio(report, 'latency_p95')} production)"
    figures = [report.model, p95]
    if report.accuracy is not None:
        figures.append(f"accuracy {percent(report.accuracy)} on {count(report.eval_samples)} items")
    figures.append(megabytes(report.size_mb))
    return outcome("model-gate", report.gates, UNITS, figures,
                   next_step=report.action.result if report.action else "")


def render_markdown(report: ModelReport, figure_links: Mapping[str, str], *, note: str = "") -> str:
    b = report.baseline
    parts = [f"## {icon(report.gates)} {report.title}: `{report.model}`", verdict_line(report.gates),
             f"{report.format} model · {count(report.params)} parameters · {megabytes(report.size_mb)}"
             + (f" · candidate for `{report.collection}`" if report.collection else ""),
             gates_section(report.gates, UNITS, [spec.name for spec in GATES])]
    lat = report.latency_ms

    def spread(latency: LatencyMs) -> str:
        return f"{number(latency.mean)} ± {number(latency.stdev)} ms"

    rows = [
        ("latency p50", ms(lat.p50), b and ms(b.latency_ms.p50), _ratio(report, "latency_p50")),
        ("latency p95", ms(lat.p95), b and ms(b.latency_ms.p95), _ratio(report, "latency_p95")),
        ("latency p99", ms(lat.p99), b and ms(b.latency_ms.p99), ""),
        ("latency mean ± stdev", spread(lat), b and spread(b.latency_ms), _ratio(report, "latency_mean")),
        (f"{count(report.predictions)} predictions", seconds(report.total_seconds), b and seconds(b.total_seconds),
         _ratio(report, "total_seconds")),
        ("size", megabytes(report.size_mb), b and megabytes(b.size_mb), _ratio(report, "size")),
        ("parameters", count(report.params), b and count(b.params), _ratio(report, "params")),
        ("accuracy", percent(report.accuracy), b and percent(b.accuracy), _ratio(report, "accuracy")),
    ]
    header = "| measure | candidate |" + (f" production (`{b.model}`) | ratio |" if b else "")
    lines = [header, "|---|---:|" + ("---:|---:|" if b else "")]
    for name, cand, prod, ratio in rows:
        lines.append(f"| {name} | {cand} |" + (f" {prod} | {ratio} |" if b else ""))
    parts.append("### Measurements\n\n" + "\n".join(lines))
    extra = ["- throughput: " + ", ".join(f"batch {size}: {numbers.per_second(sps)}"
                                          for size, sps in report.throughput.items())]
    if report.flops_per_prediction is not None:
        extra.append(f"- FLOPs per prediction: {count(report.flops_per_prediction)}")
    if report.peak_memory_mb is not None:
        extra.append(f"- peak memory: {megabytes(report.peak_memory_mb)}")
    if report.robustness:
        extra.append("- robustness: " + ", ".join(f"{k}: {percent(v)}" for k, v in report.robustness.items()))
    extra.append(f"- accuracy on {count(report.eval_samples)} eval items" if report.accuracy is not None
                 else "- no eval data: accuracy not measured")
    parts.append("\n".join(extra))
    if report.per_class_accuracy:
        table = ["| class | accuracy |", "|---|---:|"] + [
            f"| {label} | {percent(acc)} |" for label, acc in report.per_class_accuracy.items()
        ]
        parts.append(fold("Per-class accuracy", "\n".join(table)))
    for name, link in figure_links.items():
        parts.append(f"![{name.replace('_', ' ')}]({link})")
    env = report.environment
    parts.append(fold("How this was measured",
                      f"CPU `{env.cpu}`, {env.threads} torch thread(s), torch {env.torch}, Python {env.python}, "
                      f"{env.platform}. `torch.inference_mode`, warm-up first, one timed call per prediction"
                      + ("; candidate and production interleaved (A B A B …) so runner noise cancels." if b else ".")
                      + ("\n\n" + "\n".join(f"- {n}" for n in report.notes) if report.notes else "")))
    if report.action is not None:
        parts.append(f"**Next:** {report.action.result}")
    if note:
        parts.append(f"> {note}")
    parts.append(footer())
    return "\n\n".join(parts) + "\n"
