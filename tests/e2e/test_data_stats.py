"""data-stats end to end: entrypoint.py as a subprocess, as the runner starts it, against the fake
GitHub (HTTP on loopback) and a real git + DVC repository whose data changes between two commits."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.fakes.dvc_repo import run
from tests.fakes.faults import server_error
from tests.fakes.github import FakeGitHub
from tests.helpers import MARKER, DataRepo, Run, build_data_repo, pr_event, run_entrypoint

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data_repo(tmp_path_factory: pytest.TempPathFactory) -> DataRepo:
    return build_data_repo(tmp_path_factory.mktemp("data-repo"))


@pytest.fixture
def workspace(tmp_path: Path, data_repo: DataRepo) -> Path:
    """What actions/checkout with fetch-depth: 0 leaves: a fresh clone, no DVC cache, no data."""
    run(tmp_path, data_repo.env, "git", "clone", "-q", str(data_repo.origin), str(tmp_path / "ws"))
    return tmp_path / "ws"


@pytest.fixture
def run_action(tmp_path: Path, data_repo: DataRepo, fake_github: FakeGitHub) -> Callable[..., Run]:
    """Run entrypoint.py the way the runner runs the container: INPUT_* and GITHUB_* variables."""
    counter = iter(range(100))

    def start(workspace: Path, event_name: str, event: Mapping[str, Any], **inputs: str) -> Run:
        env = {
            **data_repo.env,
            **fake_github.env(),
            "GITHUB_SHA": data_repo.head_sha,
            "INPUT_MODE": "data-stats",
            "INPUT_DATA": "data/processed",
            "INPUT_GITHUB-TOKEN": fake_github.token,
            "INPUT_TITLE": "",  # the runner passes declared inputs with empty defaults
        }
        return run_entrypoint(tmp_path / f"run{next(counter)}", workspace, event_name, event, env, inputs)

    return start


def image_links(body: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\((http[^)]+)\)", body)


@pytest.mark.reliability(
    "race", "data-stats rerun on the same pull request",
    "exit 0 both times; one comment with the new numbers; the same `comment-url`"
)
def test_pull_request__two_runs_leave_one_sticky_comment_with_the_right_numbers(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo)
    first = run_action(workspace, "pull_request", event)
    assert first.returncode == 0, first.stderr + first.stdout
    second = run_action(workspace, "pull_request", event)
    assert second.returncode == 0, second.stderr + second.stdout

    comments = [c for c in fake_github.repo.comments_on(pr.number) if MARKER in c.body]
    assert len(comments) == 1
    body = comments[0].body
    head, base = data_repo.head, data_repo.base
    assert f"**{head.counts['train']:,}** train" in body
    assert f"| `train` | {base.counts['train']:,} | {head.counts['train']:,} | +200 |" in body
    assert "3 `test` items have an exact copy in `train`" in body

    links = image_links(body)
    assert len(links) == 5  # label distribution, sample grid, pixel histogram, leaked pairs, drift against the base
    for link in links:
        assert link.startswith(f"{fake_github.server_url}/octo-org/octo-repo/blob/")
        with urllib.request.urlopen(link) as response:  # the link resolves on the fake, to a PNG
            assert response.read().startswith(PNG_SIGNATURE)

    assert second.outputs["passed"] == "true"
    assert second.outputs["data-changed"] == "true"
    assert second.outputs["comment-url"] == first.outputs["comment-url"] != ""
    report = second.report_json()
    assert report["splits"]["train"]["count"] == head.counts["train"]
    assert report["splits"]["train"]["label_counts"] == head.label_counts("train")
    assert report["splits"]["test"]["label_counts"] == head.label_counts("test")
    assert report["leakage"]["train_test_exact_duplicates"] == 3
    assert report["changes"]["splits"]["train"]["count_delta"] == 200
    schema = json.loads((ROOT / "schemas" / "data-stats-report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert "## ℹ️ Data report\n\n**No gates configured**" in second.summary  # no gate set: none passed

    # statistics are cached by DVC content hash on the assets branch: the base is never pulled twice
    cached = [path for path in fake_github.repo.files("mlgate-assets") if path.startswith("stats/")]
    assert len(cached) == 2


def test_failed_gate__fails_the_step_after_the_comment_is_updated(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo)
    result = run_action(workspace, "pull_request", event, fail_on_leakage="true", min_samples="50")
    assert result.returncode == 1
    assert result.outputs["passed"] == "false"
    gates = {g["name"]: g for g in result.report_json()["gates"]}
    assert gates["fail-on-leakage"] == {"name": "fail-on-leakage", "value": 3, "threshold": 0, "passed": False,
                                        "detail": "3 test items also in train", "interval": None}
    assert gates["min-samples"]["passed"] is True and gates["min-samples"]["value"] == 100
    [comment] = fake_github.repo.comments_on(pr.number)
    assert "❌" in comment.body and "`fail-on-leakage`" in comment.body


@pytest.mark.parametrize(("base_is_head", "expected"), [(False, "true"), (True, "false")])
def test_data_changed__is_true_or_false_on_a_pull_request_when_dvc_does_not_compare(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run],
    base_is_head: bool, expected: str,
) -> None:
    """`compare-base: false` leaves DVC out of the comparison; git still tells whether the data moved."""
    _, event = pr_event(fake_github, data_repo)
    if base_is_head:
        event["pull_request"]["base"]["sha"] = data_repo.head_sha
    result = run_action(workspace, "pull_request", event, compare_base="false")
    assert result.returncode == 0, result.stderr
    assert result.outputs["data-changed"] == expected
    assert result.report_json()["data_changed"] is (expected == "true")


@pytest.mark.reliability(
    "data", "pull request that does not change the data",
    "exit 0; `data-changed: false`, one line in the summary; nothing pulled, no comment"
)
def test_unchanged_data__one_line_no_pull_and_no_comment_when_none_exists(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo)
    event["pull_request"]["base"]["sha"] = data_repo.head_sha  # base already holds this data
    result = run_action(workspace, "pull_request", event)
    assert result.returncode == 0, result.stderr
    assert result.outputs["data-changed"] == "false"
    assert "is unchanged against" in result.summary
    assert fake_github.repo.comments_on(pr.number) == []
    assert not (workspace / "data" / "processed").exists()  # nothing was pulled


@pytest.mark.reliability(
    "race", "data reverted after a report was posted, then rerun",
    "exit 0; the same comment says unchanged with the old report folded; a rerun does not nest the fold"
)
def test_reverted_data__edits_the_sticky_comment_to_unchanged_with_the_old_report_folded(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo)
    first = run_action(workspace, "pull_request", event)
    assert first.returncode == 0, first.stderr + first.stdout
    [posted] = fake_github.repo.comments_on(pr.number)
    old_report = posted.body.split("\n", 1)[1].strip()
    assert f"**{data_repo.head.counts['train']:,}** train" in old_report

    # the author reverts the data: the pull request's head now holds the base's .dvc file
    dvc_file = run(workspace, data_repo.env, "git", "show", f"{data_repo.base_sha}:data/processed.dvc")
    (workspace / "data" / "processed.dvc").write_text(dvc_file)
    run(workspace, data_repo.env, "git", "commit", "-q", "-am", "revert the data")
    event["pull_request"]["head"]["sha"] = run(workspace, data_repo.env, "git", "rev-parse", "HEAD").strip()
    second = run_action(workspace, "pull_request", event)
    assert second.returncode == 0, second.stderr + second.stdout
    assert second.outputs["data-changed"] == "false"

    [edited] = fake_github.repo.comments_on(pr.number)  # the same comment, edited; none added
    assert edited.id == posted.id
    assert second.outputs["comment-url"] == first.outputs["comment-url"]
    body = edited.body
    assert body.startswith(MARKER + "\n")
    unchanged, folded = body.split("<details>", 1)
    assert "`data/processed` is unchanged against" in unchanged
    assert f"**{data_repo.head.counts['train']:,}** train" not in unchanged  # no stale number in view
    assert folded.startswith("<summary>The earlier report on this pull request (no longer current)</summary>\n\n")
    assert old_report in folded and body.rstrip().endswith("</details>")

    third = run_action(workspace, "pull_request", event)  # unchanged again: the fold is not nested
    assert third.returncode == 0, third.stderr + third.stdout
    [again] = fake_github.repo.comments_on(pr.number)
    assert again.body == body


@pytest.mark.reliability(
    "fork", "pull request from a fork (no write token)",
    "exit 0; report in the job summary; a warning names `pull-requests: write`; no comment"
)
def test_fork_pull_request__report_in_summary_with_a_warning_naming_the_permission(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo, fork="someone/octo-repo")
    result = run_action(workspace, "pull_request", event)
    assert result.returncode == 0, result.stderr
    assert fake_github.repo.comments_on(pr.number) == []
    assert "::warning title=No PR comment::" in result.stdout
    assert "pull-requests: write" in result.stdout
    assert "## ℹ️ Data report" in result.summary
    assert result.outputs["comment-url"] == ""


@pytest.mark.reliability(
    "fork", "read-only `GITHUB_TOKEN`",
    "exit 0; the warning names `contents: write` and `pull-requests: write`; report in the summary; nothing "
    "posted"
)
def test_read_only_token__no_failure_and_the_warning_names_the_permission(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo)
    fake_github.read_only = True
    result = run_action(workspace, "pull_request", event)
    assert result.returncode == 0, result.stderr
    assert fake_github.repo.comments_on(pr.number) == []
    assert "contents: write" in result.stdout and "pull-requests: write" in result.stdout
    assert "```mermaid" in result.summary  # the label distribution still renders


def test_push_event__summary_and_outputs_only(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    event = json.loads((ROOT / "tests" / "fixtures" / "events" / "push.json").read_text())
    result = run_action(workspace, "push", event)
    assert result.returncode == 0, result.stderr
    assert result.outputs["passed"] == "true"
    assert result.outputs["comment-url"] == ""
    assert result.report_json()["changes"] is None
    assert all(not repo.comments for repo in fake_github.repos.values())


@pytest.mark.reliability(
    "input", "`max-imbalance: lots` in the action",
    "exit 2 before any work: `::error` names the input and value, also in the summary; nothing pulled or written"
)
def test_bad_input__fails_before_any_work_with_an_error_annotation(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    _, event = pr_event(fake_github, data_repo)
    result = run_action(workspace, "pull_request", event, max_imbalance="lots")
    assert result.returncode == 2
    assert "::error title=Invalid input::Input `max-imbalance` is 'lots'" in result.stdout
    assert "max-imbalance" in result.summary
    assert not (workspace / "data" / "processed").exists()
    assert not (workspace / "mlgate-report").exists()


@pytest.mark.reliability(
    "secret", "`github-token` in a full data-stats run",
    "`::add-mask::` sent; the token appears nowhere else in the log, stderr or summary"
)
def test_secret__is_masked_and_never_printed(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    _, event = pr_event(fake_github, data_repo)
    result = run_action(workspace, "pull_request", event)
    token = fake_github.token
    assert f"::add-mask::{token}" in result.stdout
    assert result.stdout.count(token) == 1 and token not in result.stderr and token not in result.summary


@pytest.mark.slow
@pytest.mark.reliability(
    "secret", "`gcp-credentials` used for a `gs://` DVC pull",
    "exit 0; no log line but `::add-mask::` shows the private key"
)
def test_gs_remote__pulls_with_the_service_account_from_gcp_credentials(
    tmp_path: Path, fake_github: FakeGitHub, gcs_emulator: Any, run_action: Callable[..., Run],
    data_repo: DataRepo,
) -> None:
    bucket = gcs_emulator.create_bucket("mlgate-data")
    repo = build_data_repo(tmp_path / "gs", remote_url=f"{bucket}/store", env_extra=gcs_emulator.env)
    ws = tmp_path / "gs-ws"
    run(tmp_path, repo.env, "git", "clone", "-q", str(repo.origin), str(ws))
    _, event = pr_event(fake_github, repo)
    logins_before = len(gcs_emulator.logins)
    # the step gets the key only through the input, as `${{ secrets.GCP_SA_KEY }}`
    data_repo.env.update(gcs_emulator.emulator_env)
    try:
        result = run_action(ws, "pull_request", event, gcp_credentials=gcs_emulator.service_account_json)
    finally:
        for key in gcs_emulator.emulator_env:
            data_repo.env.pop(key, None)
    assert result.returncode == 0, result.stderr + result.stdout
    assert len(gcs_emulator.logins) > logins_before
    assert result.report_json()["splits"]["train"]["count"] == 800
    unmasked = [line for line in result.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any("PRIVATE KEY" in line for line in unmasked)


@pytest.mark.reliability(
    "wire", "data-stats on a PR while GitHub answers 502 to every comment edit (figures already pushed)",
    "exit 3 after the report is in the job summary and the outputs; `::error` `Commenting on pull request #N of "
    "OWNER/REPO failed after 4 tries … GitHub answered 502`; the rerun edits the one comment, no figure re-uploaded"
)
def test_comment_failing_after_figures__warning_then_rerun_completes_without_duplicates(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, run_action: Callable[..., Run]
) -> None:
    pr, event = pr_event(fake_github, data_repo)
    first = run_action(workspace, "pull_request", event)
    assert first.returncode == 0, first.stderr + first.stdout
    fake_github.inject("PATCH", r"/repos/octo-org/octo-repo/issues/comments/\d+", *[server_error(502)] * 20)

    failed = run_action(workspace, "pull_request", event)

    # the service failed after retries: exit 3, but only after the summary and the outputs have the report
    assert failed.returncode == 3, failed.stderr + failed.stdout
    said = failed.stdout + failed.stderr
    assert (f"::error title=GitHub unavailable::Commenting on pull request "
            f"#{pr.number} of octo-org/octo-repo failed after 4 tries") in said
    assert "GitHub answered 502" in said
    assert "Data report" in failed.summary  # the numbers are not lost
    assert failed.outputs["report-json"] != ""
    assets = fake_github.repo.branch_sha("mlgate-assets")
    [before] = [c.body for c in fake_github.repo.comments_on(pr.number) if MARKER in c.body]
    fake_github.heal()

    rerun = run_action(workspace, "pull_request", event)

    assert rerun.returncode == 0, rerun.stderr + rerun.stdout
    assert fake_github.repo.branch_sha("mlgate-assets") == assets  # figures content-addressed: not re-uploaded
    comments = [c.body for c in fake_github.repo.comments_on(pr.number) if MARKER in c.body]
    assert len(comments) == 1
    assert image_links(comments[0]) == image_links(before)
