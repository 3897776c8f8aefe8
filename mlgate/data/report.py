"""The data-stats report: one model (``report.json``, a public contract) rendered to Markdown.

Rendering never computes statistics and never talks to GitHub: it formats the model it is given,
with figure links chosen by the caller (local files, or URLs of hosted copies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel, Field

from mlgate import numbers
from mlgate.data import image_issues
from mlgate.data.baseline import BaselineResult
from mlgate.data.changes import Changes
from mlgate.data.drift import DriftReport, LabelDrift, PixelDrift, SplitDrift
from mlgate.data.findings import FullList
from mlgate.data.gates import INPUTS, UNITS
from mlgate.data.label_errors import LabelErrors, clearly_above_chance
from mlgate.data.near_duplicates import NearDuplicateStats
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.markdown import code, inert
from mlgate.numbers import count, number, percent, ratio, signed_count
from mlgate.report_blocks import Gate, fold, footer, gates_section, icon, outcome, verdict_line

SCHEMA_VERSION = "4"

FIGURE_TITLES = {
    "label_distribution": "Label distribution",
    "sample_grid": "Samples per class",
    "pixel_histogram": "Pixel intensities",
    "baseline_loss": "Sanity baseline: training loss",
    "leaked_pairs": "Leaked items beside their train copies",
    "drift_overlay": "Drift against the base: pixel intensities and label shares",
    "label_errors": "Likely label errors: given label → suggested",
    "near_groups": "Near-duplicates: groups of near copies, a row each",
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
    drift: DriftReport | None = None
    """Drift against the base per split (when a comparison exists) and of each split against train."""
    label_errors: LabelErrors | None = None
    """Likely label errors in train (confident learning on out-of-sample predictions), with
    ``baseline-train: true``."""
    near_duplicates: NearDuplicateStats = Field(default_factory=NearDuplicateStats)
    """Near-duplicates within each split and non-train items with a near copy in train (re-encoded,
    shifted, brightened), exact copies excluded."""
    full_lists: list[FullList] = []
    """The CSV files beside report.json that list every item of each finding (the lists above stop at 100)."""


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
    drift: DriftReport | None = None,
    label_errors: LabelErrors | None = None,
    full_lists: list[FullList] | None = None,
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
        near_duplicates=stats.near_duplicates,
        changes=changes,
        gates=gates,
        baseline=baseline,
        figures=figures,
        drift=drift,
        label_errors=label_errors,
        full_lists=full_lists or [],
    )


def render_unchanged(title: str, data: str, content_hash: str | None, base: str,
                     gates: list[Gate] | None = None) -> str:
    """The data is the base branch's: one line, and the gates (judged on cached statistics) when set."""
    short = f" (DVC hash {code(content_hash[:10])})" if content_hash else ""
    said = "its cached statistics were held against the gates." if gates else "nothing to report."
    parts = [f"## {icon(gates)} {inert(title)}" if gates else f"## {inert(title)}",
             f"➖ {code(data)} is unchanged against {code(base)}{short}; {said}"]
    if gates:
        parts += [verdict_line(gates), gates_section(gates, UNITS, INPUTS)]
    return "\n\n".join([*parts, footer()]) + "\n"


def unchanged_outcome(data: str, content_hash: str | None, base: str, gates: list[Gate]) -> str:
    """The plain-text outcome of a run that found the data unchanged."""
    short = f" (DVC {content_hash[:10]})" if content_hash else ""
    return outcome("data-stats", gates, UNITS, [f"{data} unchanged against {base or 'the base'}{short}",
                                                "no new statistics"])


def data_outcome(report: DataReport) -> str:
    """The plain-text outcome of a run: verdict, items per split, the change, imbalance, leakage."""
    counts = ", ".join(f"{count(s.count)} {name}" for name, s in report.splits.items())
    figures = [f"{report.data}: {counts or 'no items'}"]
    if report.changes is not None:
        delta = sum(change.count_delta for change in report.changes.splits.values())
        figures.append(f"{signed_count(delta)} items against {report.changes.base}")
    ratios = {name: s.imbalance_ratio for name, s in report.splits.items() if s.imbalance_ratio is not None}
    if ratios:
        worst = max(ratios, key=lambda name: ratios[name])
        figures.append(f"imbalance up to {ratio(ratios[worst])} ({worst})")
    leaked = [f"{count(n)} {name}" for name, n in report.leakage.per_split.items() if n]
    if leaked:
        figures.append(f"{', '.join(leaked)} items also in train")
    return outcome("data-stats", report.gates, UNITS, figures)


def hash_annotation(report: DataReport) -> str:
    """The note on the changed ``.dvc`` line (plain text): the outcome, then each split whose item count
    changed (``train: 600 -> 800 (+200)``) and the classes that came or went."""
    lines = [data_outcome(report)]
    changes = report.changes
    if changes is not None:
        lines += [f"{name}: {count(c.count_base)} -> {count(c.count_head)} ({signed_count(c.count_delta)}) items"
                  for name, c in changes.splits.items() if c.count_delta]
        if changes.new_classes:
            lines.append(f"new classes: {', '.join(changes.new_classes)}")
        if changes.removed_classes:
            lines.append(f"removed classes: {', '.join(changes.removed_classes)}")
    return "\n".join(lines)


def _shape(shape: list[int] | None, shapes: Mapping[str, int]) -> str:
    if shape is not None:
        return "×".join(str(d) for d in shape) or "scalar"
    return f"{len(shapes)} shapes"


def _label(label: str, class_names: list[str] | None) -> str:
    """A class as a reader knows it: its name once, with the label only where the name does not say it.

    No names (course shards): ``3``. ImageFolder folders ``0``…``9``: ``3``; folders ``cat``, ``dog``:
    ``1 · dog``. A dataset class whose names start with the label (torchvision's ``3 - three``): the name.
    """
    name = label
    if class_names and label.isdigit() and int(label) < len(class_names):
        name = class_names[int(label)]
        says_label = name.startswith(label) and not name[len(label):len(label) + 1].isalnum()
        if not says_label:
            name = f"{label} · {name}"
    return inert(name)


def _splits_table(report: DataReport) -> str:
    names = list(report.splits)
    rows: list[tuple[str, list[str]]] = []

    def row(title: str, cell: Callable[[SplitStats], str]) -> None:
        rows.append((title, [cell(report.splits[n]) for n in names]))

    row("items", lambda s: count(s.count))
    row("item shape", lambda s: _shape(s.shape, s.shapes))
    row("dtype", lambda s: inert(s.dtype))
    row("value range", lambda s: f"{number(s.min)} … {number(s.max)}")
    row("mean (per channel)", lambda s: ", ".join(number(v) for v in s.channel_mean) or numbers.MISSING)
    row("std (per channel)", lambda s: ", ".join(number(v) for v in s.channel_std) or numbers.MISSING)
    row("classes", lambda s: count(len(s.label_counts)))
    row("imbalance (largest/smallest class)", lambda s: ratio(s.imbalance_ratio))
    row("missing classes", lambda s: ", ".join(_label(c, report.class_names) for c in s.missing_classes) or "none")
    row("exact duplicates", lambda s: count(s.duplicates))
    row("items with NaN/Inf", lambda s: count(s.nonfinite))
    row("unreadable files", lambda s: count(len(s.unreadable)))
    lines = ["| | " + " | ".join(f"{code(n)}" for n in names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in rows]
    return "\n".join(lines)


def _findings(report: DataReport) -> list[str]:
    findings = []
    leak = report.leakage
    for split_name, leaked in leak.per_split.items():
        if leaked:
            findings.append(f"⚠️ **Leakage:** {_counted(leaked, f'{code(split_name)} item')} "
                            f"{'has' if leaked == 1 else 'have'} an exact copy in `train`.")
    findings += _near_findings(report.near_duplicates)
    if leak.conflicting_labels:
        findings.append(
            f"⚠️ **Conflicting labels:** {_counted(leak.conflicting_labels, 'identical item')} "
            f"{'carries' if leak.conflicting_labels == 1 else 'carry'} different labels."
        )
    for name, split in report.splits.items():
        if split.count == 0:
            why = "every file of it is unreadable" if split.unreadable else "its files hold zero items"
            findings.append(f"❌ {code(name)} is empty: {why}, so it is left out of the figures and every "
                            "statistic but this table.")
        if split.duplicates:
            findings.append(f"⚠️ {code(name)}: {_counted(split.duplicates, 'exact duplicate')}.")
        if split.nonfinite:
            findings.append(f"⚠️ {code(name)}: {count(split.nonfinite)} items contain NaN or Inf.")
        if split.missing_classes and split.count:
            missing = ", ".join(_label(c, report.class_names) for c in split.missing_classes)
            findings.append(f"⚠️ {code(name)} has no items of class {missing}.")
        if split.unreadable:
            shown = ", ".join(f"{code(path)}" for path in split.unreadable[:10])
            more = f" and {count(len(split.unreadable) - 10)} more" if len(split.unreadable) > 10 else ""
            findings.append(f"❌ {code(name)}: unreadable files {shown}{more}.")
    return findings


def _changes(changes: Changes, class_names: list[str] | None) -> str:
    parts = [f"### What changed against {code(changes.base)}"]
    if changes.files is not None:
        files = changes.files
        counts = (f"{count(len(files.added))} added, {count(len(files.modified))} modified, "
                  f"{count(len(files.deleted))} deleted, {count(len(files.renamed))} renamed")
        listing = "\n".join(
            [f"- ➕ {code(p)}" for p in files.added] + [f"- ✏️ {code(p)}" for p in files.modified]
            + [f"- ➖ {code(p)}" for p in files.deleted] + [f"- 🔀 {code(a)} → {code(b)}" for a, b in files.renamed]
        )
        parts.append(f"DVC files: {counts}." + ("\n\n" + fold("changed files", listing) if listing else ""))
    lines = ["| split | base | head | Δ items | Δ per class |", "|---|---:|---:|---:|---|"]
    for name, change in changes.splits.items():
        per_class = ", ".join(
            f"{_label(label, class_names)}: {signed_count(delta)}" for label, delta in change.label_deltas.items()
        ) or numbers.MISSING
        lines.append(f"| {code(name)} | {count(change.count_base)} | {count(change.count_head)} | "
                     f"{signed_count(change.count_delta)} | {per_class} |")
    parts.append("\n".join(lines))
    notes = []
    if changes.new_classes:
        notes.append("new classes: " + ", ".join(_label(c, class_names) for c in changes.new_classes))
    if changes.removed_classes:
        notes.append("removed classes: " + ", ".join(_label(c, class_names) for c in changes.removed_classes))
    if changes.added_splits:
        notes.append("new splits: " + ", ".join(f"{code(s)}" for s in changes.added_splits))
    if changes.removed_splits:
        notes.append("removed splits: " + ", ".join(f"{code(s)}" for s in changes.removed_splits))
    for name, change in changes.splits.items():
        if change.shape_changed and change.shape_base and change.shape_head:
            notes.append(f"{code(name)} item shape {_shape(change.shape_base, {})} → {_shape(change.shape_head, {})}")
        if change.dtype_changed and change.dtype_base and change.dtype_head:
            notes.append(f"{code(name)} dtype {inert(change.dtype_base)} → {inert(change.dtype_head)}")
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def _label_counts_table(report: DataReport) -> str:
    names = list(report.splits)
    labels: list[str] = []
    for split in report.splits.values():
        labels += [label for label in split.label_counts if label not in labels]
    labels.sort(key=lambda x: (0, int(x)) if x.lstrip("-").isdigit() else (1, 0))
    lines = ["| class | " + " | ".join(f"{code(n)}" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for label in labels:
        cells = []
        for n in names:
            split = report.splits[n]
            cells.append(f"{count(split.label_counts.get(label, 0))} ({percent(split.label_shares.get(label, 0.0))})")
        lines.append(f"| {_label(label, report.class_names)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _baseline(result: BaselineResult) -> str:
    learns = "✅ learns" if result.converged else "❌ does not learn"
    return (
        f"{learns}: {inert(result.model)}, {_counted(result.epochs, 'epoch')} in {numbers.seconds(result.seconds)} on "
        f"{count(result.train_samples)} train items; test accuracy **{percent(result.test_accuracy)}** "
        f"against {percent(result.chance_accuracy)} by always guessing the most common class "
        f"({count(result.test_samples)} test items)."
    )


_LABEL_ERRORS_SHOWN = 10
"""Flagged items in the label-error table before it is folded away."""


def _label_errors(result: LabelErrors, class_names: list[str] | None) -> str:
    """One line when nothing was flagged (or the models were too weak to judge); else the count, how it
    was found, and the flagged items (least believable label first), folded when more than 10."""
    split = f"{code(result.split)}"
    sampled = f"{count(result.items_examined)} {split} items" + (
        f" (a random sample of the {count(result.items_read)} read)" if result.items_examined < result.items_read
        else "")
    cut = (f" The time budget (`baseline-time-budget`) cut the pass short after {numbers.seconds(result.seconds)} "
           f"({number(result.epochs)} epochs per fold); raise it for a fuller look." if result.stopped_early else "")
    if not result.judged and result.undertrained:
        return (f"➖ Not judged: the time left in `baseline-time-budget` trained the models for "
                f"{number(result.epochs)} epochs per fold on {sampled}, under half of what they need to dispute "
                f"a label. Raise `baseline-time-budget` to look for label errors.")
    confused = _confused_pairs(result, class_names)
    if not result.judged and result.confused_pair_count and clearly_above_chance(
            result.out_of_sample_accuracy, result.chance_accuracy, result.items_examined):
        return (f"➖ Not judged: models trained on {sampled} cannot tell the classes apart well enough to say "
                f"which one an item is ({percent(result.out_of_sample_accuracy)} out-of-sample accuracy; every "
                f"pair of classes confused more than {percent(result.pair_confusion_limit)}), so a disagreement "
                f"with a label means nothing.{cut}{confused}")
    if not result.judged:
        return (f"➖ Not judged: models trained on {sampled} predicted the given labels "
                f"{percent(result.out_of_sample_accuracy)} of the time, against {percent(result.chance_accuracy)} "
                f"by always guessing the most common class; too weak to dispute a label.{cut}")
    if not result.flagged:
        return f"✅ None found among {sampled}.{cut}{confused}"
    sample = f"; a random sample of the {count(result.items_read)} read" \
        if result.items_examined < result.items_read else ""
    found = (f"⚠️ **{count(result.flagged)} of {count(result.items_examined)} {split} items** "
             f"({percent(result.flagged / result.items_examined)}{sample}) probably "
             f"{'carries' if result.flagged == 1 else 'carry'} a wrong label: a {inert(result.model)}, "
             f"trained on the other {result.folds - 1} of {result.folds} folds "
             f"({percent(result.out_of_sample_accuracy)} out-of-sample accuracy), confidently sees another class "
             f"(confident learning, per-class thresholds).{cut}{confused}")
    lines = ["| item | labelled | looks like | confidence |", "|---|---|---|---:|"]
    lines += [f"| {_item(result.split, e.item)} | {_label(str(e.label), class_names)} | "
              f"{_label(str(e.suggested), class_names)} | {percent(e.confidence)} |" for e in result.items]
    more = result.flagged - len(result.items)
    if more > 0:
        lines.append(f"\n… and {count(more)} more, less likely ones (report.json lists the first "
                     f"{count(len(result.items))}).")
    table = "\n".join(lines)
    if len(result.items) > _LABEL_ERRORS_SHOWN:
        table = fold(f"The {_counted(len(result.items), 'flagged item')}, least believable label first (lowest "
                     f"probability of the given label)", table)
    return found + "\n\n" + table


def _confused_pairs(result: LabelErrors, class_names: list[str] | None) -> str:
    """The pairs of classes too often confused to judge (empty when none), as a sentence."""
    if not result.confused_pair_count:
        return ""
    pairs = [f"{_label(str(p.label), class_names)} / {_label(str(p.other), class_names)} ({percent(p.confusion)})"
             for p in result.confused_pairs]
    more = result.confused_pair_count - len(pairs)
    listed = ", ".join(pairs) + (f" and {count(more)} more" if more > 0 else "")
    return (f"\n\n➖ **Not judged between {_counted(result.confused_pair_count, 'pair')} of classes** the models "
            f"confuse more than {percent(result.pair_confusion_limit)} of the time (look-alike classes, or many "
            f"label errors between just these two; look at a few items of each): {listed}. No item is flagged "
            f"between them.")


_NEXT_LISTED = 5
"""Items named per finding in the Markdown's next steps; report.json lists up to 100."""


def _label_error_steps(report: DataReport) -> list[str]:
    """The next step for likely label errors, naming the first few; none when nothing was flagged."""
    errors = report.label_errors
    if errors is None or not errors.judged or not errors.flagged:
        return []
    named = [f"{_item(errors.split, e.item)} ({_label(str(e.label), report.class_names)} → "
             f"{_label(str(e.suggested), report.class_names)})" for e in errors.items[:_NEXT_LISTED]]
    return [f"**Likely label errors:** look at the {_counted(errors.flagged, f'flagged {code(errors.split)} item')}"
            f"{' (the figure shows the first 16)' if 'label_errors' in report.figures else ''}: relabel those whose "
            f"label is wrong, drop the truly ambiguous ones and keep the rest (a model can be confidently wrong)"
            f"{_listing(named, errors.flagged, len(errors.items))}."]


def _next_steps(report: DataReport) -> str:
    """The "Next" section: what to do about each finding, naming the items concerned; or that there is
    nothing to do."""
    steps: list[str] = []
    leak = report.leakage
    for split, total in leak.per_split.items():
        if total:
            listed = leak.leaked_items[split].items if split in leak.leaked_items else []
            pairs = [f"{_item(split, e.item)} = {_item('train', e.train_item)}" for e in listed[:_NEXT_LISTED]]
            copies, these = ("the copy", "this item") if total == 1 else ("the copies", "these items")
            steps.append(f"**Leakage:** {_counted(total, f'{code(split)} item')} {_is(total)} also in `train`: remove "
                         f"{copies} from `train` (or {these} from {code(split)}), or regenerate the split so no item "
                         f"is in both{_listing(pairs, total, len(listed))}.")
    steps += _near_steps(report.near_duplicates)
    for split, stats in report.splits.items():
        if stats.duplicates:
            listed_dups = stats.duplicate_items.items
            repeats = [f"{_item(split, d.item)} (copy of {_item(split, d.first)})" for d in listed_dups[:_NEXT_LISTED]]
            steps.append(f"**Duplicates:** drop {_counted(stats.duplicates, f'repeated {code(split)} item')}, keeping "
                         f"the first copy{_listing(repeats, stats.duplicates, len(listed_dups))}.")
    if leak.conflicting_labels:
        listed_conflicts = leak.conflicting_items.items
        conflicts = [
            f"{_item(c.first_split, c.first_item)} (label {_label(str(c.first_label), report.class_names)}) vs "
            f"{_item(c.split, c.item)} (label {_label(str(c.label), report.class_names)})"
            for c in listed_conflicts[:_NEXT_LISTED]
        ]
        steps.append(f"**Conflicting labels:** {_counted(leak.conflicting_labels, 'item')} "
                     f"{_is(leak.conflicting_labels)} labelled twice, differently: keep the right label and relabel "
                     f"or drop the other copy{_listing(conflicts, leak.conflicting_labels, len(listed_conflicts))}.")
    failed = {gate.name: gate for gate in report.gates if not gate.passed}
    ratios = {n: s.imbalance_ratio for n, s in report.splits.items() if s.imbalance_ratio is not None}
    if "max-imbalance" in failed and ratios:
        split = max(ratios, key=lambda n: ratios[n])
        counts = report.splits[split].label_counts
        large, small = max(counts, key=lambda c: counts[c]), min(counts, key=lambda c: counts[c])
        steps.append(f"**Imbalance:** {code(split)} has {ratio(ratios[split])} as many items of class "
                     f"{_label(large, report.class_names)} ({count(counts[large])}) as of class "
                     f"{_label(small, report.class_names)} ({count(counts[small])}); `max-imbalance` allows "
                     f"{ratio(failed['max-imbalance'].threshold)}. Add items of the small classes, resample, or "
                     f"weight the loss by class; raise `max-imbalance` if the imbalance is real.")
    if "min-samples" in failed and report.splits:
        split = min(report.splits, key=lambda n: report.splits[n].count)
        steps.append(f"**Too few items:** {code(split)} has {_counted(report.splits[split].count, 'item')}; "
                     f"`min-samples` asks for {number(failed['min-samples'].threshold)}. Add items, or lower "
                     f"`min-samples`.")
    for split, stats in report.splits.items():
        if stats.unreadable:
            unreadable = len(stats.unreadable)
            steps.append(f"**Unreadable files:** re-export or delete the {_counted(unreadable, f'{code(split)} file')} "
                         f"listed under Findings; {'it is' if unreadable == 1 else 'they are'} left out of every "
                         f"statistic.")
        if stats.nonfinite:
            steps.append(f"**NaN/Inf:** {_counted(stats.nonfinite, f'{code(split)} item')} "
                         f"{'holds' if stats.nonfinite == 1 else 'hold'} NaN or Inf: fix the step that wrote them (a "
                         f"division by zero, a log of 0) or drop them; they are left out of the mean, std and "
                         f"histogram.")
        if stats.missing_classes:
            missing = ", ".join(_label(c, report.class_names) for c in stats.missing_classes)
            steps.append(f"**Missing classes:** add {code(split)} items of class {missing}, or nothing measured on "
                         f"{code(split)} covers them.")
    baseline = report.baseline
    if baseline is not None and not baseline.converged:
        steps.append(f"**The baseline does not learn:** a {inert(baseline.model)} reached "
                     f"{percent(baseline.test_accuracy)} "
                     f"test accuracy against {percent(baseline.chance_accuracy)} by always guessing the most common "
                     f"class. Check that each image is paired with its own label (a shuffle of the images alone, an "
                     f"off-by-one between files) and that the images are not constant.")
    steps += _drift_and_issue_steps(report)
    steps += _label_error_steps(report)
    if not steps:
        return "### Next\n\nNothing to fix: no leakage, duplicates, conflicting labels, unreadable files or NaN/Inf."
    return "### Next\n\n" + "\n".join(f"- {step}" for step in steps)


def _near_findings(near: NearDuplicateStats) -> list[str]:
    """One line per split with near-leaked items or near-duplicate pairs (nothing when none)."""
    limit = f"pixel distance ≤ {numbers.typed(near.threshold)}"
    lines = []
    for split, leaked in near.leaked.items():
        if leaked.total:
            first = [f"{_item(split, e.item)} ≈ {_item('train', e.train_item)} (distance {number(e.distance)})"
                     for e in leaked.items[:3]]
            what = "a near-duplicate of a `train` item" if leaked.total == 1 else "near-duplicates of `train` items"
            lines.append(f"⚠️ **Near-leakage:** {_counted(leaked.total, f'{code(split)} item')} {_is(leaked.total)} "
                         f"{what} ({limit}): {', '.join(first)}"
                         f"{f' and {count(leaked.total - len(first))} more' if leaked.total > len(first) else ''}.")
    for split, groups in near.within.items():
        if groups.total:
            lines.append(f"⚠️ {code(split)}: {_counted(groups.items, 'item')} in "
                         f"{_counted(groups.total, 'group')} of near-duplicates (largest: {count(groups.largest)} "
                         f"items; {limit}).")
    return lines


def _near_steps(near: NearDuplicateStats) -> list[str]:
    """What to do about near-leaked items and near-duplicate pairs, naming the first few."""
    steps = []
    for split, leaked in near.leaked.items():
        if leaked.total:
            pairs = [f"{_item(split, e.item)} ≈ {_item('train', e.train_item)} (distance {number(e.distance)})"
                     for e in leaked.items[:_NEXT_LISTED]]
            what = "is a near copy of a `train` item" if leaked.total == 1 else "are near copies of `train` items"
            steps.append(f"**Near-leakage:** {_counted(leaked.total, f'{code(split)} item')} {what} "
                         f"(re-encoded, shifted by a pixel or brightened): look at the picture, then drop "
                         f"{'it' if leaked.total == 1 else 'them'} from {code(split)} (or the sources from `train`), "
                         f"or split by source so copies of one picture stay on one side"
                         f"{_listing(pairs, leaked.total, len(leaked.items))}.")
    for split, found in near.within.items():
        if found.total:
            shown = [f"{' ≈ '.join(_item(split, i) for i in g.items[:4])}{' …' if g.size > 4 else ''} "
                     f"({_counted(g.size, 'item')})" for g in found.groups[:_NEXT_LISTED]]
            steps.append(f"**Near-duplicates:** {code(split)} has {_counted(found.total, 'group')} of near-identical "
                         f"items ({count(found.items)} items): each group is one picture re-encoded, resized or "
                         f"shifted; keep one item per group"
                         f"{_listing(shown, found.total, len(found.groups))}.")
    return steps


def _item(split: str, item: int | str) -> str:
    """An item as the reader finds it again: ``test`` 17 (index within the split), or its file path
    (which names the split)."""
    return f"{code(split)} {item}" if isinstance(item, int) else f"{code(item)}"


def _counted(n: int, noun: str) -> str:
    return f"{count(n)} {noun}" + ("" if n == 1 else "s")


def _is(n: int) -> str:
    return "is" if n == 1 else "are"


def _listing(shown: list[str], total: int, listed: int) -> str:
    """``: a, b, c`` plus how many more there are and where to find them; empty when nothing is listed."""
    if not shown:
        return ""
    more = total - len(shown)
    if more <= 0:
        return ": " + ", ".join(shown)
    where = "all in report.json" if listed >= total else f"report.json lists the first {count(listed)}"
    return ": " + ", ".join(shown) + f" and {count(more)} more ({where})"


# ---------------------------------------------------------------------------------------------------
# Drift and image issues


_ISSUE_TEXT = {
    "constant": "constant (every pixel equal)",
    "near_blank": f"near-blank ({numbers.typed_percent(image_issues.NEAR_BLANK_SHARE)} of pixels in a 1/8 slice "
                  "of the range)",
    "dark": f"very dark (fewer than {numbers.typed_percent(image_issues.DARK_SHARE)} of pixels reach "
            f"{numbers.typed_percent(image_issues.DARK_LEVEL)} of the range)",
    "bright": f"very bright (fewer than {numbers.typed_percent(image_issues.BRIGHT_SHARE)} of pixels below "
              f"{numbers.typed_percent(image_issues.BRIGHT_LEVEL)} of the range)",
    "low_information": f"low information (entropy below {numbers.typed(image_issues.LOW_ENTROPY_BITS)} bits)",
    "odd_aspect_ratio": f"extreme aspect ratio (short side below {numbers.typed(image_issues.ODD_ASPECT_RATIO)}× "
                        "the long)",
    "odd_size": f"extreme size (over {numbers.typed(image_issues.ODD_SIZE_FACTOR)}× off the median side)",
    "grayscale_in_rgb": "grayscale among colour images",
    "mixed_channels": "channel count unlike most items",
}
"""How the report names each image issue, with its threshold (:mod:`mlgate.data.image_issues`)."""

_MEASURE_TEXT = {"labels": "labels", "pixels": "pixel intensities", "channels": "channel mean/std", "size": "sizes"}


def _p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {number(p)}"


def _sigma(value: float) -> str:
    """A shift in standard deviations, to the hundredth (the drift rule's 0.1 σ is two digits):
    ``+0.46 σ``, ``-0.11 σ``, ``0.00 σ``."""
    text = f"{value:+.2f}"
    return ("0.00" if text in ("+0.00", "-0.00") else text) + " σ"


def _label_words(labels: LabelDrift, moved: bool = True) -> str:
    """``label shares moved by 3.1% (TVD), χ² p = 0.02``; for shares that did not move, ``label shares
    within noise (TVD 0.3%, χ² p = 1.00)``."""
    test = "too few items for a χ² test" if labels.p_value is None else f"χ² {_p_value(labels.p_value)}"
    if not moved:
        return f"label shares within noise (TVD {percent(labels.tvd)}, {test})"
    return f"label shares moved by {percent(labels.tvd)} (TVD), {test}"


def _pixel_words(pixels: PixelDrift, moved: bool = True) -> str:
    if not moved:
        return f"pixel intensities within noise (KS {number(pixels.ks)}, noise level {number(pixels.ks_noise)})"
    return (f"pixel intensities KS {number(pixels.ks)} (noise level {number(pixels.ks_noise)}, largest at pixel "
            f"value {number(pixels.ks_at)}), Wasserstein {number(pixels.wasserstein)} "
            f"({percent(pixels.wasserstein_relative)} of the range)")


def _drift_words(drift: SplitDrift) -> str:
    """One plain sentence, what moved first: ``label shares moved by 3.1% (TVD), χ² p = 0.02; ...``, then
    ``label shares within noise (TVD 0.3%, ...)`` for a measure that did not."""
    words = []
    if drift.labels is not None:
        words.append(_label_words(drift.labels, "labels" in drift.moved))
    if drift.pixels is not None:
        words.append(_pixel_words(drift.pixels, "pixels" in drift.moved))
    if drift.channels is not None and "channels" in drift.moved:
        shifts = ", ".join(f"{_sigma(m)} / {_sigma(s)}" for m, s in
                           zip(drift.channels.mean_shift, drift.channels.std_shift, strict=True))
        words.append(f"channel mean / std shifted by {shifts}")
    if drift.size is not None:
        size = drift.size
        words.append(f"median side {number(size.median_side_reference)} → {number(size.median_side)} px, median "
                     f"aspect {number(size.median_aspect_reference)} → {number(size.median_aspect)} (KS "
                     f"{number(size.ks_side)} / {number(size.ks_aspect)})")
    words.sort(key=lambda text: "within noise" in text)  # stable: the measures that moved lead
    return "; ".join(words)


def _moved(drift: SplitDrift) -> str:
    if not drift.moved:
        return "within noise"
    return "⚠️ moved: " + ", ".join(_MEASURE_TEXT[m] for m in drift.moved)


def _drift_table(drifts: Mapping[str, SplitDrift]) -> str:
    sizes = any(d.size is not None for d in drifts.values())
    head = "| split | items | label TVD | χ² | pixel KS (noise) | Wasserstein (of range) | mean / std shift |"
    lines = [head + (" size |" if sizes else "") + " verdict |",
             "|---|---:|---:|---|---:|---:|---|" + ("---|" if sizes else "") + "---|"]
    for name, d in drifts.items():
        labels, pixels, channels = d.labels, d.pixels, d.channels
        chi = numbers.MISSING
        if labels is not None and labels.chi_square is not None and labels.p_value is not None:
            chi = f"{number(labels.chi_square)} (dof {labels.dof}), {_p_value(labels.p_value)}"
        elif labels is not None:
            chi = "too few items"
        cells = [
            f"{code(name)}" if d.reference == "base" else f"{code(name)} vs {code(d.reference)}",
            f"{count(d.reference_items)} → {count(d.items)}",
            percent(labels.tvd) if labels else numbers.MISSING,
            chi,
            f"{number(pixels.ks)} ({number(pixels.ks_noise)})" if pixels else numbers.MISSING,
            f"{number(pixels.wasserstein)} ({percent(pixels.wasserstein_relative)})" if pixels else numbers.MISSING,
            ", ".join(f"{_sigma(m)} / {_sigma(s)}" for m, s in
                      zip(channels.mean_shift, channels.std_shift, strict=True)) if channels else numbers.MISSING,
        ]
        if sizes:
            cells.append(f"side {number(d.size.median_side_reference)} → {number(d.size.median_side)} px, KS "
                         f"{number(max(d.size.ks_side, d.size.ks_aspect))}" if d.size else numbers.MISSING)
        cells.append(_moved(d))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _drift_section(report: DataReport) -> str | None:
    """``### Drift``: base → head per split and each split against train; folded when nothing moved."""
    drift = report.drift
    if drift is None or not (drift.splits or drift.within):
        return None
    parts = []
    if drift.splits:
        parts.append(f"Against {code(drift.base)}:\n\n" + _drift_table(drift.splits))
        parts += [f"- {code(name)}: {_drift_words(d)}." for name, d in drift.splits.items() if d.moved]
    for name, d in drift.within.items():
        verdict = (f"{code(name)} still represents {code(d.reference)}" if not d.moved else
                   f"⚠️ {code(name)} differs from {code(d.reference)} in "
                   + ", ".join(_MEASURE_TEXT[m] for m in d.moved))
        parts.append(f"**{inert(d.reference.capitalize())} → {inert(name)}** (within this data): {verdict}: "
                     f"{_drift_words(d)}.")
    body = "\n\n".join(parts)
    moved = any(d.moved for d in [*drift.splits.values(), *drift.within.values()])
    if not moved:
        what = f"{code(drift.base)} → head" if drift.splits else "train → other splits"
        return fold(f"Drift ({what}): nothing moved beyond sampling noise", body)
    return "### Drift\n\n" + body


def _image_issues_section(report: DataReport) -> str | None:
    """``### Image issues``: items per issue and split, with the first few; None when there are none."""
    found = {name: split.image_issues.present() for name, split in report.splits.items()}
    issues = [issue for issue in image_issues.ISSUES if any(issue in present for present in found.values())]
    if not issues:
        return None
    names = list(report.splits)
    lines = ["| issue | " + " | ".join(f"{code(n)}" for n in names) + " | first items |",
             "|---|" + "---:|" * len(names) + "---|"]
    for issue in issues:
        cells = [count(found[n][issue].total) if issue in found[n] else "0" for n in names]
        first = [_item(n, item) for n in names if issue in found[n] for item in found[n][issue].items[:3]][:3]
        lines.append(f"| {_ISSUE_TEXT[issue]} | " + " | ".join(cells) + f" | {', '.join(first)} |")
    return ("### Image issues\n\n" + "\n".join(lines)
            + "\n\nreport.json lists up to 100 items per issue and split (`splits.<split>.image_issues`).")


def _drift_and_issue_sections(report: DataReport) -> list[str]:
    return [section for section in (_drift_section(report), _image_issues_section(report)) if section]


def _drift_and_issue_steps(report: DataReport) -> list[str]:
    """Next steps for drift that moved and for image issues."""
    steps = []
    drift = report.drift
    failed = {gate.name for gate in report.gates if not gate.passed}
    if drift is not None:
        for name, d in drift.splits.items():
            if "labels" in d.moved and d.labels is not None:
                raise_gate = " If it is intended, raise `max-label-drift`." if "max-label-drift" in failed else ""
                steps.append(f"**Label drift:** {code(name)} {_label_words(d.labels)} against {code(drift.base)}: "
                             f"check that "
                             f"the new items were collected like the old ones (a class added in bulk, a filter that "
                             f"dropped one).{raise_gate}")
            if "pixels" in d.moved and d.pixels is not None:
                raise_gate = " If it is intended, raise `max-pixel-drift`." if "max-pixel-drift" in failed else ""
                steps.append(f"**Pixel drift:** {code(name)} {_pixel_words(d.pixels)} against {code(drift.base)}: "
                             f"check the "
                             f"new items' preprocessing (scaling, normalisation, colour space, compression, "
                             f"exposure).{raise_gate}")
        for name, d in drift.within.items():
            if d.moved:
                steps.append(f"**{code(name)} no longer represents {code(d.reference)}** ("
                             + ", ".join(_MEASURE_TEXT[m] for m in d.moved) + f"): draw {code(name)} from the same "
                             f"source and period as {code(d.reference)}, or re-split, so its scores predict the "
                             "model's.")
    for split, stats in report.splits.items():
        present = stats.image_issues.present()
        if present:
            kinds = ", ".join(f"{count(found.total)} {_ISSUE_TEXT[issue].split(' (')[0]}"
                              for issue, found in present.items())
            first = list(dict.fromkeys(_item(split, item) for found in present.values() for item in found.items[:2]))
            first = first[:_NEXT_LISTED]
            steps.append(f"**Image issues:** {code(split)} has {kinds}: look at them and drop or fix the broken ones; "
                         f"first: {', '.join(first)} (report.json lists up to 100 per issue).")
    return steps


FULL_LIST_NAMES = {
    "exact_duplicates": "Exact duplicates", "leaked_items": "Leaked items (exact copies of train items)",
    "near_duplicates": "Near-duplicate groups (every member)",
    "near_leaked_items": "Near-leaked items (near copies of train items)",
    "conflicting_labels": "Conflicting labels", "image_issues": "Image issues", "label_errors": "Likely label errors",
}


def _full_lists(lists: list[FullList]) -> str:
    """One line per CSV file that has rows: what it lists, its path in the report folder, its rows."""
    lines = []
    for full in lists:
        if not full.rows:
            continue
        rows = f"{count(full.rows)} row{'s' if full.rows != 1 else ''}"
        short = f"; the first {count(full.rows)} of {count(full.total)}" if full.total > full.rows else ""
        what = FULL_LIST_NAMES.get(full.finding) or inert(full.finding)
        lines.append(f"- {what}: full list: {code(full.file)} ({rows}{short})")
    return ("Every item of each finding, one row per item, in the report folder (`findings-dir` output); "
            "cells that would start a spreadsheet formula begin with `'`.\n\n" + "\n".join(lines))


def render_markdown(report: DataReport, figure_links: Mapping[str, str], *, fallback_chart: str = "",
                    note: str = "") -> str:
    """The report as Markdown; ``figure_links`` maps figure name -> URL or relative path."""
    counts = " · ".join(f"**{count(s.count)}** {inert(name)}" for name, s in report.splits.items())
    hash_text = f" · DVC {code(report.content_hash[:10])}" if report.content_hash else ""
    parts = [f"## {icon(report.gates)} {inert(report.title)}", verdict_line(report.gates),
             f"{code(report.data)} ({inert(report.layout)} layout): {counts}{hash_text}",
             gates_section(report.gates, UNITS, INPUTS)]
    if report.changes is not None:
        parts.append(_changes(report.changes, report.class_names))
    findings = _findings(report)
    # "No problems found" would contradict a drift, image-issue or label-error warning further down
    nothing = "No leakage, near-leakage, duplicates, conflicting labels, missing classes, NaN/Inf or unreadable files."
    parts.append("### Findings\n\n" + ("\n".join(f"- {f}" for f in findings) if findings else nothing))
    parts += _drift_and_issue_sections(report)
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
    if report.label_errors is not None:
        parts.append("### Likely label errors\n\n" + _label_errors(report.label_errors, report.class_names))
    if any(full.rows for full in report.full_lists):
        parts.append("### Full lists\n\n" + _full_lists(report.full_lists))
    parts.append(_next_steps(report))
    parts.append(footer())
    return "\n\n".join(parts) + "\n"
