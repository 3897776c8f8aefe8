"""The data-stats report: one model (``report.json``, a public contract) rendered to Markdown.

Rendering never computes statistics and never talks to GitHub: it formats the model it is given,
with figure links chosen by the caller (local files, or URLs of hosted copies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel

from mlgate.data.baseline import BaselineResult
from mlgate.data.changes import Changes
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.report import Gate, fold, footer, format_number, gates_table

SCHEMA_VERSION = "1"

FIGURE_TITLES = {
    "label_distribution": "Label distribution",
    "sample_grid": "Samples per class",
    "pixel_histogram": "Pixel intensities",
    "baseline_loss": "Sanity baseline: training loss",
}


class DataReport(BaseModel):
    """``report.json`` of ``mode: data-stats``. Documented by schemas/data-stats-report.schema.json."""

    schema_version: str = SCHEMA_VERSION
    mode: str = "data-stats"
    title: str
    passed: bool
    data: str
    layout: str
    content_hash: str | None
    data_changed: bool | None
    class_names: list[str] | None
    splits: dict[str, SplitStats]
    leakage: LeakageStats
    changes: Changes | None
    gates: list[Gate]
    baseline: BaselineResult | None
    figures: dict[str, str]
    """Figure name -> PNG file name written beside report.json."""


def build_report(
    *,
    title: str,
    data: str,
    stats: DatasetStats,
    content_hash: str | None,
    changes: Changes | None,
    gates: list[Gate],
    baseline: BaselineResult | None,
    figures: dict[str, str],
) -> DataReport:
    data_changed = None
    if changes is not None:
        data_changed = changes.base_hash is None or changes.base_hash != changes.head_hash
    return DataReport(
        title=title,
        passed=all(g.passed for g in gates),
        data=data,
        layout=stats.layout,
        content_hash=content_hash,
        data_changed=data_changed,
        class_names=stats.class_names,
        splits=stats.splits,
        leakage=stats.leakage,
        changes=changes,
        gates=gates,
        baseline=baseline,
        figures=figures,
    )


def render_unchanged(title: str, data: str, content_hash: str | None, base: str) -> str:
    short = f" (DVC hash `{content_hash[:10]}`)" if content_hash else ""
    return f"## {title}\n\n➖ `{data}` is unchanged against `{base}`{short}; nothing to report.\n\n{footer()}\n"


def _shape(shape: list[int] | None, shapes: Mapping[str, int]) -> str:
    if shape is not None:
        return "×".join(str(d) for d in shape) or "scalar"
    return f"{len(shapes)} shapes"


def _label(label: str, class_names: list[str] | None) -> str:
    if class_names and label.isdigit() and int(label) < len(class_names):
        return f"{label} ({class_names[int(label)]})"
    return label


def _splits_table(report: DataReport) -> str:
    names = list(report.splits)
    rows: list[tuple[str, list[str]]] = []

    def row(title: str, cell: Callable[[SplitStats], str]) -> None:
        rows.append((title, [cell(report.splits[n]) for n in names]))

    row("items", lambda s: f"{s.count:,}")
    row("item shape", lambda s: _shape(s.shape, s.shapes))
    row("dtype", lambda s: s.dtype)
    row("value range", lambda s: f"{format_number(s.min)} … {format_number(s.max)}")
    row("mean (per channel)", lambda s: ", ".join(format_number(v, 3) for v in s.channel_mean) or "–")
    row("std (per channel)", lambda s: ", ".join(format_number(v, 3) for v in s.channel_std) or "–")
    row("classes", lambda s: str(len(s.label_counts)))
    row("imbalance (largest/smallest class)", lambda s: format_number(s.imbalance_ratio, 3))
    row("missing classes", lambda s: ", ".join(s.missing_classes) or "none")
    row("exact duplicates", lambda s: f"{s.duplicates:,}")
    row("items with NaN/Inf", lambda s: f"{s.nonfinite:,}")
    row("unreadable files", lambda s: f"{len(s.unreadable):,}")
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in rows]
    return "\n".join(lines)


def _findings(report: DataReport) -> list[str]:
    findings = []
    leak = report.leakage
    for split_name, count in leak.per_split.items():
        if count:
            findings.append(f"⚠️ **Leakage:** {count:,} `{split_name}` items have an exact copy in `train`.")
    if leak.conflicting_labels:
        findings.append(
            f"⚠️ **Conflicting labels:** {leak.conflicting_labels:,} identical items carry different labels."
        )
    for name, split in report.splits.items():
        if split.duplicates:
            findings.append(f"⚠️ `{name}`: {split.duplicates:,} exact duplicates.")
        if split.nonfinite:
            findings.append(f"⚠️ `{name}`: {split.nonfinite:,} items contain NaN or Inf.")
        if split.missing_classes:
            findings.append(f"⚠️ `{name}` has no items of class {', '.join(split.missing_classes)}.")
        if split.unreadable:
            shown = ", ".join(f"`{path}`" for path in split.unreadable[:10])
            more = f" and {len(split.unreadable) - 10:,} more" if len(split.unreadable) > 10 else ""
            findings.append(f"❌ `{name}`: unreadable files {shown}{more}.")
    return findings


def _changes(changes: Changes, class_names: list[str] | None) -> str:
    parts = [f"### What changed against `{changes.base}`"]
    if changes.files is not None:
        files = changes.files
        counts = (f"{len(files.added)} added, {len(files.modified)} modified, "
                  f"{len(files.deleted)} deleted, {len(files.renamed)} renamed")
        listing = "\n".join(
            [f"- ➕ `{p}`" for p in files.added] + [f"- ✏️ `{p}`" for p in files.modified]
            + [f"- ➖ `{p}`" for p in files.deleted] + [f"- 🔀 `{a}` → `{b}`" for a, b in files.renamed]
        )
        parts.append(f"DVC files: {counts}." + ("\n\n" + fold("changed files", listing) if listing else ""))
    lines = ["| split | base | head | Δ items | Δ per class |", "|---|---:|---:|---:|---|"]
    for name, change in changes.splits.items():
        per_class = ", ".join(
            f"{_label(label, class_names)}: {delta:+,}" for label, delta in change.label_deltas.items()
        ) or "–"
        lines.append(f"| `{name}` | {change.count_base:,} | {change.count_head:,} | "
                     f"{change.count_delta:+,} | {per_class} |")
    parts.append("\n".join(lines))
    notes = []
    if changes.new_classes:
        notes.append("new classes: " + ", ".join(_label(c, class_names) for c in changes.new_classes))
    if changes.removed_classes:
        notes.append("removed classes: " + ", ".join(_label(c, class_names) for c in changes.removed_classes))
    if changes.added_splits:
        notes.append("new splits: " + ", ".join(f"`{s}`" for s in changes.added_splits))
    if changes.removed_splits:
        notes.append("removed splits: " + ", ".join(f"`{s}`" for s in changes.removed_splits))
    for name, change in changes.splits.items():
        if change.shape_changed and change.shape_base and change.shape_head:
            notes.append(f"`{name}` item shape {_shape(change.shape_base, {})} → {_shape(change.shape_head, {})}")
        if change.dtype_changed and change.dtype_base and change.dtype_head:
            notes.append(f"`{name}` dtype {change.dtype_base} → {change.dtype_head}")
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def _label_counts_table(report: DataReport) -> str:
    names = list(report.splits)
    labels: list[str] = []
    for split in report.splits.values():
        labels += [label for label in split.label_counts if label not in labels]
    labels.sort(key=lambda x: (0, int(x)) if x.lstrip("-").isdigit() else (1, 0))
    lines = ["| class | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for label in labels:
        cells = []
        for n in names:
            split = report.splits[n]
            count = split.label_counts.get(label, 0)
            cells.append(f"{count:,} ({split.label_shares.get(label, 0.0):.1%})")
        lines.append(f"| {_label(label, report.class_names)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _baseline(result: BaselineResult) -> str:
    verdict = "✅ learns" if result.converged else "❌ does not learn"
    return (
        f"{verdict}: {result.model}, {result.epochs} epoch(s) in {result.seconds:.1f} s on "
        f"{result.train_samples:,} train items; test accuracy **{result.test_accuracy:.1%}** "
        f"against {result.chance_accuracy:.1%} by always guessing the most common class "
        f"({result.test_samples:,} test items)."
    )


def render_markdown(report: DataReport, figure_links: Mapping[str, str], *, fallback_chart: str = "",
                    note: str = "") -> str:
    """The report as Markdown; ``figure_links`` maps figure name -> URL or relative path."""
    icon = "✅" if report.passed else "❌"
    counts = " · ".join(f"**{s.count:,}** {name}" for name, s in report.splits.items())
    hash_text = f" · DVC `{report.content_hash[:10]}`" if report.content_hash else ""
    parts = [f"## {icon} {report.title}", f"`{report.data}` ({report.layout} layout): {counts}{hash_text}"]
    if report.gates:
        parts.append(gates_table(report.gates))
    if report.changes is not None:
        parts.append(_changes(report.changes, report.class_names))
    findings = _findings(report)
    parts.append("### Findings\n\n" + ("\n".join(f"- {f}" for f in findings) if findings else "No problems found."))
    parts.append("### Splits\n\n" + _splits_table(report))
    figures = [f"![{FIGURE_TITLES.get(name, name)}]({link})" for name, link in figure_links.items()]
    if figures:
        parts.append("### Figures\n\n" + "\n\n".join(figures))
    elif fallback_chart:
        parts.append("### Label distribution\n\n" + fallback_chart)
    if note:
        parts.append(f"> {note}")
    parts.append(fold("Label counts per class", _label_counts_table(report)))
    if report.baseline is not None:
        parts.append("### Sanity baseline\n\n" + _baseline(report.baseline))
    parts.append(footer())
    return "\n\n".join(parts) + "\n"
