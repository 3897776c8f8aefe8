"""A broken runner environment, run as the runner runs the action (entrypoint.py in a subprocess).

File commands that cannot be written, event payloads that are missing or malformed, a pull request run
without a token, a report folder that cannot be written, a figure that cannot be drawn: each ends in
a clear message and the exit code the contract gives it (2: the environment is wrong), never a
traceback, and the report still reaches the job summary wherever it was computed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Run, run_entrypoint

pytestmark = pytest.mark.slow

REPORT_HEADING = "## ℹ️ Data report"  # the data-stats report with no gates configured
PR_EVENT = {
    "action": "synchronize",
    "pull_request": {
        "number": 7,
        "head": {"sha": "1" * 40, "ref": "feature", "repo": {"full_name": "o/r"}},
        "base": {"sha": "2" * 40, "ref": "main", "repo": {"full_name": "o/r"}},
    },
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    from tests.fixtures.datasets import make_course

    root = tmp_path / "workspace"
    make_course(root / "data", n_train=60, n_test=20, shards=None, seed=3)
    return root


def _run(tmp_path: Path, workspace: Path, *, event_name: str = "push", event: Mapping[str, Any] | None = None,
         runner_env: Mapping[str, str | None] | None = None, **inputs: str) -> Run:
    return run_entrypoint(tmp_path / "files", workspace, event_name, event or {}, {"GITHUB_REPOSITORY": "o/r"},
                          {"mode": "data-stats", "data": "data", **inputs}, runner_env=runner_env)


def _no_traceback(run: Run) -> None:
    assert "Traceback" not in run.stdout + run.stderr


# ---- the file commands


@pytest.mark.parametrize(("make", "why"), [
    pytest.param(lambda p: p.mkdir(), "it is a folder, not a file", id="folder", marks=pytest.mark.reliability(
        "environment", "`GITHUB_OUTPUT` is a folder",
        "exit 2; `::error` names GITHUB_OUTPUT and says it is a folder; the report is in the job summary and "
        "report.md is written")),
    pytest.param(lambda p: None, "does not exist", id="missing-folder", marks=pytest.mark.reliability(
        "environment", "`GITHUB_OUTPUT` in a missing folder",
        "exit 2; `::error` names GITHUB_OUTPUT and its missing folder; the report is in the job summary")),
])
def test_github_output_unwritable__exit_2_naming_it_and_the_report_still_in_the_summary(
        tmp_path: Path, workspace: Path, make: Any, why: str) -> None:
    output = tmp_path / "broken" / "output"
    output.parent.mkdir() if why != "does not exist" else None
    make(output)

    run = _run(tmp_path, workspace, runner_env={"GITHUB_OUTPUT": str(output)})

    assert run.returncode == 2
    assert "::error title=Cannot write::Cannot write to GITHUB_OUTPUT" in run.stdout
    assert why in run.stdout
    assert REPORT_HEADING in run.summary  # published before the outputs were tried
    assert "### ❌ mlgate: Cannot write" in run.summary
    assert (workspace / "mlgate-report" / "report.md").is_file()
    _no_traceback(run)


@pytest.mark.parametrize("where", [
    pytest.param("folder", marks=pytest.mark.reliability(
        "environment", "`GITHUB_STEP_SUMMARY` is a folder",
        "exit 2; `::error` names GITHUB_STEP_SUMMARY; outputs are still set and report.md is written")),
    pytest.param("missing-folder", marks=pytest.mark.reliability(
        "environment", "`GITHUB_STEP_SUMMARY` in a missing folder",
        "exit 2; `::error` names GITHUB_STEP_SUMMARY and its missing folder; outputs are still set")),
])
def test_step_summary_unwritable__exit_2_naming_it_and_outputs_still_set(
        tmp_path: Path, workspace: Path, where: str) -> None:
    summary = tmp_path / "broken" / "summary"
    if where == "folder":
        summary.mkdir(parents=True)

    run = _run(tmp_path, workspace, runner_env={"GITHUB_STEP_SUMMARY": str(summary)})

    assert run.returncode == 2
    assert "::error title=Cannot write::Cannot write to GITHUB_STEP_SUMMARY" in run.stdout
    assert ("it is a folder" if where == "folder" else "does not exist") in run.stdout
    assert run.outputs["passed"] == "true" and run.outputs["report"] == "mlgate-report/report.md"
    assert (workspace / "mlgate-report" / "report.md").is_file()
    _no_traceback(run)


# ---- the event payload


def _payload_case(name: str, content: str | None, says: str, case: str) -> Any:
    return pytest.param(content, says, id=name, marks=pytest.mark.reliability(
        "environment", case, f"exit 2 before any work; `::error` says {says!r} and names GITHUB_EVENT_PATH"))


@pytest.mark.parametrize(("content", "says"), [
    _payload_case("missing", None, "which does not exist", "`GITHUB_EVENT_PATH` names a missing file"),
    _payload_case("not-json", "{not json", "is not JSON", "event payload is not JSON"),
    _payload_case("array", "[1, 2]", "is a JSON array, not an object", "event payload is a JSON array"),
    _payload_case("string", '"pull_request"', "is a JSON string, not an object", "event payload is a JSON string"),
    _payload_case("folder", "<folder>", "it is a folder", "`GITHUB_EVENT_PATH` names a folder"),
])
def test_unusable_event_payload__exit_2_with_a_clear_message(
        tmp_path: Path, workspace: Path, content: str | None, says: str) -> None:
    event = tmp_path / "hand-made-event.json"
    if content == "<folder>":
        event.mkdir()
    elif content is not None:
        event.write_text(content)

    run = _run(tmp_path, workspace, runner_env={"GITHUB_EVENT_PATH": str(event)})

    assert run.returncode == 2
    assert "::error title=Unreadable event payload::" in run.stdout
    assert says in run.stdout and "GITHUB_EVENT_PATH" in run.stdout
    assert not (workspace / "mlgate-report").exists()  # refused before any work
    _no_traceback(run)


@pytest.mark.parametrize("number", [
    pytest.param(..., id="absent", marks=pytest.mark.reliability(
        "environment", "`pull_request` event without `number`",
        "exit 2 before any work; `::error` says the pull_request has no `number`")),
    pytest.param(None, id="null", marks=pytest.mark.reliability(
        "environment", "`pull_request.number` is null", "exit 2; `::error` names `number` None")),
    pytest.param("seven", id="text", marks=pytest.mark.reliability(
        "environment", "`pull_request.number` is `\"seven\"`", "exit 2; `::error` names `number` 'seven'")),
    pytest.param(True, id="boolean", marks=pytest.mark.reliability(
        "environment", "`pull_request.number` is `true`", "exit 2; `::error` names `number` True")),
    pytest.param(0, id="zero", marks=pytest.mark.reliability(
        "environment", "`pull_request.number` is 0", "exit 2; `::error` names `number` 0")),
])
def test_pull_request_without_a_usable_number__exit_2_naming_it(
        tmp_path: Path, workspace: Path, number: Any) -> None:
    event = json.loads(json.dumps(PR_EVENT))
    if number is ...:
        del event["pull_request"]["number"]
    else:
        event["pull_request"]["number"] = number

    run = _run(tmp_path, workspace, event_name="pull_request", event=event)

    assert run.returncode == 2
    shown = "no `number`" if number is ... else f"`number` {number!r}"
    assert f"The event payload has a `pull_request` with {shown}" in run.stdout
    assert not (workspace / "mlgate-report").exists()
    _no_traceback(run)


# ---- a pull request run without a token


@pytest.mark.reliability("environment", "pull request run without `github-token`",
                         "exit 0; `::warning` says no comment was posted, that `github-token` is missing and the "
                         "YAML that fixes it; the report is in the job summary")
def test_pull_request_without_token__warns_with_the_fix_and_the_report_is_in_the_summary(
        tmp_path: Path, workspace: Path) -> None:
    run = _run(tmp_path, workspace, event_name="pull_request", event=PR_EVENT)

    assert run.returncode == 0
    assert "::warning title=No PR comment::The report is in the job summary only: no `github-token` was given" \
        in run.stdout
    assert "github-token: ${{ github.token }}" in run.stdout
    assert REPORT_HEADING in run.summary
    assert run.outputs["comment-url"] == ""
    _no_traceback(run)


# ---- the report folder


@pytest.mark.reliability("environment", "`out` is an existing file",
                         "exit 2; `::error` names `out`; the file is left as it was")
def test_out_is_an_existing_file__exit_2_naming_out_and_the_file_untouched(tmp_path: Path, workspace: Path) -> None:
    (workspace / "notes.txt").write_text("keep me")

    run = _run(tmp_path, workspace, out="notes.txt")

    assert run.returncode == 2
    assert "`out`" in run.stdout
    assert (workspace / "notes.txt").read_text() == "keep me"
    _no_traceback(run)


@pytest.mark.reliability("exit", "`out` below an existing file (`out: notes.txt/report`): the write fails "
                                 "after computing",
                         "exit 2; `::error` names `out`; the file is left as it was; no traceback")
def test_out_below_a_file__exit_2_naming_out(tmp_path: Path, workspace: Path) -> None:
    (workspace / "notes.txt").write_text("keep me")

    run = _run(tmp_path, workspace, out="notes.txt/report")

    assert run.returncode == 2
    assert "`out`" in run.stdout
    assert (workspace / "notes.txt").read_text() == "keep me"
    _no_traceback(run)


# ---- degrade, don't abort


@pytest.mark.reliability("exit", "empty train split (no sample to draw a sample grid from)",
                         "exit 0; `::notice` names the sample grid and why it is left out; the report (with "
                         "its other figures) is published")
def test_empty_split__report_published_without_the_figure_that_cannot_be_drawn(tmp_path: Path) -> None:
    from tests.fixtures.datasets import make_course

    workspace = tmp_path / "workspace"
    make_course(workspace / "data", n_train=0, n_test=20, shards=None, seed=4)

    run = _run(tmp_path, workspace)

    assert run.returncode == 0
    assert "::notice title=Figure sample_grid left out::The figure sample_grid is not in the report: " \
           "No samples were given to draw a sample grid." in run.stdout
    assert REPORT_HEADING in run.summary
    report = run.report_json()
    assert "sample_grid" not in report["figures"] and "label_distribution" in report["figures"]
    assert sorted(p.name for p in (workspace / "mlgate-report").glob("*.png")) == sorted(
        f"{name}.png" for name in report["figures"])
    _no_traceback(run)
