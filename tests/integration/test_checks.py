"""Check runs (mlgate.github.checks, and finish() posting one) against the fake GitHub over real HTTP.

Assertions are on the fake's state (its check runs, comments and what it validated), on the step's
outputs and on the log a person reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import github
import pytest

from mlgate import workflow
from mlgate.context import PullRequest, RunContext
from mlgate.data.changes import compare
from mlgate.data.report import DataReport, build_report
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.errors import ExitCode
from mlgate.github.checks import OUTPUT_LIMIT, Annotation, post_check_run
from mlgate.github.client import GitHubPermissionError, GitHubRepo, GitHubUnavailable, connect
from mlgate.publish import Finished, Publication, finish
from mlgate.report_blocks import Gate, check_summary
from tests.fakes.faults import server_error
from tests.fakes.github import FakeGitHub
from tests.helpers import parse_outputs

REPO = "octo-org/octo-repo"
PUSH_SHA = "a" * 40
HEAD_SHA = "b" * 40
HEADLINE = "mlgate data-stats: FAILED (1 of 2 gates) · data/processed: 800 train\nfailed gate max-leaked 3: over 0"
GATES = [Gate(name="max-leaked", value=3, threshold=0, passed=False, detail="3 over the 0 limit"),
         Gate(name="min-items", value=800, threshold=100, passed=True)]


@pytest.fixture
def gh_repo(fake_github: FakeGitHub) -> Iterator[GitHubRepo]:
    client = connect(fake_github.token, fake_github.api_url, throttle=False)
    yield GitHubRepo(client, REPO, fake_github.server_url)
    client.close()
    assert fake_github.violations == []  # nothing we sent is a body GitHub would reject


def annotation(line: int) -> Annotation:
    return Annotation(path="data/processed.dvc", line=line, level="warning", message=f"note {line}",
                      title="Data report: data/processed changed")


def test_post_check_run__completed_on_the_sha_with_conclusion_output_and_its_annotations(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    notes = [annotation(line) for line in range(1, 51)]  # 50: all GitHub takes in one request
    url = post_check_run(gh_repo, name="Data report", head_sha=HEAD_SHA, result="failure", title="FAILED",
                         summary="| gate |", text="## Data report", annotations=notes)

    (run,) = fake_github.repo.check_runs
    assert (run.name, run.head_sha, run.status, run.conclusion) == ("Data report", HEAD_SHA, "completed", "failure")
    assert (run.title, run.summary, run.text) == ("FAILED", "| gate |", "## Data report")
    assert [a["start_line"] for a in run.annotations] == list(range(1, 51))
    assert run.annotations[0] == {"path": "data/processed.dvc", "start_line": 1, "end_line": 1,
                                  "annotation_level": "warning", "message": "note 1",
                                  "title": "Data report: data/processed changed"}
    assert url == f"{fake_github.server_url}/{REPO}/runs/{run.id}"
    assert [r.method for r in fake_github.requests if r.method != "GET"] == ["POST"]


def check_run_writes(fake_github: FakeGitHub) -> list[str]:
    """Every request that writes a check run, its path from ``/repos/`` on (the API prefix left out)."""
    return [f"{r.method} {r.path[r.path.index('/repos/'):]}" for r in fake_github.requests
            if r.method != "GET" and "/check-runs" in r.path]


def test_post_check_run__past_50_annotations_one_request_the_first_50_and_the_rest_counted(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    notes = [annotation(line) for line in range(1, 121)]
    failure = Annotation(path="dvc.lock", line=7, level="failure", message="worst", title="t")
    post_check_run(gh_repo, name="Data report", head_sha=HEAD_SHA, result="failure", title="FAILED",
                   summary="| gate |", annotations=[*notes, failure])

    (run,) = fake_github.repo.check_runs
    assert check_run_writes(fake_github) == [f"POST /repos/{REPO}/check-runs"]
    # the failure comes first, then the warnings in their order
    assert [(a["path"], a["start_line"]) for a in run.annotations] == [
        ("dvc.lock", 7), *(("data/processed.dvc", line) for line in range(1, 50))]
    assert run.summary == ("| gate |\n\n71 more changed entries not annotated: a check run from mlgate carries "
                           "at most 50 annotations, sent in one request.")


def test_post_check_run__a_full_summary_is_cut_to_leave_room_for_the_count(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    full = "x" * OUTPUT_LIMIT
    post_check_run(gh_repo, name="Data report", head_sha=HEAD_SHA, result="success", title="ok", summary=full,
                   annotations=[annotation(line) for line in range(1, 52)])

    (run,) = fake_github.repo.check_runs
    assert len(run.summary) <= OUTPUT_LIMIT
    assert run.summary.endswith("1 more changed entry not annotated: a check run from mlgate carries at most 50 "
                                "annotations, sent in one request.")
    assert "truncated. The full report is below and in the job summary." in run.summary


def test_post_check_run__without_checks_write_raises_naming_the_permission(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    fake_github.permissions["checks"] = "read"
    with pytest.raises(GitHubPermissionError) as raised:
        post_check_run(gh_repo, name="Data report", head_sha=HEAD_SHA, result="success", title="ok", summary="ok")
    assert raised.value.permission == "checks: write"
    assert "permissions:\n    checks: write" in raised.value.hint
    assert fake_github.repo.check_runs == []


def setup(tmp_path: Path, repo: GitHubRepo | None, *, pr: bool, blocked: str = "",
          check_run: str = "Data report") -> tuple[Publication, RunContext]:
    pull = PullRequest(number=1, head_sha=HEAD_SHA, head_ref="feature", base_sha="c" * 40, base_ref="main",
                       is_fork=False) if pr else None
    ctx = RunContext(in_actions=True, sha=PUSH_SHA, repository=REPO, workspace=tmp_path, pull_request=pull,
                     summary_path=tmp_path / "summary", output_path=tmp_path / "output")
    publication = Publication(
        repo=repo, branch_store=None, pr_number=None, comment="off", marker="<!-- mlgate:data-stats:Data report -->",
        host=False, assets_branch="mlgate-assets", out_dir=tmp_path / "mlgate-report", blocked=blocked,
        check_run=check_run, check_sha=(pull.head_sha if pull else None) or ctx.sha)
    return publication, ctx


def finished(*, passed: bool = False, gates: list[Gate] = GATES, notes: tuple[Annotation, ...] = ()) -> Finished:
    return Finished(passed=passed, report_json='{"passed": false}',
                    render=lambda links, note: "## ❌ Data report\n\nthe whole report\n",
                    headline=HEADLINE, check_summary=check_summary(HEADLINE, gates, {}), gated=bool(gates),
                    annotations=notes)


def outputs(tmp_path: Path) -> dict[str, str]:
    return parse_outputs((tmp_path / "output").read_text())


def test_finish__pull_request_check_run_on_the_head_sha_with_the_gate_table_and_annotations(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, tmp_path: Path
) -> None:
    publication, ctx = setup(tmp_path, gh_repo, pr=True)
    with workflow.running(in_actions=True):
        code = finish(finished(notes=(annotation(4),)), publication, ctx)

    assert code == ExitCode.GATE_FAILED
    (run,) = fake_github.repo.check_runs
    assert run.head_sha == HEAD_SHA != PUSH_SHA  # the PR's head, not the merge commit GITHUB_SHA names
    assert run.conclusion == "failure" and run.name == "Data report"
    assert run.title == HEADLINE.splitlines()[0]
    assert "- failed gate max-leaked 3: over 0" in run.summary
    assert "| `max-leaked` | 3 | 0 | ❌ fail: 3 over the 0 limit |" in run.summary
    assert run.text == "## ❌ Data report\n\nthe whole report\n"
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in run.annotations] == [
        ("data/processed.dvc", 4, "warning")]
    assert outputs(tmp_path)["check-run-url"] == f"{fake_github.server_url}/{REPO}/runs/{run.id}"


def test_finish__push_check_run_on_github_sha_and_neutral_when_nothing_is_gated(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, tmp_path: Path
) -> None:
    publication, ctx = setup(tmp_path, gh_repo, pr=False)
    with workflow.running(in_actions=True):
        assert finish(finished(passed=True, gates=[]), publication, ctx) == ExitCode.PASSED
    (run,) = fake_github.repo.check_runs
    assert (run.head_sha, run.conclusion) == (PUSH_SHA, "neutral")
    assert "No gates configured" in run.summary


@pytest.mark.reliability(
    "fork", "token without `checks: write` (the workflow's `permissions:` lacks it)",
    "exit as the gates say; a notice with the `checks: write` YAML; report in the summary; no check run"
)
def test_finish__token_without_checks_write__notice_with_the_yaml_and_the_step_still_passes(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.permissions["checks"] = "read"
    publication, ctx = setup(tmp_path, gh_repo, pr=True)
    with workflow.running(in_actions=True):
        assert finish(finished(passed=True), publication, ctx) == ExitCode.PASSED

    out = capsys.readouterr().out
    assert "::notice title=No check run::" in out and "::warning" not in out and "::error" not in out
    assert "permissions:%0A  checks: write" in out
    assert fake_github.repo.check_runs == []
    assert "the whole report" in (tmp_path / "summary").read_text()
    assert outputs(tmp_path)["check-run-url"] == "" and outputs(tmp_path)["passed"] == "true"


@pytest.mark.reliability(
    "fork", "pull request from a fork (read-only token, no GitHub client)",
    "exit as the gates say; a notice naming the fork and the `checks: write` YAML; no request"
)
def test_finish__fork_read_only_token__notice_and_no_request(
    fake_github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publication, ctx = setup(tmp_path, None, pr=True, blocked="this pull request comes from a fork, where "
                             "`GITHUB_TOKEN` is read-only")
    with workflow.running(in_actions=True):
        assert finish(finished(passed=True), publication, ctx) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert "::notice title=No check run::The verdict is not posted as a check run: this pull request comes " \
           "from a fork" in out
    assert "checks: write" in out
    assert fake_github.requests == []


def test_finish__check_run_false_posts_none(fake_github: FakeGitHub, gh_repo: GitHubRepo, tmp_path: Path) -> None:
    publication, ctx = setup(tmp_path, gh_repo, pr=True, check_run="")
    with workflow.running(in_actions=True):
        finish(finished(), publication, ctx)
    assert fake_github.repo.check_runs == []
    assert outputs(tmp_path)["check-run-url"] == ""


@pytest.mark.reliability(
    "wire", "GitHub answering 502 to every check-run request",
    "exit 3 after the summary and outputs are written; the error says what was being done"
)
def test_finish__github_unavailable_for_check_runs__summary_and_outputs_then_exit_3(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, tmp_path: Path
) -> None:
    fake_github.inject("POST", rf"/repos/{REPO}/check-runs", *[server_error(502)] * 8)
    publication, ctx = setup(tmp_path, gh_repo, pr=True)
    with workflow.running(in_actions=True), pytest.raises(GitHubUnavailable) as raised:
        finish(finished(passed=True), publication, ctx)
    assert raised.value.exit_code == ExitCode.SERVICE
    assert "Creating the check run 'Data report' on commit bbbbbbbbbbbb" in raised.value.message
    assert "the whole report" in (tmp_path / "summary").read_text()
    assert outputs(tmp_path)["passed"] == "true"
    assert fake_github.repo.check_runs == []


def test_pygithub_sees_the_created_run(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    """The fake's answer is what PyGithub parses: the created run's fields read back as sent."""
    run = gh_repo.api.create_check_run(name="Model gate", head_sha=HEAD_SHA, status="completed",
                                       conclusion="success", output={"title": "passed", "summary": "all good"})
    assert isinstance(run, github.CheckRun.CheckRun)
    assert (run.name, run.conclusion, run.status, run.output.title) == ("Model gate", "success", "completed",
                                                                        "passed")


# ---- a dvc.lock of 10,000 outputs: the check run stays one request

ENTRIES = 10_000


def lock_of(entries: int) -> tuple[str, dict[str, int]]:
    """A dvc.lock with ``entries`` outputs under ``data/``, and (independently) the line of each md5."""
    lines = ["schema: '2.0'", "stages:", "  shard:", "    cmd: python shard.py", "    outs:"]
    where: dict[str, int] = {}
    for i in range(entries):
        md5 = f"{i:032x}"
        lines += [f"    - path: data/part-{i:05d}", "      hash: md5", f"      md5: {md5}.dir"]
        where[f"{md5}.dir"] = len(lines)
    return "\n".join(lines) + "\n", where


@pytest.mark.reliability(
    "wire", "data-stats check run for a dvc.lock with 10,000 changed outputs (once 200 requests, past GitHub's "
    "secondary limit of 80 content-creating requests a minute)",
    "one check-run request with 50 annotations; the summary says how many more were not annotated"
)
def test_finish__a_dvc_lock_of_10000_changed_entries__one_request_with_50_annotations(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, tmp_path: Path
) -> None:
    from mlgate.data.annotations import dvc_annotations
    from mlgate.data.dvc import DvcRunner
    from tests.fakes.dvc_repo import hermetic_env, run

    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    run(repo, hermetic_env(tmp_path / "env"), "git", "init", "-q")
    text, md5_lines = lock_of(ENTRIES)
    (repo / "dvc.lock").write_text(text)
    notes = dvc_annotations(changed_report(), DvcRunner(repo))
    assert len(notes) == ENTRIES

    publication, ctx = setup(tmp_path, gh_repo, pr=True)
    with workflow.running(in_actions=True):
        finish(finished(notes=notes), publication, ctx)

    (check,) = fake_github.repo.check_runs
    assert check_run_writes(fake_github) == [f"POST /repos/{REPO}/check-runs"]
    assert len(check.annotations) == 50
    lines = sorted(md5_lines.values())
    assert [(a["path"], a["start_line"]) for a in check.annotations] == [("dvc.lock", line) for line in lines[:50]]
    assert check.summary.endswith("9,950 more changed entries not annotated: a check run from mlgate carries at "
                                  "most 50 annotations, sent in one request.")


def changed_report() -> DataReport:
    """A data report whose data changed (600 -> 800 train items) and failed a gate."""
    def split(counts: dict[str, int]) -> SplitStats:
        total = sum(counts.values())
        return SplitStats(count=total, shape=[28, 28], shapes={"28x28": total}, dtype="uint8", channels=1, min=0.0,
                          max=1.0, channel_mean=[0.5], channel_std=[0.25], label_counts=counts,
                          label_shares={k: v / total for k, v in counts.items()}, imbalance_ratio=1.0,
                          missing_classes=[], nonfinite=0, unreadable=[], duplicates=0, histogram=[1, 2],
                          histogram_edges=[0.0, 0.5, 1.0])

    def stats(train: int) -> DatasetStats:
        return DatasetStats(layout="course", class_names=None,
                            splits={"train": split({"0": train // 2, "1": train // 2})},
                            leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))

    changes = compare(stats(600), stats(800), base_name="main", base_hash="aaa.dir", head_hash="bbb.dir")
    return build_report(title="Data report", data="data", stats=stats(800), content_hash="bbb.dir", changes=changes,
                        gates=GATES, baseline=None, figures={})
