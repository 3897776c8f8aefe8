"""Fork pull requests, two stages, end to end: the untrusted `pull_request` run (read-only, no comment)
writes its report folder with publish.json; a trusted `workflow_run` run of `mode: publish` reads that
folder (as actions/download-artifact leaves it), checks it and posts one sticky comment on the fake
GitHub. Both stages are entrypoint.py subprocesses started as the runner starts the container."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.dvc_repo import run
from tests.fakes.github import FakeGitHub
from tests.github_markdown import unsafe
from tests.helpers import MARKER, DataRepo, Run, build_data_repo, pr_event, run_entrypoint

FORK = "someone/octo-repo"


@pytest.fixture(scope="module")
def data_repo(tmp_path_factory: pytest.TempPathFactory) -> DataRepo:
    return build_data_repo(tmp_path_factory.mktemp("data-repo"))


def untrusted_run(tmp_path: Path, data_repo: DataRepo, fake_github: FakeGitHub, event: dict[str, Any]) -> Run:
    """The fork's `pull_request` run: its checkout, GITHUB_TOKEN read-only (the fake refuses writes)."""
    workspace = tmp_path / "fork-ws"
    run(tmp_path, data_repo.env, "git", "clone", "-q", str(data_repo.origin), str(workspace))
    env = {**data_repo.env, **fake_github.env(), "GITHUB_SHA": data_repo.head_sha, "INPUT_MODE": "data-stats",
           "INPUT_DATA": "data/processed", "INPUT_GITHUB-TOKEN": fake_github.token, "INPUT_TITLE": ""}
    return run_entrypoint(tmp_path / "fork-files", workspace, "pull_request", event, env, {})


def publish_run(tmp_path: Path, name: str, fake_github: FakeGitHub, bundle: Path, head_sha: str, *,
                token: str | None = None, title: str = "") -> Run:
    """The trusted `workflow_run` run: a workspace holding only the downloaded artifact."""
    workspace = tmp_path / f"{name}-ws"
    shutil.copytree(bundle, workspace / "fork-report")
    event = {"action": "completed", "workflow_run": {
        "id": 4242, "event": "pull_request", "conclusion": "success", "head_sha": head_sha,
        "head_branch": "feature", "pull_requests": [],  # GitHub lists none for a fork
        "head_repository": {"full_name": FORK, "owner": {"login": FORK.split("/")[0]}},
    }}
    env = {**fake_github.env(), "GITHUB_SHA": "0" * 40, "INPUT_MODE": "publish",
           "INPUT_REPORT-DIR": "fork-report", "INPUT_TITLE": title,
           "INPUT_GITHUB-TOKEN": fake_github.token if token is None else token}
    return run_entrypoint(tmp_path / f"{name}-files", workspace, "workflow_run", event, env, {})


HOSTILE_MARKDOWN = ("\n<script>alert(1)</script>\n![x](https://evil.example/t.png)\n@octocat\n"
                    "::set-output name=passed::false\n## ✅ Passed\n")


@pytest.mark.reliability("fork", "fork PR: untrusted run uploads its report; trusted `workflow_run` publishes "
                         "it, its report.md carrying `<script>`, an off-host image, `@octocat`, a `::set-output` "
                         "line and a forged `Passed`",
                         "exit 0 both; exactly one sticky comment, rendered by the trusted run from report.json "
                         "(none of report.md), figures hosted; a rerun edits it")
def test_fork_two_stages__one_sticky_comment_rendered_from_report_json(tmp_path: Path, fake_github: FakeGitHub,
                                                                       data_repo: DataRepo) -> None:
    pr, event = pr_event(fake_github, data_repo, fork=FORK, head_sha=data_repo.head_sha)
    untrusted = untrusted_run(tmp_path, data_repo, fake_github, event)
    assert untrusted.returncode == 0, untrusted.stdout + untrusted.stderr
    assert fake_github.repo.comments_on(pr.number) == []
    bundle = untrusted.workspace / "mlgate-report"
    manifest = json.loads((bundle / "publish.json").read_text())
    assert manifest["pr_number"] == pr.number and manifest["head_sha"] == data_repo.head_sha
    assert manifest["marker"] == MARKER
    report_md = bundle / "report.md"
    report_md.write_text(report_md.read_text() + HOSTILE_MARKDOWN)

    first = publish_run(tmp_path, "publish1", fake_github, bundle, data_repo.head_sha)
    assert first.returncode == 0, first.stdout + first.stderr
    [comment] = fake_github.repo.comments_on(pr.number)
    assert comment.body.startswith(MARKER + "\n") and "Data report" in comment.body
    for hostile in ("<script", "evil.example", "::set-output", "@octocat", "Passed"):
        assert hostile not in comment.body and hostile not in first.summary
    server = fake_github.server_url
    assert unsafe(comment.body, allowed_url=(f"{server}/",)) == []
    links = [line for line in comment.body.splitlines() if "](" in line and ".png" in line]
    assert links and all(f"{server}/octo-org/octo-repo/blob/" in line for line in links)
    [check] = fake_github.repo.check_runs_on(data_repo.head_sha)
    assert check.name == f"Data report (fork PR #{pr.number}, untrusted)"
    assert unsafe(check.summary, allowed_url=(f"{server}/",)) == [] and "evil.example" not in check.text
    assert "::set-output" not in first.stdout
    assert f"/pull/{pr.number}#issuecomment-" in first.outputs["comment-url"]
    assert first.outputs["passed"] == "true"

    second = publish_run(tmp_path, "publish2", fake_github, bundle, data_repo.head_sha)
    assert second.returncode == 0, second.stdout + second.stderr
    assert [c.id for c in fake_github.repo.comments_on(pr.number)] == [comment.id]
    assert fake_github.violations == []


@pytest.mark.reliability("fork", "fork's publish.json titled `build` and its report.json `passed: true` (to stand in "
                         "for a required check named `build`)",
                         "the check run is named from the trusted step's `title`: `Nightly data (fork PR #N, "
                         "untrusted)`; no check run or comment named `build`")
def test_fork_cannot_name_the_check_run(tmp_path: Path, fake_github: FakeGitHub) -> None:
    from tests.unit.test_fork_publish import HEAD_SHA, manifest, write_bundle

    pr = fake_github.add_pull(fork=FORK, head_sha=HEAD_SHA)
    bundle = write_bundle(tmp_path / "bundle", publish=manifest(
        pr_number=pr.number, title="build", marker="<!-- mlgate:data-stats:build -->"))
    result = publish_run(tmp_path, "named", fake_github, bundle, HEAD_SHA, title="Nightly data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [run.name for run in fake_github.repo.check_runs_on(HEAD_SHA)] == [
        f"Nightly data (fork PR #{pr.number}, untrusted)"]
    [comment] = fake_github.repo.comments_on(pr.number)
    assert comment.body.startswith("<!-- mlgate:data-stats:Nightly data -->\n## ℹ️ Nightly data\n")
    assert "build" not in comment.body.split("\n", 1)[0]


@pytest.mark.reliability("fork", "bundle's publish.json names another open PR (#2) than the one the commit heads",
                         "exit 2, names both PRs; no comment on either")
def test_fork_bundle_naming_another_pr__refused(tmp_path: Path, fake_github: FakeGitHub,
                                                data_repo: DataRepo) -> None:
    pr, event = pr_event(fake_github, data_repo, fork=FORK, head_sha=data_repo.head_sha)
    victim = fake_github.add_pull(head_ref="other", files={"other.txt": b"x\n"})
    untrusted = untrusted_run(tmp_path, data_repo, fake_github, event)
    assert untrusted.returncode == 0, untrusted.stdout + untrusted.stderr
    bundle = untrusted.workspace / "mlgate-report"
    manifest = json.loads((bundle / "publish.json").read_text())
    (bundle / "publish.json").write_text(json.dumps({**manifest, "pr_number": victim.number}))

    result = publish_run(tmp_path, "forged", fake_github, bundle, data_repo.head_sha)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "::error title=Pull request not verified::" in result.stdout
    assert f"#{victim.number}" in result.stdout and f"#{pr.number}" in result.stdout
    assert fake_github.repo.comments_on(pr.number) == [] and fake_github.repo.comments_on(victim.number) == []


@pytest.mark.reliability("fork", "the PR was pushed to after the fork run (no open PR has the run's commit as head)",
                         "exit 0 with a warning `Report not posted`; no comment (the newer run publishes)")
def test_fork_bundle_of_an_outdated_commit__not_posted(tmp_path: Path, fake_github: FakeGitHub) -> None:
    from tests.unit.test_fork_publish import HEAD_SHA, manifest, write_bundle

    pr = fake_github.add_pull(fork=FORK, head_sha="e" * 40)  # the fork's head moved on
    bundle = write_bundle(tmp_path / "bundle", publish=manifest(pr_number=pr.number))
    result = publish_run(tmp_path, "stale", fake_github, bundle, HEAD_SHA)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "::warning title=Report not posted::" in result.stdout
    assert fake_github.repo.comments_on(pr.number) == []
    assert not (result.workspace / "mlgate-report").exists()


@pytest.mark.reliability("fork", "`mode: publish` with a valid bundle but no `github-token`",
                         "exit 2, says it cannot post and shows the `github-token` input; nothing written")
def test_publish_without_token__refused(tmp_path: Path, fake_github: FakeGitHub) -> None:
    from tests.unit.test_fork_publish import HEAD_SHA, write_bundle

    bundle = write_bundle(tmp_path / "bundle")
    result = publish_run(tmp_path, "notoken", fake_github, bundle, HEAD_SHA, token="")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot post" in result.stdout and "github-token" in result.stdout
    assert not (result.workspace / "mlgate-report").exists()
