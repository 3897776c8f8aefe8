"""Faults on the wire and races, against the fake GitHub and the fake W&B over real HTTP.

Each fault is queued on one route (tests/fakes/faults.py), so a run is deterministic: "two 502s, then
success" happens the same way every time. The retry budget is small here (the ``fake_github``
fixture sets MLGATE_RETRY_BUDGET_S=4, a backoff factor of 0.05 s and a 1 s answer timeout), so an
exhausted budget costs seconds. Assertions are on the fakes' state: how many comments, commits,
branches and pull requests exist, and which version holds ``production``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch

from mlgate.clients import NOT_IN_ACTIONS, Clients
from mlgate.context import RunContext
from mlgate.data.dvc import DvcRunner
from mlgate.errors import ExitCode
from mlgate.github.branch_store import BranchStore
from mlgate.github.client import GitHubRepo, GitHubUnavailable, connect
from mlgate.github.comments import upsert_comment
from mlgate.github.pulls import upsert_pull_request
from mlgate.model.mode import run_model_gate
from mlgate.model.promote import PromotionRaced
from mlgate.model.registry import ModelRegistry, RegistryUnavailable, WandbRegistry
from mlgate.settings import ModelGateSettings, RegistrySettings, load_settings
from tests.fakes.faults import Fault, reset, secondary_rate_limit, server_error, slow, too_many_requests
from tests.fakes.github import FakeGitHub
from tests.fakes.memory_registry import MemoryRegistry
from tests.fakes.wandb_server import FakeWandb
from tests.fixtures.models import make_images, torchscript_bytes, trained_cnn

REPO = "octo-org/octo-repo"
MARKER = "<!-- mlgate:data-stats:Data report -->"
COMMENTS = r"/repos/octo-org/octo-repo/issues/\d+/comments"
COMMENT = r"/repos/octo-org/octo-repo/issues/comments/\d+"
BUDGET_S = 4  # tests/fakes/github/server.py RETRY_ENV


@pytest.fixture
def gh_repo(fake_github: FakeGitHub) -> Iterator[GitHubRepo]:
    client = connect(fake_github.token, fake_github.api_url, throttle=False)
    yield GitHubRepo(client, REPO, fake_github.server_url)
    client.close()
    assert fake_github.violations == []


def marker_comments(fake: FakeGitHub, number: int) -> list[str]:
    return [c.body for c in fake.repo.comments_on(number) if c.body.startswith(MARKER)]


# ---- GitHub: faults that heal within the budget


@pytest.mark.parametrize(
    ("method", "path", "faults"),
    [
        pytest.param("POST", COMMENTS, [server_error(502), server_error(503)], id="5xx-burst",
                     marks=pytest.mark.reliability(
                         "wire", "GitHub answers 502 then 503 to posting the comment",
                         "retried: exactly one comment posted, exit unaffected")),
        pytest.param("GET", COMMENTS, [secondary_rate_limit(retry_after=1)], id="secondary-rate-limit",
                     marks=pytest.mark.reliability(
                         "wire", "GitHub secondary rate limit (403, `Retry-After: 1`) on listing comments",
                         "waits the 1 s GitHub asks, then one comment posted")),
        pytest.param("POST", COMMENTS, [too_many_requests(retry_after=1)], id="429",
                     marks=pytest.mark.reliability(
                         "wire", "GitHub 429 with `Retry-After: 1` on posting the comment",
                         "waits the 1 s GitHub asks, then exactly one comment posted")),
        pytest.param("GET", COMMENTS, [reset()], id="reset",
                     marks=pytest.mark.reliability(
                         "wire", "connection reset (no answer) on listing comments",
                         "retried: exactly one comment posted")),
    ],
)
def test_comment__transient_faults_are_retried_and_one_comment_posted(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, method: str, path: str, faults: list[Fault]
) -> None:
    pull = fake_github.add_pull()
    fake_github.inject(method, path, *faults)
    started = time.monotonic()

    upsert_comment(gh_repo, pull.number, MARKER, "report")

    assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nreport"]
    assert len(fake_github.faults.injected) == len(faults)  # every fault was served, then healed
    waited = max((f.retry_after or 0) for f in faults)
    assert waited <= time.monotonic() - started < BUDGET_S + 2


@pytest.mark.reliability(
    "wire", "a 502 early in the run and another one after the retry budget's length of time has passed",
    "each request has its own budget: both are retried, the run goes on"
)
def test_budget_is_per_request__a_late_fault_is_retried_too(fake_github: FakeGitHub) -> None:
    client = connect(fake_github.token, fake_github.api_url, throttle=False, budget_s=1, backoff_s=0.05)
    gh_repo = GitHubRepo(client, REPO, fake_github.server_url)
    pull = fake_github.add_pull()
    fake_github.inject("GET", COMMENTS, server_error(502))
    upsert_comment(gh_repo, pull.number, MARKER, "early")
    time.sleep(1.2)  # longer than the budget since the first retry
    fake_github.inject("PATCH", COMMENT, server_error(502))

    upsert_comment(gh_repo, pull.number, MARKER, "late")

    client.close()
    assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nlate"]
    assert len(fake_github.faults.injected) == 2


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(reset(after=True), id="reset-after-create",
                     marks=pytest.mark.reliability(
                         "wire", "comment created but the answer lost (connection reset); mlgate posts again",
                         "the duplicate is detected and deleted: exactly one comment")),
        pytest.param(slow(2.5), id="slow-create",
                     marks=pytest.mark.reliability(
                         "wire", "GitHub answers the comment POST after 2.5 s (past the 1 s timeout)",
                         "retried; the late duplicate is deleted: exactly one comment")),
    ],
)
def test_comment__answer_lost_after_create__duplicate_removed(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, fault: Fault
) -> None:
    pull = fake_github.add_pull()
    fake_github.inject("POST", COMMENTS, fault)

    upsert_comment(gh_repo, pull.number, MARKER, "report")
    time.sleep(fault.delay)  # let a slow request finish on the server before looking

    assert [r.method for r in fake_github.requests if r.path.endswith("/comments")].count("POST") == 2
    if fault.kind == "slow":  # the late one was created after our cleanup: the next run removes it
        upsert_comment(gh_repo, pull.number, MARKER, "report 2")
        assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nreport 2"]
    else:
        assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nreport"]


# ---- GitHub: faults that outlast the budget -> exit 3 with what was being done


@pytest.mark.reliability(
    "wire", "GitHub answers 502 to every comment POST",
    "exit 3 within the budget: `Commenting on pull request #1 of octo-org/octo-repo failed after 4 tries over N s: "
    "GitHub answered 502`; nothing posted"
)
def test_comment__5xx_beyond_retries__service_error_says_what_it_was_doing(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    pull = fake_github.add_pull()
    fake_github.inject("POST", COMMENTS, *[server_error(502)] * 10)
    started = time.monotonic()

    with pytest.raises(GitHubUnavailable) as caught:
        upsert_comment(gh_repo, pull.number, MARKER, "report")

    assert time.monotonic() - started < BUDGET_S + 1
    assert caught.value.exit_code == ExitCode.SERVICE == 3
    assert caught.value.message.startswith(
        f"Commenting on pull request #{pull.number} of {REPO} failed after 4 tries over "
    )
    assert "GitHub answered 502: Server Error" in caught.value.message
    assert "rerun" in caught.value.hint.lower()
    assert marker_comments(fake_github, pull.number) == []
    assert fake_github.token not in str(caught.value)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(secondary_rate_limit(retry_after=600), id="secondary-600",
                     marks=pytest.mark.reliability(
                         "wire", "GitHub secondary rate limit with `Retry-After: 600` (beyond the budget)",
                         "exit 3 at once, no 10-minute sleep: says GitHub asked to wait 600 s, beyond the budget")),
        pytest.param(too_many_requests(retry_after=600), id="429-600",
                     marks=pytest.mark.reliability(
                         "wire", "GitHub 429 with `Retry-After: 600`",
                         "exit 3 at once: says GitHub answered 429 and asked to wait 600 s")),
    ],
)
def test_comment__retry_after_beyond_budget__fails_fast(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, fault: Fault
) -> None:
    pull = fake_github.add_pull()
    fake_github.inject("PATCH", COMMENT, fault)
    fake_github.add_comments(fake_github.repo, pull.number, [f"{MARKER}\nold"], user=fake_github.bot_login)
    started = time.monotonic()

    with pytest.raises(GitHubUnavailable) as caught:
        upsert_comment(gh_repo, pull.number, MARKER, "report")

    assert time.monotonic() - started < 2
    assert caught.value.exit_code == ExitCode.SERVICE
    assert f"failed after 1 try over 0 s: GitHub answered {fault.status}" in caught.value.message
    assert f"asked to wait 600 s, beyond the {BUDGET_S} s budget" in caught.value.message
    assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nold"]  # untouched


@pytest.mark.reliability(
    "wire", "GitHub accepts the connection but never answers listing comments in time (slow replies)",
    "exit 3 within the budget: `... failed after 4 tries ...: no answer (ReadTimeoutError)`; nothing posted"
)
def test_comment__slow_replies_beyond_budget__service_error(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    pull = fake_github.add_pull()
    fake_github.inject("GET", COMMENTS, *[slow(3)] * 10)
    started = time.monotonic()

    with pytest.raises(GitHubUnavailable) as caught:
        upsert_comment(gh_repo, pull.number, MARKER, "report")

    assert time.monotonic() - started < BUDGET_S + 2
    assert caught.value.exit_code == ExitCode.SERVICE
    assert "no answer (ReadTimeoutError)" in caught.value.message
    assert marker_comments(fake_github, pull.number) == []


@pytest.mark.reliability(
    "wire", "every connection reset while uploading figures",
    "exit 3: `Uploading 1 file(s) to branch mlgate-assets of octo-org/octo-repo failed after 4 tries`; "
    "no branch created"
)
def test_host_files__resets_beyond_budget__service_error_and_no_branch(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    fake_github.inject("POST", r".*/git/blobs", *[reset()] * 10)

    with pytest.raises(GitHubUnavailable) as caught:
        BranchStore(gh_repo).host_files({"histogram.png": b"\x89PNG fake"})

    assert caught.value.exit_code == ExitCode.SERVICE
    assert caught.value.message.startswith(
        f"Uploading 1 file(s) to branch mlgate-assets of {REPO} failed after 4 tries"
    )
    assert fake_github.repo.branch_sha("mlgate-assets") is None


# ---- interrupted between steps: the rerun completes without duplicates


@pytest.mark.reliability(
    "race", "figures pushed, then editing the comment fails (GitHub down); the job is rerun",
    "first run exit 3; the rerun uploads no figure again (no new commit) and edits the one comment"
)
def test_interrupted_after_figures__rerun_edits_the_one_comment_without_reuploading(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    pull = fake_github.add_pull()
    upsert_comment(gh_repo, pull.number, MARKER, "run 1")
    figures = {"histogram.png": b"\x89PNG run 2"}
    fake_github.inject("PATCH", COMMENT, *[server_error(502)] * 10)

    links = BranchStore(gh_repo).host_files(figures)
    with pytest.raises(GitHubUnavailable):
        upsert_comment(gh_repo, pull.number, MARKER, f"run 2 {links['histogram.png']}")
    assets_head = fake_github.repo.branch_sha("mlgate-assets")
    fake_github.heal()

    # the rerun: a new process, so a new BranchStore
    again = BranchStore(gh_repo).host_files(figures)
    upsert_comment(gh_repo, pull.number, MARKER, f"run 2 {again['histogram.png']}")

    assert again == links
    assert fake_github.repo.branch_sha("mlgate-assets") == assets_head  # no second upload
    assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nrun 2 {links['histogram.png']}"]


def _propose(gh_repo: GitHubRepo) -> str:
    return upsert_pull_request(
        gh_repo, branch="mlgate/promote-mnist", base="main", title="Promote v3", body="gates passed",
        files={"models/mnist.json": b'{"version": "v3"}\n'}, commit_message="mlgate: promote v3",
    )


@pytest.mark.reliability(
    "race", "promotion branch pushed, then opening the pull request fails (GitHub down); the job is rerun",
    "first run exit 3; the rerun opens one pull request on the existing branch: no second branch or commit"
)
def test_interrupted_after_branch__rerun_opens_the_pr_on_the_existing_branch(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    repo = fake_github.repo
    fake_github.inject("POST", r".*/pulls", *[server_error(502)] * 10)
    with pytest.raises(GitHubUnavailable, match="Opening a pull request mlgate/promote-mnist -> main"):
        _propose(gh_repo)
    history = repo.history("mlgate/promote-mnist")
    assert repo.pulls == {}
    fake_github.heal()

    url = _propose(gh_repo)

    [pull] = repo.pulls.values()
    assert url.endswith(f"/pull/{pull.number}")
    assert repo.history("mlgate/promote-mnist") == history  # the same single commit
    assert sorted(ref for ref in repo.refs if "promote" in ref) == ["refs/heads/mlgate/promote-mnist"]


@pytest.mark.reliability(
    "wire", "branch created but the answer lost (connection reset after `POST git/refs`)",
    "the retry finds the branch (422 'already exists'), reads it again and goes on: one branch, one commit, one PR"
)
def test_answer_lost_after_branch_created__one_branch_one_commit_one_pr(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    repo = fake_github.repo
    main = repo.branch_sha("main")
    fake_github.inject("POST", r".*/git/refs", reset(after=True))

    _propose(gh_repo)

    assert len(repo.pulls) == 1
    assert repo.history("mlgate/promote-mnist")[1:] == [main]  # one commit on top of main


@pytest.mark.reliability(
    "wire", "approval pull request created but the answer lost ({id})",
    "the retried create is refused with GitHub's 422 'already exists'; the PR is found and updated: one PR, "
    "one branch, no error"
)
@pytest.mark.parametrize("fault", [reset(after=True), slow(2.0)], ids=["connection reset after", "reply too slow"])
def test_pull_request_answer_lost__found_and_updated_one_pr(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, fault: Fault
) -> None:
    repo = fake_github.repo
    fake_github.inject("POST", r"/repos/octo-org/octo-repo/pulls", fault)

    url = _propose(gh_repo)

    [pull] = repo.pulls.values()
    assert url.endswith(f"/pull/{pull.number}") and pull.state == "open"
    assert (pull.title, pull.body) == ("Promote v3", "gates passed")
    creates = [r.status for r in fake_github.requests if r.method == "POST" and r.path.endswith("/pulls")]
    assert creates[-1] == 422  # the retry really was refused as a duplicate
    assert sorted(ref for ref in repo.refs if "promote" in ref) == ["refs/heads/mlgate/promote-mnist"]


# ---- races


@pytest.mark.reliability(
    "race", "another run opens the approval pull request between this run's list and its create",
    "GitHub's 422 'A pull request already exists' is answered by finding the PR and updating it with this "
    "run's title and body: one PR, no error"
)
def test_pull_request_race__opened_between_list_and_create__updated_not_failed(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    repo = fake_github.repo
    _propose(gh_repo)
    [other] = repo.pulls.values()
    other.state = "closed"  # this run lists no open PR ...
    fake_github.before("POST", r"/repos/octo-org/octo-repo/pulls", lambda: setattr(other, "state", "open"))

    url = upsert_pull_request(  # ... and the other run's PR is open again when it creates
        gh_repo, branch="mlgate/promote-mnist", base="main", title="Promote v4", body="this run",
        files={"models/mnist.json": b'{"version": "v4"}\n'}, commit_message="mlgate: promote v4",
    )

    assert list(repo.pulls.values()) == [other]
    assert url.endswith(f"/pull/{other.number}")
    assert (other.title, other.body) == ("Promote v4", "this run")
    assert [r.status for r in fake_github.requests if r.method == "POST" and r.path.endswith("/pulls")][-1] == 422


def test_pull_request_refused_for_another_reason__still_an_error(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    fake_github.actions_can_create_pull_requests = False
    with pytest.raises(Exception, match="not permitted to create or approve pull requests"):
        _propose(gh_repo)
    assert fake_github.repo.pulls == {}


@pytest.mark.reliability(
    "race", "two runs comment on the same PR at once (the other posts between our list and our post)",
    "exactly one mlgate comment remains, with this run's body"
)
def test_comment_race__concurrent_post_between_list_and_create__one_comment(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    pull = fake_github.add_pull()
    fake_github.before("POST", COMMENTS, lambda: fake_github.add_comments(
        fake_github.repo, pull.number, [f"{MARKER}\nother run"], user=fake_github.bot_login))

    upsert_comment(gh_repo, pull.number, MARKER, "this run")

    assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nthis run"]


@pytest.mark.reliability(
    "race", "two runs clean up the same duplicate: the other deletes it first",
    "the 404 on our delete is ignored: exactly one comment, no error"
)
def test_comment_race__duplicate_already_deleted_by_the_other_run(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    pull = fake_github.add_pull()
    [older] = fake_github.add_comments(fake_github.repo, pull.number, [f"{MARKER}\nold"], user=fake_github.bot_login)
    fake_github.before("POST", COMMENTS, lambda: None)
    # between our list and our delete, the other run removes the older duplicate
    fake_github.add_comments(fake_github.repo, pull.number, [f"{MARKER}\nother"], user=fake_github.bot_login)
    fake_github.before("DELETE", COMMENT, lambda: fake_github.repo.comments.remove(older))

    upsert_comment(gh_repo, pull.number, MARKER, "this run")

    assert marker_comments(fake_github, pull.number) == [f"{MARKER}\nthis run"]


# ---- promotion: two staged models at once

COLLECTION = "wandb-registry-model/mnist"


@pytest.fixture(scope="module")
def model_files() -> list[dict[str, bytes]]:
    """Three different model files (different digests): traced, scripted, and another training."""
    return [{"model.pt": torchscript_bytes(trained_cnn(), "trace")},
            {"model.pt": torchscript_bytes(trained_cnn(), "script")},
            {"model.pt": torchscript_bytes(trained_cnn(seed=1, samples=256, epochs=1), "trace")}]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    images, labels = make_images(200, seed=3)
    (tmp_path / "data").mkdir()
    torch.save(images, tmp_path / "data" / "test_images.pt")
    torch.save(labels, tmp_path / "data" / "test_target.pt")
    return tmp_path


def _gate(workspace: Path, registry: ModelRegistry) -> ExitCode:
    settings = load_settings({"mode": "model-gate", "eval-data": "data", "predictions": "5", "batch-sizes": "1",
                              "model": f"{COLLECTION}:staging", "on-pass": "promote"})
    assert isinstance(settings, ModelGateSettings)

    def factory(settings: RegistrySettings, env: Mapping[str, str]) -> ModelRegistry:
        return registry

    clients = Clients(github=None, github_blocked=NOT_IN_ACTIONS, dvc=DvcRunner(Path(".")), registry=factory, env={})
    ctx = RunContext(in_actions=False, workspace=workspace, event_name=None, event={})
    return run_model_gate(settings, ctx, clients)


@pytest.mark.reliability(
    "race", "another staged model is promoted to `production` while this one is being gated",
    "exit 2: `production` moved from vA to vB while gating; rerun the gate against the new `production`; "
    "nothing linked; the report is still written. The rerun gates against the new holder and promotes"
)
def test_promote_race__production_moved_while_gating__refused_then_rerun_promotes(
    workspace: Path, model_files: list[dict[str, bytes]]
) -> None:
    registry = MemoryRegistry()
    first, other, candidate = (registry.add_model("acme", "mnist-train", "mnist-cnn", files) for files in model_files)
    registry.link(first, COLLECTION, "production")
    registry.link(candidate, COLLECTION, "staging")
    # call 1: the gate reads production to measure it; call 2: act re-reads it before linking
    registry.before("version_with_alias", lambda: registry.link(other, COLLECTION, "production"), call=2)

    with pytest.raises(PromotionRaced) as caught:
        _gate(workspace, registry)

    assert caught.value.exit_code == ExitCode.ERROR == 2
    assert f"`production` in `{COLLECTION}` moved from {first} to {other} while gating {candidate}" in str(caught.value)
    assert "rerun the gate against the new `production`" in str(caught.value)
    assert registry.alias_map(COLLECTION)["production"] == other  # the other promotion stands
    report = json.loads((workspace / "mlgate-report" / "report.json").read_text())
    assert first in json.dumps(report["baseline"])  # measured against the old holder, and published

    assert _gate(workspace, registry) == ExitCode.PASSED  # the rerun compares with `other`
    assert registry.alias_map(COLLECTION)["production"] == candidate
    assert _gate(workspace, registry) == ExitCode.PASSED  # and again: nothing to do
    assert [op for op in registry.link_operations if op[2] == "production"][-1] == (candidate, COLLECTION,
                                                                                     "production")
    assert sum(op == (candidate, COLLECTION, "production") for op in registry.link_operations) == 1


# ---- W&B


@pytest.fixture
def wandb_registry(fake_wandb: FakeWandb, monkeypatch: pytest.MonkeyPatch) -> WandbRegistry:
    monkeypatch.setenv("MLGATE_RETRY_BUDGET_S", "3")
    for version, alias in (("v0", "production"), ("v1", "staging")):
        path = fake_wandb.add_model("team-ml", "mnist", "mnist-cnn", {"model.pt": version.encode()})
        fake_wandb.link(path, COLLECTION, [alias])
    registry = WandbRegistry(api_key=fake_wandb.api_key, base_url=fake_wandb.base_url)
    registry.resolve(f"{COLLECTION}:production")  # wandb-core started: the budget measures only the fault
    return registry


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(server_error(502), id="5xx",
                     marks=pytest.mark.reliability(
                         "wire", "W&B answers 502 to every artifact lookup",
                         "exit 3 within the budget: `Reading '…:staging' on W&B (URL) failed after retries`")),
        pytest.param(too_many_requests(retry_after=600), id="429",
                     marks=pytest.mark.reliability(
                         "wire", "W&B answers 429 `Retry-After: 600` to every artifact lookup",
                         "exit 3 within the budget, not after 10 minutes; names the artifact")),
        pytest.param(reset(), id="reset",
                     marks=pytest.mark.reliability(
                         "wire", "W&B resets every connection for an artifact lookup",
                         "exit 3 within the budget; names the artifact")),
        pytest.param(slow(10), id="slow",
                     marks=pytest.mark.reliability(
                         "wire", "W&B answers artifact lookups only after 10 s",
                         "exit 3 after the 3 s budget: no usable answer within the retry budget")),
    ],
)
def test_wandb__fault_beyond_budget__service_error_naming_the_artifact(
    fake_wandb: FakeWandb, wandb_registry: WandbRegistry, fault: Fault
) -> None:
    fake_wandb.inject("ArtifactMembershipByName", *[fault] * 20)
    started = time.monotonic()

    with pytest.raises(RegistryUnavailable) as caught:
        wandb_registry.resolve(f"{COLLECTION}:staging")

    assert time.monotonic() - started < 3 + 2
    assert caught.value.exit_code == ExitCode.SERVICE == 3
    assert caught.value.message.startswith(f"Reading '{COLLECTION}:staging' on W&B ({fake_wandb.base_url}) failed")
    assert fake_wandb.api_key not in str(caught.value)


@pytest.mark.reliability(
    "wire", "W&B link answered with a reset after it took effect; the promotion is rerun",
    "first run exit 3 (`Linking '…' on W&B … failed after retries`); the rerun links nothing new: the candidate "
    "holds `production`, one membership"
)
def test_wandb__link_answer_lost__rerun_is_a_no_op(fake_wandb: FakeWandb, wandb_registry: WandbRegistry) -> None:
    candidate = fake_wandb.add_model("team-ml", "mnist", "mnist-cnn", {"model.pt": b"v2"})
    fake_wandb.inject("LinkArtifact", *[reset(after=True)] * 20)
    with pytest.raises(RegistryUnavailable) as caught:
        wandb_registry.link(candidate, COLLECTION, "production")
    assert caught.value.exit_code == ExitCode.SERVICE
    assert caught.value.message.startswith(f"Linking '{candidate} -> {COLLECTION}' on W&B")
    fake_wandb.faults.clear()

    assert wandb_registry.link(candidate, COLLECTION, "production") is False  # already holds it
    assert fake_wandb.alias_map(COLLECTION)["production"] == candidate
    assert fake_wandb.members(COLLECTION).count(candidate) == 1
