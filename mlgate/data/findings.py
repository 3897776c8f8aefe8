"""Full lists: every item of every finding as CSV files in ``findings/`` beside report.json.

One file per finding kind (``findings/leaked_items.csv`` ...), every file with the same header
(:data:`COLUMNS`), so a script reads the one it needs with ``csv.DictReader`` or ``pandas.read_csv``, or
concatenates them all, without knowing which columns a kind has. A kind is one small function from the
measured results to rows (:data:`KINDS`); adding or changing a kind touches only its function.

Cells that come from data (paths, folder names) are text for a spreadsheet, never a formula: a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe (OWASP's
advice on CSV injection), and so does one that already starts with an apostrophe, so removing one
leading apostrophe from every cell that has one gives the exact value back. Numbers are written as
numbers (negative ones never occur).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from mlgate.data.item_lists import ItemId

if TYPE_CHECKING:
    from mlgate.data.label_errors import LabelErrorItem
    from mlgate.data.stats import DatasetStats

FOLDER = "findings"
COLUMNS = ("finding", "split", "item", "label", "group", "other_split", "other_item", "other_label",
           "distance", "probability", "issue")
"""The header of every file. ``item``: index within the split, or (ImageFolder) path relative to the data
folder. ``group``: the item's group (exact duplicates: the first item with the same content; near-duplicates:
the group's number within its split, 1 = the largest). ``other_*``: the item it was found with (the
first copy, the train copy, the closest train item, the first item labelled otherwise); for label
errors ``other_label`` is the suggested label and ``probability`` the out-of-sample probability of it.
``distance``: near-duplicate distance (0 for exact copies). ``issue``: the image issue's name."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")

Cell = ItemId | float | None
Row = dict[str, Cell]


class FullList(BaseModel):
    """One CSV file of ``findings/``: every item of one finding kind."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    finding: str
    """The finding kind (``leaked_items``, ``label_errors`` ...)."""
    file: str
    """The file, relative to the report folder (``findings/leaked_items.csv``)."""
    rows: int
    """Items in the file (one row each)."""
    total: int
    """Items with the finding: every one is a row (equal to ``rows``)."""


@dataclass(frozen=True)
class Measured:
    """What the rows are made of."""

    stats: DatasetStats
    label_errors: list[LabelErrorItem] | None = None
    """Every flagged item, least believable label first; None when the pass did not run."""


def _row(finding: str, split: str, item: ItemId, **cells: Cell) -> Row:
    return {"finding": finding, "split": split, "item": item, **cells}


def _exact_duplicates(m: Measured) -> Iterator[Row]:
    everything = m.stats.everything
    for split, table in (everything.duplicates.items() if everything else ()):
        for r in table.rows():
            yield _row("exact_duplicate", split, r["item"], label=r["label"], group=r["first"], other_split=split,
                       other_item=r["first"], distance=0.0)


def _leaked_items(m: Measured) -> Iterator[Row]:
    everything = m.stats.everything
    for split, table in (everything.leaked.items() if everything else ()):
        for r in table.rows():
            yield _row("leaked_item", split, r["item"], label=r["label"], other_split="train",
                       other_item=r["train_item"], other_label=r["train_label"], distance=0.0)


def _conflicting_labels(m: Measured) -> Iterator[Row]:
    everything = m.stats.everything
    for r in (everything.conflicting.rows() if everything else ()):
        yield _row("conflicting_label", str(r["split"]), r["item"], label=r["label"], other_split=r["first_split"],
                   other_item=r["first_item"], other_label=r["first_label"], distance=0.0)


def _image_issues(m: Measured) -> Iterator[Row]:
    everything = m.stats.everything
    for split, issues in (everything.image_issues.items() if everything else ()):
        for issue, items in issues.items():
            for item in items:
                yield _row("image_issue", split, item, issue=issue)


def _near_duplicates(m: Measured) -> Iterator[Row]:
    for member in m.stats.near_duplicates.listing.members:
        yield _row("near_duplicate", member.split, member.item, label=member.label, group=member.group)


def _near_leaked_items(m: Measured) -> Iterator[Row]:
    for split, leaked in m.stats.near_duplicates.listing.leaked.items():
        for p in leaked:
            yield _row("near_leaked_item", split, p.item, label=p.label, other_split="train", other_item=p.train_item,
                       other_label=p.train_label, distance=p.distance)


def _label_errors(m: Measured) -> Iterator[Row]:
    for e in m.label_errors or ():
        yield _row("label_error", "train", e.item, label=e.label, other_label=e.suggested, probability=e.confidence)


KINDS: dict[str, Callable[[Measured], Iterator[Row]]] = {
    "exact_duplicates": _exact_duplicates,
    "leaked_items": _leaked_items,
    "near_duplicates": _near_duplicates,
    "near_leaked_items": _near_leaked_items,
    "conflicting_labels": _conflicting_labels,
    "image_issues": _image_issues,
    "label_errors": _label_errors,
}
"""File stem -> the function that lists that kind's rows; files are written in this order."""


def full_lists(measured: Measured) -> tuple[dict[str, bytes], list[FullList]]:
    """Every kind's CSV (path relative to the report folder -> bytes, UTF-8) and what each holds. Every
    file is written, a header alone when nothing was found (or the label-error pass did not run), so a
    folder reused by another run never keeps an older list."""
    files: dict[str, bytes] = {}
    lists: list[FullList] = []
    for kind, rows_of in KINDS.items():
        data, rows = csv_bytes(rows_of(measured))
        path = f"{FOLDER}/{kind}.csv"
        files[path] = data
        lists.append(FullList(finding=kind, file=path, rows=rows, total=rows))
    return files, lists


def csv_bytes(rows: Iterator[Mapping[str, Cell]]) -> tuple[bytes, int]:
    """The rows under :data:`COLUMNS` (missing cells empty), every cell made inert, as UTF-8; and how many
    rows. Encoded row by row into one buffer, which becomes the result without a copy: a list of two
    million rows is held once, not as text, its copy and its encoding (three times)."""
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([cell_text(row.get(column)) for column in COLUMNS])
        count += 1
    text.detach()
    return raw.getvalue(), count


def to_csv(rows: Iterator[Mapping[str, Cell]]) -> tuple[str, int]:
    """:func:`csv_bytes` as text."""
    data, count = csv_bytes(rows)
    return data.decode("utf-8"), count


def cell_text(value: Cell) -> str:
    """A cell as text: empty for None, numbers as numbers (floats to 4 decimals), text made inert."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is an int
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "nan"
    return "'" + value if value.startswith(FORMULA_STARTS) else value
