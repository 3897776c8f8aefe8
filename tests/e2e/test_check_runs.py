"""The verdict where people look, end to end: entrypoint.py as the runner starts it, against the fake
GitHub (and the fake W&B): the check run of a data-stats pull request with its annotation on the
changed ``.dvc`` line, the model card in the promotion pull request, and ``mode: promote`` refusing an
artifact whose digest changed after the gate."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import helpers
from tests.fakes.dvc_repo import run
from tests.fakes.github import FakeGitHub
from tests.fakes.wandb_server import FakeWandb
from tests.helpers import DataRepo, Run, build_data_repo, pr_event, run_entrypoint

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "fixtures" / "events"


# ---- data-stats on a pull request


@pytest.fixture(scope="module")
def data_repo(tmp_path_factory: pytest.TempPathFactory) -> DataRepo:
    return build_data_repo(tmp_path_factory.mktemp("data-repo"))


@pytest.fixture
def workspace(tmp_path: Path, data_repo: DataRepo) -> Path:
    run(tmp_path, data_repo.env, "git", "clone", "-q", str(data_repo.origin), str(tmp_path / "ws"))
    return tmp_path / "ws"


@pytest.fixture
def data_stats(tmp_path: Path, data_repo: DataRepo, fake_github: FakeGitHub) -> Callable[..., Run]:
    counter = iter(range(100))

    def start(workspace: Path, event: Mapping[str, Any], **inputs: str) -> Run:
        env = {**data_repo.env, **fake_github.env(), "GITHUB_SHA": "f" * 40,  # the merge commit, not the head
               "INPUT_MODE": "data-stats", "INPUT_DATA": "data/processed",
               "INPUT_GITHUB-TOKEN": fake_github.token, "INPUT_TITLE": ""}
        return run_entrypoint(tmp_path / f"run{next(counter)}", workspace, "pull_request", event, env, inputs)

    return start


def md5_line(dvc_file: Path) -> int:
    """Independently of mlgate: the line of the file whose text holds the output's md5 (from YAML)."""
    md5 = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    (line,) = [n for n, text in enumerate(dvc_file.read_text().splitlines(), 1) if md5 in text]
    return line


def test_data_stats_pull_request__check_run_on_the_head_commit_with_a_note_on_the_dvc_line(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, data_stats: Callable[..., Run]
) -> None:
    _, event = pr_event(fake_github, data_repo)
    done = data_stats(workspace, event, fail_on_leakage="true")  # the head commit adds 3 leaked test items
    assert done.returncode == 1, done.stdout + done.stderr

    (check,) = fake_github.repo.check_runs
    assert check.name == "Data report" and check.head_sha == data_repo.head_sha
    assert check.conclusion == "failure" and check.status == "completed"
    assert check.title.startswith("mlgate data-stats: FAILED (1 gate)")
    assert "| `fail-on-leakage` |" in check.summary and "## ❌ Data report" in check.text
    (note,) = check.annotations
    assert note["path"] == "data/processed.dvc"
    assert note["start_line"] == note["end_line"] == md5_line(workspace / "data" / "processed.dvc")
    assert note["annotation_level"] == "warning"
    base, head = data_repo.base.counts["train"], data_repo.head.counts["train"]
    assert f"train: {base:,} -> {head:,} (+{head - base:,}) items" in note["message"]
    assert done.outputs["check-run-url"] == f"{fake_github.server_url}/octo-org/octo-repo/runs/{check.id}"
    assert fake_github.violations == []


@pytest.mark.reliability(
    "fork", "data-stats with a token whose `permissions:` lack `checks: write`",
    "exit 0; the comment is posted; a notice with the `checks: write` YAML; no check run"
)
def test_data_stats_without_checks_write__notice_with_the_yaml_and_the_comment_still_posted(
    fake_github: FakeGitHub, data_repo: DataRepo, workspace: Path, data_stats: Callable[..., Run]
) -> None:
    fake_github.permissions["checks"] = "read"
    pr, event = pr_event(fake_github, data_repo)
    done = data_stats(workspace, event)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::notice title=No check run::" in done.stdout and "checks: write" in done.stdout
    assert fake_github.repo.check_runs == [] and done.outputs["check-run-url"] == ""
    assert len(fake_github.repo.comments_on(pr.number)) == 1


# ---- a data folder whose name git would quote

ODD = "données 'x' \"y\" z"
"""Non-ASCII, spaces, single and double quotes: `git ls-files` without -z prints it as "donn\303\251es ..."."""


@pytest.fixture(scope="module")
def odd_repo(tmp_path_factory: pytest.TempPathFactory) -> DataRepo:
    return build_data_repo(tmp_path_factory.mktemp("odd-repo"), name=ODD)


@pytest.mark.reliability(
    "data", "a DVC-tracked folder named with non-ASCII characters, spaces and quotes "
    "(`data/données 'x' \"y\" z.dvc`)",
    "found, pulled by `dvc-pull: auto`, hashed, compared with the base and annotated on its md5 line"
)
def test_data_stats__a_dvc_file_named_with_non_ascii_spaces_and_quotes__pulled_hashed_and_annotated(
    fake_github: FakeGitHub, odd_repo: DataRepo, tmp_path: Path, data_stats: Callable[..., Run]
) -> None:
    workspace = tmp_path / "ws"
    run(tmp_path, odd_repo.env, "git", "clone", "-q", str(odd_repo.origin), str(workspace))
    assert not (workspace / "data" / ODD).exists()  # a fresh clone: only a pull brings the data
    _, event = pr_event(fake_github, odd_repo)
    done = data_stats(workspace, event, data=f"data/{ODD}", dvc_pull="auto")
    assert done.returncode == 0, done.stdout + done.stderr

    dvc_file = workspace / "data" / f"{ODD}.dvc"
    report = done.report_json()
    assert report["content_hash"] == yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    assert report["splits"]["train"]["count"] == odd_repo.head.counts["train"]  # pulled and read
    assert report["data_changed"] is True and report["changes"]["base_hash"]  # the base revision's file found too
    (check,) = fake_github.repo.check_runs
    (note,) = check.annotations
    assert note["path"] == f"data/{ODD}.dvc"
    assert note["start_line"] == md5_line(dvc_file)
    assert fake_github.violations == []


# ---- the promotion pull request and `mode: promote`

ENTITY, TRAIN_PROJECT, SEQUENCE = "acme", "mnist-train", "mnist-cnn"
REGISTRY = "wandb-registry-model/mnist"
MANIFEST, CARD = ".mlgate/promotions/mnist.json", ".mlgate/promotions/mnist.md"
EVAL_SAMPLES, EVAL_SEED = 300, 7


@pytest.fixture
def model_workspace(tmp_path: Path) -> Path:
    import torch

    from tests.fixtures.models import make_images

    data = tmp_path / "mws" / "data" / "processed"
    data.mkdir(parents=True)
    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    torch.save(images, data / "test_images.pt")
    torch.save(labels, data / "test_target.pt")
    return tmp_path / "mws"


def reference_accuracy(model: Any) -> float:
    """Independent of mlgate: the eval images through the model, argmax, against the labels."""
    import torch

    from tests.fixtures.models import make_images

    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    with torch.no_grad():
        predicted = model(images.float().div(255).unsqueeze(1)).argmax(1)
    return float((predicted == labels).double().mean())


@pytest.fixture
def model_action(tmp_path: Path, fake_wandb: FakeWandb, fake_github: FakeGitHub) -> Callable[..., Run]:
    counter = iter(range(100))

    def start(workspace: Path, event_name: str, event: Mapping[str, Any], mode: str, **inputs: str) -> Run:
        env = {
            **{k: v for k, v in os.environ.items() if k.startswith("WANDB_") and k != "WANDB_API_KEY"},
            **fake_github.env(), "GITHUB_SHA": fake_github.repo.branch_sha("main") or "", "INPUT_MODE": mode,
            "INPUT_GITHUB-TOKEN": fake_github.token, "INPUT_WANDB-API-KEY": fake_wandb.api_key,
            "INPUT_MODEL": "", "INPUT_REGISTRY": "", "INPUT_TITLE": "",
        }
        if mode == "model-gate":
            env.update({"INPUT_EVAL-DATA": "data/processed", "INPUT_PREDICTIONS": "20", "INPUT_BATCH-SIZES": "1",
                        "INPUT_HOST-FIGURES": "false"})
        return run_entrypoint(tmp_path / f"run{next(counter)}", workspace, event_name, event, env, inputs)

    return start


def dispatch_event(registry_version: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {
        "artifact_version_string": f"{ENTITY}/{registry_version}", "artifact_collection_name": "mnist",
        "entity_name": ENTITY, "project_name": "wandb-registry-model", "alias": "staging",
        "event_type": "ADD_ARTIFACT_ALIAS",
    }
    return event


def push_event(*added: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "push.json").read_text())
    event["ref"] = "refs/heads/main"
    event["commits"][0]["added"] = list(added)
    event["head_commit"]["added"] = list(added)
    return event


@pytest.mark.slow
@pytest.mark.reliability(
    "race", "approved artifact's files replaced in W&B between the gate and the merge of its pull request",
    "`mode: promote` exits 2 naming the artifact and both digests; nothing linked"
)
def test_promotion_pull_request__carries_the_model_card__and_promote_refuses_a_changed_artifact(
    fake_wandb: FakeWandb, fake_github: FakeGitHub, model_workspace: Path, model_action: Callable[..., Run],
    tmp_path: Path,
) -> None:
    from tests.fixtures.models import torchscript_bytes, trained_cnn

    model = trained_cnn()
    source = fake_wandb.add_model(ENTITY, TRAIN_PROJECT, SEQUENCE, {"model.pt": torchscript_bytes(model, "trace")})
    gated = model_action(model_workspace, "repository_dispatch",
                         dispatch_event(fake_wandb.link(source, REGISTRY, ["staging"])), "model-gate",
                         on_pass="pull-request", min_accuracy="0.5")
    assert gated.returncode == 0, gated.stdout + gated.stderr

    repo = fake_github.repo
    [pull] = [p for p in repo.pulls.values() if p.state == "open"]
    files = repo.files(pull.head_ref)
    manifest, card = json.loads(files[MANIFEST]), files[CARD].decode()
    assert card.startswith(f"# Model card: `{source}`")
    assert f"| digest | `{manifest['digest']}` |" in card
    accuracy = reference_accuracy(model)
    assert f"| accuracy | {accuracy * 100:.1f}% on {EVAL_SAMPLES} eval items |" in card
    assert "| `min-accuracy` |" in card and "## How it was measured" in card and "20 single-item predictions" in card
    assert CARD in (pull.body or "")
    report = helpers.Run(**vars(gated)).report_json()
    assert report["action"]["model_card"] == CARD

    # the artifact's files are replaced after the approval; the merged manifest still pins the old digest
    fake_wandb.collections[(ENTITY, TRAIN_PROJECT, SEQUENCE)].members[0].version.files["model.pt"] = b"other"
    merged = tmp_path / "merged"
    (merged / MANIFEST).parent.mkdir(parents=True)
    (merged / MANIFEST).write_bytes(files[MANIFEST])
    promoted = model_action(merged, "push", push_event(MANIFEST), "promote")
    assert promoted.returncode == 2, promoted.stdout + promoted.stderr
    assert "::error title=Artifact changed since it was gated::" in promoted.stdout
    assert f"pinned digest {manifest['digest']}" in promoted.stdout and "Rerun the gate" in promoted.stdout
    assert fake_wandb.link_operations == [] and "production" not in fake_wandb.alias_map(REGISTRY)
