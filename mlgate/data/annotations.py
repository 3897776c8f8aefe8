"""The data-stats check run's annotation: a note on the line of the ``.dvc`` file (or ``dvc.lock``) that
records the dataset's hash, so the pull request's Files changed shows the verdict where the data changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlgate.data.dvc import DvcError, DvcRunner
from mlgate.data.report import DataReport, hash_annotation
from mlgate.github.checks import Annotation, AnnotationLevel

if TYPE_CHECKING:
    from collections.abc import Sequence


def hash_annotations(report: DataReport, hash_lines: Sequence[tuple[str, int]]) -> tuple[Annotation, ...]:
    """One annotation per line that records the data's hash, when the data changed (else none): a
    ``warning`` when a gate failed, else a ``notice``; the message is the outcome and the changed counts."""
    if not report.data_changed:
        return ()
    level: AnnotationLevel = "notice" if report.passed else "warning"
    message = hash_annotation(report)
    return tuple(Annotation(path=path, line=line, level=level, message=message,
                            title=f"{report.title}: {report.data} changed") for path, line in hash_lines)


def dvc_annotations(report: DataReport, dvc: DvcRunner) -> tuple[Annotation, ...]:
    """:func:`hash_annotations` for the lines DVC's files hold in the working tree; none when DVC does not
    track the data or its files cannot be read (the report itself already says what it could)."""
    if not report.data_changed:
        return ()
    try:
        lines = dvc.hash_lines(report.data) if dvc.is_dvc_repo() else []
    except DvcError:
        return ()
    return hash_annotations(report, lines)
