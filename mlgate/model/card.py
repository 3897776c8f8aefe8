"""The model card: what a reviewer of a promotion pull request reads before merging it.

Written beside the promotion manifest (``.mlgate/promotions/<collection>.md``), so the repository keeps,
next to every version it promoted, what that version measured (with intervals where the gate computed
them), where it came from, which gates it passed and how it was measured. Rendering only: every value
comes from the :class:`~mlgate.model.report.ModelReport`; numbers are written by :mod:`mlgate.numbers`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mlgate import numbers
from mlgate.markdown import code, inert, inert_message
from mlgate.model.gates import GATES, UNITS
from mlgate.model.report import ModelReport, lineage_section, significance_section, threads
from mlgate.numbers import count, megabytes, ms, percent
from mlgate.report_blocks import Interval, footer, gates_section, icon, verdict

if TYPE_CHECKING:
    from mlgate.model.registry import ModelVersion


def card_path(manifest_path: str) -> str:
    """``.mlgate/promotions/mnist.json`` -> ``.mlgate/promotions/mnist.md``."""
    return manifest_path.removesuffix(".json") + ".md"


def render_card(report: ModelReport, version: ModelVersion, collection: str, alias: str) -> str:
    """The model card of ``version`` (gated as ``report``), proposed to hold ``alias`` in ``collection``."""
    parts = [
        f"# Model card: {code(version.name)}",
        f"{icon(report.gates)} Gated by **{inert(report.title)}**: {verdict(report.gates)}. Merging the pull request "
        "that "
        f"adds this card links {code(version.name)} into {code(collection)} as {code(alias)}.",
        _identity(report, version, collection, alias),
        "## Metrics\n\n" + _metrics(report),
    ]
    if report.baseline is not None:
        parts.append(_against_production(report))
    lineage = _lineage(report)
    if lineage:
        parts.append(lineage)
    parts.append(gates_section(report.gates, UNITS, [spec.name for spec in GATES]).replace("### Gates", "## Gates"))
    parts.append(_how_measured(report))
    parts.append(footer())
    return "\n\n".join(parts) + "\n"


def _identity(report: ModelReport, version: ModelVersion, collection: str, alias: str) -> str:
    rows = [("artifact", f"{code(version.name)}"), ("version", f"{code(version.version)}"),
            ("digest", f"{code(version.digest)}" if version.digest else numbers.MISSING),
            ("collection", f"{code(collection)}"), ("alias on merge", f"{code(alias)}"),
            ("format", inert(report.format))]
    return "| | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)


def _interval(found: Interval | None, show: Callable[[float], str]) -> str:
    """``95% CI a to b`` for a metric the gate bootstrapped (``report.uncertainty``), else empty."""
    if found is None:
        return ""
    return f"{numbers.typed_percent(found.confidence)} CI {show(found.low)} to {show(found.high)}"


def _metrics(report: ModelReport) -> str:
    u = report.uncertainty
    rows = [
        ("accuracy", f"{percent(report.accuracy)} on {count(report.eval_samples)} eval items"
         if report.accuracy is not None else "not measured (no eval data)",
         _interval(u.accuracy if u else None, percent)),
        ("latency p50", ms(report.latency_ms.p50), _interval(u.latency_p50_ms if u else None, ms)),
        ("latency p95", ms(report.latency_ms.p95), _interval(u.latency_p95_ms if u else None, ms)),
        *((f"throughput, batch {size}", numbers.per_second(sps), "") for size, sps in report.throughput.items()),
        ("size", megabytes(report.size_mb), ""),
        ("parameters", count(report.params), ""),
    ]
    generalisation = report.generalisation
    reading = ""
    if generalisation is not None:
        rows.append(("train − eval accuracy", numbers.points(generalisation.gap),
                     f"± {numbers.points(generalisation.gap_margin)} at 95%"))
        reading = (f"\n\nTrain − eval accuracy, {count(generalisation.train_samples)} "
                   f"{inert(generalisation.train_split)} items against {count(generalisation.eval_samples)} "
                   f"{inert(generalisation.eval_split)} items — {inert_message(generalisation.reading)}.")
    with_intervals = any(interval for _, _, interval in rows)
    header = "| metric | value | interval |\n|---|---:|---|" if with_intervals else "| metric | value |\n|---|---:|"
    lines = [f"| {name} | {value} |" + (f" {interval or numbers.MISSING} |" if with_intervals else "")
             for name, value, interval in rows]
    note = ("\n\nIntervals are bootstrap confidence intervals over the eval items and the timed calls."
            if report.uncertainty is not None and with_intervals else "")
    return header + "\n" + "\n".join(lines) + note + reading


_RATIO_NAMES = {"total_seconds": "time for all timed predictions", "params": "parameters"}
"""How the card names a ratio of :attr:`Baseline.ratios` whose key does not read as words."""


def _against_production(report: ModelReport) -> str:
    b = report.baseline
    assert b is not None
    ratios = ", ".join(f"{_RATIO_NAMES.get(name, name.replace('_', ' '))} {numbers.ratio(value)}"
                       for name, value in b.ratios.items() if name != "accuracy")
    if report.accuracy is not None and b.accuracy is not None:  # a difference of fractions reads in points
        difference = report.accuracy - b.accuracy
        ratios += (", " if ratios else "") + "accuracy " + ("+" if difference > 0 else "") + numbers.points(difference)
    significance = significance_section(report, candidate_alone=False, figures=False)
    return (f"## Against production\n\nMeasured in the same run beside {code(b.model)} ({code(b.alias)}): "
            f"accuracy {percent(b.accuracy)}, latency p95 {ms(b.latency_ms.p95)}, size {megabytes(b.size_mb)}. "
            f"Candidate against production: {ratios or numbers.MISSING}."
            + (f"\n\n{significance}" if significance else ""))


def _lineage(report: ModelReport) -> str:
    """``## Lineage``: the report's lineage section (the run, its datasets, the data hash against the
    repository's), empty when the gate read none."""
    section = lineage_section(report)
    return section.replace("### Lineage", "## Lineage", 1) if section else ""


def _how_measured(report: ModelReport) -> str:
    env = report.environment
    lines = [
        f"- environment: CPU {code(env.cpu)}, {threads(env.threads)}, torch {inert(env.torch)}, "
        f"Python {inert(env.python)}, "
        f"{inert(env.platform)}",
        f"- latency: {count(report.predictions)} single-item predictions, one timed call each after a warm-up, "
        f"under `torch.inference_mode` ({numbers.seconds(report.total_seconds)} in all)",
        f"- accuracy: {count(report.eval_samples)} eval items" if report.accuracy is not None
        else "- accuracy: not measured (no `eval-data`)",
        *(f"- {inert_message(note)}" for note in report.notes),
    ]
    return "## How it was measured\n\n" + "\n".join(lines)
