"""Full lists end to end: entrypoint.py as the runner starts it; the next step reads the CSV files from the
`findings-dir` output, as the runner user (uid 1001) when the container ran as root."""

from __future__ import annotations

import csv
import io
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate.data.findings import COLUMNS
from tests.fixtures.datasets import make_course, make_imagefolder
from tests.helpers import Run, run_entrypoint

RUNNER_UID = 1001
DATA = "data/processed"


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A folder others may enter, like the runner's checkout (pytest's own tmp_path root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mlgate-workspace-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)  # the container's files must not depend on a friendly umask
    yield
    os.umask(old)


def run_action(tmp_path: Path, workspace: Path) -> Run:
    env = {"INPUT_MODE": "data-stats", "INPUT_DATA": DATA, "INPUT_DVC-PULL": "false", "INPUT_COMPARE-BASE": "false",
           "INPUT_HOST-FIGURES": "false"}
    return run_entrypoint(tmp_path / "run", workspace, "push", {}, env, {})


def read_as_next_step(path: Path) -> str:
    """The file's text as a later step of the job reads it: as uid 1001 when we are root."""
    if os.geteuid() == 0:
        done = subprocess.run(["cat", str(path)], user=RUNNER_UID, group=RUNNER_UID, extra_groups=[],
                              capture_output=True, timeout=30, check=False)
    else:
        done = subprocess.run(["cat", str(path)], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


def rows(findings: Path, kind: str) -> list[dict[str, str]]:
    text = read_as_next_step(findings / f"{kind}.csv")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


def test_course_layout__findings_dir_output_holds_every_leaked_item_readable_by_the_next_step(
        tmp_path: Path, workspace: Path, strict_umask: None) -> None:
    truth = make_course(workspace / DATA, n_train=800, n_test=300, leaks=230, duplicates=120, dtype="uint8")

    done = run_action(tmp_path, workspace)

    assert done.returncode == 0, done.stderr + done.stdout
    findings = workspace / done.outputs["findings-dir"]
    assert done.outputs["findings-dir"] == "mlgate-report/findings"
    assert stat.S_IMODE(findings.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in findings.iterdir()} == {0o644}
    leaked = rows(findings, "leaked_items")
    assert {(int(r["item"]), int(r["other_item"])) for r in leaked} == set(truth.leaked_from["test"].items())
    assert len(leaked) == 230
    assert len(rows(findings, "exact_duplicates")) == 120
    report = done.report_json()
    assert len(report["leakage"]["leaked_items"]["test"]["items"]) == 100  # report.json keeps its first 100
    assert {"finding": "leaked_items", "file": "findings/leaked_items.csv", "rows": 230, "total": 230} \
        in report["full_lists"]
    assert "full list: `findings/leaked_items.csv` (230 rows)" in done.summary


def test_imagefolder__same_files_and_columns_with_paths_as_items(tmp_path: Path, workspace: Path,
                                                                 strict_umask: None) -> None:
    truth = make_imagefolder(workspace / DATA, per_class={"train": 2, "test": 1}, classes=104, leaks=102,
                             size=(8, 8))

    done = run_action(tmp_path, workspace)

    assert done.returncode == 0, done.stderr + done.stdout
    findings = workspace / done.outputs["findings-dir"]
    leaked = rows(findings, "leaked_items")
    assert {(r["item"], r["other_item"]) for r in leaked} == set(truth.leaked_from["test"].items())
    assert len(leaked) == 102
    assert sorted(p.name for p in findings.iterdir()) == sorted(
        f"{kind}.csv" for kind in ("exact_duplicates", "leaked_items", "near_duplicates", "near_leaked_items",
                                   "conflicting_labels", "image_issues", "label_errors"))
