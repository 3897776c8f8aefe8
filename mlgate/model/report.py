"""The model-gate report: ``report.json`` (a public contract) and its Markdown; imports no torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel

from mlgate import numbers
from mlgate.markdown import code, inert, inert_message
from mlgate.model.comparison import Comparison, Uncertainty
from mlgate.model.gates import GATES, UNITS, ratios
from mlgate.model.generalisation import Generalisation
from mlgate.model.lineage import DataLineage, normalise, short
from mlgate.model.measure.values import Environment, LatencyStats, ModelMeasurement
from mlgate.numbers import count, megabytes, ms, number, percent, seconds
from mlgate.report_blocks import Gate, Interval, fold, footer, gates_section, icon, outcome, verdict_line

SCHEMA_VERSION = "2"
FIGURE_NAMES = ("confusion_matrix", "per_class_accuracy_change", "confusion_matrix_change", "flipped_items")
"""Every figure model-gate can draw (``mlgate.model.mode``), in the order the report shows them."""


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
            return cls(model=model, alias=alias, total_seconds=production.latency.total_seconds,
                   latency_ms=LatencyMs.of(production.latency), size_mb=production.size_mb,
                   params=production.params, accuracy=production.accuracy, ratios=ratios(candidate, production),
                   per_class_accuracy=production.per_class_accuracy)


class Action(BaseModel):
    """What happened after the gates: promoted, pull request opened, alias added, or nothing."""

    on_pass: str
    result: str
    pull_request_url: str | None = None
    model_card: str | None = None
    """Path of the model card in the promotion pull request (``.mlgate/promotions/<collection>.md``)."""


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
    comparison: Comparison | None = None
    """With a production model: paired significance tests and what changed (flips, confusion difference)."""
    uncertainty: Uncertainty | None = None
    lineage: DataLineage | None = None
    """The W&B run that logged the candidate, the data it used, and whether that is eval-data's DVC version."""
    generalisation: Generalisation | None = None
    """Accuracy on a seeded sample of eval-data's train split next to eval accuracy."""
    """Bootstrap intervals of the candidate's accuracy and p50/p95 latency."""


def build_report(*, title: str, model: str, format: str, collection: str | None, measurement: ModelMeasurement,
                 gates: list[Gate], baseline: Baseline | None, environment: Environment,
                 comparison: Comparison | None = None, uncertainty: Uncertainty | None = None) -> ModelReport:
    m = measurement
    return ModelReport(
        title=title, passed=all(g.passed for g in gates), model=model, format=format, collection=collection,
        predictions=m.latency.predictions, total_seconds=m.latency.total_seconds,
        latency_ms=LatencyMs.of(m.latency),
        throughput={str(t.batch_size): t.samples_per_second for t in m.throughput},
        size_mb=m.size_mb, params=m.params, flops_per_prediction=m.flops_per_prediction,
        peak_memory_mb=m.peak_memory_mb, accuracy=m.accuracy, per_class_accuracy=m.per_class_accuracy,
        confusion=m.confusion, eval_samples=m.eval_samples, robustness=m.robustness, gates=gates,
        baseline=baseline, environment=environment, notes=list(m.notes), comparison=comparison,
        uncertainty=uncertainty,
    )


def _ratio(report: ModelReport, key: str) -> str:
    if report.baseline is None or key not in report.baseline.ratios:
        return ""
    return numbers.ratio(report.baseline.ratios[key])


def threads(n: int) -> str:
    """``1 torch thread``, ``4 torch threads``."""
    return f"{count(n)} torch thread{'' if n == 1 else 's'}"


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


def _signed_points(value: float) -> str:
    return ("+" if value > 0 and numbers.points(value) != numbers.points(0) else "") + numbers.points(value)


def _p(p: float) -> str:
    text = numbers.p_value(p)
    return text if text.startswith("<") else f"= {text}"


def _ci(interval: Interval, show: Callable[[float], str]) -> str:
    return f"{numbers.typed_percent(interval.confidence)} CI {show(interval.low)} to {show(interval.high)}"


def significance_section(report: ModelReport, *, candidate_alone: bool = True, figures: bool = True) -> str:
    """``### Significance and what changed``: in plain words, whether each difference from production
    is detectable, with its interval; the candidate's own intervals. Without a production model only
    those, under ``### Uncertainty`` (nothing changed against anything). Empty when nothing was kept.

    ``candidate_alone=False`` leaves out the candidate's own intervals (the model card has them in its
    metrics table); ``figures=False`` leaves out the pointer to the figures (the card has none)."""
    lines: list[str] = []
    c, u = report.comparison, report.uncertainty
    if c is not None and c.agreement is not None:
        a, diff = c.agreement, c.agreement.accuracy_difference
        words = ("no detectable difference" if diff.low <= 0 <= diff.high else
                 f"{'higher' if diff.value > 0 else 'lower'} by {numbers.points(abs(diff.value))}")
        lines.append(
            f"- **Accuracy vs production: {words}.** {_signed_points(diff.value)} "
            f"({_ci(diff, _signed_points)}) on the same {count(a.items)} items. Flipped: "
            f"{count(a.production_only_right)} item{'' if a.production_only_right == 1 else 's'} production gets "
            f"right {'is' if a.production_only_right == 1 else 'are'} wrong now, "
            f"{count(a.candidate_only_right)} the reverse; McNemar exact p {_p(a.mcnemar_p)}.")
    if c is not None:
        r = c.latency_median_ratio
        words = ("no detectable difference" if r.low <= 1 <= r.high else
                 f"{'slower' if r.value > 1 else 'faster'} by {percent(abs(r.value - 1))}")
        lines.append(f"- **Latency vs production: {words}.** Median {numbers.ratio(r.value)} production "
                     f"({_ci(r, numbers.ratio)}) over {count(c.rounds)} interleaved calls of each.")
    if u is not None and candidate_alone:
        own = [f"p50 {ms(u.latency_p50_ms.value)} ({_ci(u.latency_p50_ms, ms)})",
               f"p95 {ms(u.latency_p95_ms.value)} ({_ci(u.latency_p95_ms, ms)})"]
        if u.accuracy is not None:
            own.insert(0, f"accuracy {percent(u.accuracy.value)} ({_ci(u.accuracy, percent)})")
        lines.append("- **Candidate alone:** " + ", ".join(own) + ".")
    if not lines:
        return ""
    if c is None:
        return ("### Uncertainty\n\n" + "\n".join(lines) + "\n\nIntervals are bootstrap confidence intervals "
                "(eval items or timed calls resampled); no production model was measured to compare with.")
    how = ("Intervals are bootstrap confidence intervals (items or paired calls resampled); a difference is "
           "detectable when its interval excludes no change.")
    if figures and c.agreement is not None:
        how += (" The figures show the per-class accuracy change, the flipped items and the confusion-matrix "
                "difference (candidate − production).")
    return "### Significance and what changed\n\n" + "\n".join(lines) + "\n\n" + how


def lineage_section(report: ModelReport) -> str:
    """``### Lineage``: the data version the candidate was trained on against the repository's, the run,
    the datasets it used and where each hash was read. Empty without a lineage."""

    lin = report.lineage
    if lin is None:
        return ""
    repo = f"{code(lin.eval_data)}" if lin.eval_data else "eval-data"
    match = next((h for h in lin.hashes if lin.repository_hash and h.value == normalise(lin.repository_hash)), None)
    if lin.verdict == "matches" and match is not None:
        head = f"✅ **Trained on data version {code(short(match.logged))}** (matches the repository's {repo})"
    elif lin.verdict == "differs":
        logged = ", ".join(f"{code(short(h.logged))}" for h in lin.hashes)
        head = (f"❌ **Trained on data version {logged}** (differs from the repository's {repo}: "
                f"{code(short(lin.repository_hash or ''))})")
    else:
        head = f"❔ **Data version unknown:** {inert_message(lin.reason)}"
    lines = [head, ""]
    if lin.run is not None:
        # W&B's words and address are shown, never linked: a registry cannot make mlgate link elsewhere
        lines.append(f"- run: {inert(lin.run.name or lin.run.id)} ({code(f'{lin.run.project}/{lin.run.id}')}, "
                     f"{code(lin.run.url)})")
    elif lin.verdict != "unknown":  # an unknown verdict's reason already says what was missing
        lines.append("- run: none (no W&B run logged this model version)")
    if lin.datasets:
        lines.append("- datasets used: " + ", ".join(
            f"{code(d.name)} ({inert(d.type)}" + "".join(f", {k} {code(short(v))}" for k, v in d.hashes.items()) + ")"
            for d in lin.datasets))
    elif lin.run is not None:
        lines.append("- datasets used: none declared (`run.use_artifact`)")
    for h in lin.hashes:
        lines.append(f"- data hash {code(h.logged)} from {inert_message(h.source)}")
    if lin.repository_hash:
        lines.append(f"- repository: {repo} is {code(lin.repository_hash)} (DVC)")
    lines.extend(f"- ignored: {inert_message(item)}" for item in lin.ignored)
    return "### Lineage\n\n" + "\n".join(lines).rstrip()


def generalisation_section(report: ModelReport) -> str:
    """``### Generalisation gap``: accuracy on a train sample next to eval, the gap and what it reads as."""
    g = report.generalisation
    if g is None:
        return ""
    train, evaluated = inert(g.train_split), inert(g.eval_split)
    line = (f"Accuracy on {train} ({count(g.train_samples)} items): {percent(g.train_accuracy)}, "
            f"on {evaluated} ({count(g.eval_samples)} items): {percent(g.eval_accuracy)} — gap "
            f"{numbers.points(g.gap)} (± {numbers.points(g.gap_margin)} at 95%).")
    how = (f"The {train} items are a uniform sample (seed {g.seed}) of the {count(g.train_items_read)} "
           f"{train} items read, prepared like the eval items; the gap is {train} minus "
           f"{evaluated} accuracy.")
    notes = "".join(f"\n- {inert_message(n)}" for n in g.notes)
    reading = inert_message(g.reading[:1].upper() + g.reading[1:])
    return f"### Generalisation gap\n\n{line} {reading}.\n\n{how}{notes}"


def render_markdown(report: ModelReport, figure_links: Mapping[str, str], *, note: str = "") -> str:
    b = report.baseline
    parts = [f"## {icon(report.gates)} {inert(report.title)}: {code(report.model)}", verdict_line(report.gates),
             f"{report.format} model · {count(report.params)} parameters · {megabytes(report.size_mb)}"
             + (f" · candidate for {code(report.collection)}" if report.collection else ""),
             gates_section(report.gates, UNITS, [spec.name for spec in GATES])]
    lat = report.latency_ms

    def spread(latency: LatencyMs) -> str:
        return f"{number(latency.mean)} ± {number(latency.stdev)} ms"

    rows = [
        ("latency p50", ms(lat.p50), b and ms(b.latency_ms.p50), _ratio(report, "latency_p50")),
        ("latency p95", ms(lat.p95), b and ms(b.latency_ms.p95), _ratio(report, "latency_p95")),
        ("latency p99", ms(lat.p99), b and ms(b.latency_ms.p99), ""),
        ("latency mean ± stdev", spread(lat), b and spread(b.latency_ms), _ratio(report, "latency_mean")),
        (f"all {count(report.predictions)} timed predictions", seconds(report.total_seconds),
         b and seconds(b.total_seconds), _ratio(report, "total_seconds")),
        ("size", megabytes(report.size_mb), b and megabytes(b.size_mb), _ratio(report, "size")),
        ("parameters", count(report.params), b and count(b.params), _ratio(report, "params")),
        ("accuracy", percent(report.accuracy), b and percent(b.accuracy),
         _signed_points(report.accuracy - b.accuracy) if b and report.accuracy is not None and b.accuracy is not None
         else ""),
    ]
    header = "| measure | candidate |" + (f" production ({code(b.model)}) | vs production |" if b else "")
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
    significance = significance_section(report)
    if significance:
        parts.append(significance)
    parts.extend(section for section in (generalisation_section(report), lineage_section(report)) if section)
    if report.per_class_accuracy:
        production = b.per_class_accuracy if b is not None and b.per_class_accuracy else None
        if production is None:
            table = ["| class | accuracy |", "|---|---:|"] + [
                f"| {inert(label)} | {percent(acc)} |" for label, acc in report.per_class_accuracy.items()
            ]
        else:  # beside production, so the per-class change figure's numbers can be read off too
            table = ["| class | candidate | production | change |", "|---|---:|---:|---:|"] + [
                f"| {inert(label)} | {percent(acc)} | {percent(production.get(label))} | "
                + (_signed_points(acc - production[label]) if label in production else numbers.MISSING) + " |"
                for label, acc in report.per_class_accuracy.items()
            ]
        parts.append(fold("Per-class accuracy", "\n".join(table)))
    for name, link in figure_links.items():
        parts.append(f"![{name.replace('_', ' ')}]({link})")
    env = report.environment
    parts.append(fold("How this was measured",
                      f"CPU {code(env.cpu)}, {threads(env.threads)}, torch {inert(env.torch)}, "
                      f"Python {inert(env.python)}, "
                      f"{inert(env.platform)}. `torch.inference_mode`, warm-up first, one timed call per prediction"
                      + ("; candidate and production interleaved (A B A B …) so runner noise cancels." if b else ".")
                      + ("\n\n" + "\n".join(f"- {inert_message(n)}" for n in report.notes)
                         if report.notes else "")))
    if report.action is not None:
        parts.append(f"**Next:** {inert_message(report.action.result)}")
    if note:
        parts.append(f"> {note}")
    parts.append(footer())
    return "\n\n".join(parts) + "\n"
