"""``require-data-lineage`` end to end: entrypoint.py as a subprocess in a git + DVC checkout whose
``eval-data`` ``dvc add`` tracked, against the fake W&B where the candidate was logged by a run that
wrote a data hash into its config. The repository's hash is read from data/processed.dvc as DVC wrote
it (ground truth); the generalisation gap is checked against a plain torch computation on train."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
import yaml

from tests import helpers
from tests.fakes.dvc_repo import hermetic_env, run
from tests.fakes.github import FakeGitHub
from tests.fakes.wandb_server import FakeWandb
from tests.fixtures.models import make_images, torchscript_bytes, trained_cnn

pytestmark = pytest.mark.slow  # each run imports torch and wandb in a fresh process (~5 s)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "model-gate-report.schema.json").read_text())
ENTITY, PROJECT, REGISTRY = "acme", "mnist-train", "wandb-registry-model/mnist"
N_TRAIN, N_TEST = 400, 300
OTHER_MD5 = "0123456789abcdef0123456789abcdef.dir"


@pytest.fixture(scope="module")
def model_files() -> dict[str, bytes]:
    return {"model.pt": torchscript_bytes(trained_cnn(), "trace")}


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """A git + DVC repository: data/processed (course layout, train and test) tracked by `dvc add`."""
    repo = tmp_path / "ws"
    data = repo / "data" / "processed"
    data.mkdir(parents=True)
    for split, n, seed in (("train", N_TRAIN, 11), ("test", N_TEST, 7)):
        images, labels = make_images(n, seed=seed)
        torch.save(images, data / f"{split}_images.pt")
        torch.save(labels, data / f"{split}_target.pt")
    env = hermetic_env(tmp_path / "env")
    run(repo, env, "git", "init", "-q", "-b", "main")
    run(repo, env, "dvc", "init", "-q")
    run(repo, env, "dvc", "add", "-q", "data/processed")
    run(repo, env, "git", "add", "-A")
    run(repo, env, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "data")
    return repo, yaml.safe_load((repo / "data" / "processed.dvc").read_text())["outs"][0]["md5"]


def stage(fake: FakeWandb, files: dict[str, bytes], data_md5: str) -> tuple[str, dict[str, Any]]:
    """The training run (its config holds `data_md5`) logs the model; it is staged in the registry."""
    run_path = fake.add_run(ENTITY, PROJECT, "3kq9x2ab", display_name="brisk-sun-12",
                            config={"data_md5": data_md5, "epochs": 2})
    source = fake.add_model(ENTITY, PROJECT, "mnist-cnn", files, logged_by=run_path)
    fake.link(source, REGISTRY, ["staging"])
    event = json.loads((ROOT / "tests" / "fixtures" / "events" / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {"artifact_version_string": f"{ENTITY}/{REGISTRY}:v0",
                               "artifact_collection_name": "mnist", "entity_name": ENTITY,
                               "project_name": "wandb-registry-model", "alias": "staging",
                               "event_type": "ADD_ARTIFACT_ALIAS"}
    return source, event


def run_gate(tmp_path: Path, workspace: Path, event: Mapping[str, Any], fake_wandb: FakeWandb,
             fake_github: FakeGitHub, **inputs: str) -> tuple[helpers.Run, dict[str, Any]]:
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith("WANDB_") and k != "WANDB_API_KEY"},
        **fake_github.env(),
        "INPUT_MODE": "model-gate", "INPUT_GITHUB-TOKEN": fake_github.token,
        "INPUT_WANDB-API-KEY": fake_wandb.api_key, "INPUT_MODEL": "", "INPUT_REGISTRY": "",
        "INPUT_EVAL-DATA": "data/processed", "INPUT_PREDICTIONS": "10", "INPUT_BATCH-SIZES": "1",
        "INPUT_HOST-FIGURES": "false", "INPUT_DVC-PULL": "false",
    }
    done = helpers.run_entrypoint(tmp_path / "files", workspace, "repository_dispatch", event, env, inputs)
    report = done.report_json()
    jsonschema.validate(report, SCHEMA)
    return done, report


def test_require_data_lineage__passes_when_the_run_trained_on_the_repository_data_version(
    tmp_path: Path, checkout: tuple[Path, str], model_files: dict[str, bytes], fake_wandb: FakeWandb,
    fake_github: FakeGitHub,
) -> None:
    workspace, md5 = checkout
    _, event = stage(fake_wandb, model_files, md5)

    done, report = run_gate(tmp_path, workspace, event, fake_wandb, fake_github, require_data_lineage="true")

    assert done.returncode == 0, done.stdout + done.stderr
    [gate] = [g for g in report["gates"] if g["name"] == "require-data-lineage"]
    assert (gate["passed"], gate["value"]) == (True, True)
    lineage = report["lineage"]
    assert lineage["verdict"] == "matches" and lineage["repository_hash"] == md5
    assert lineage["run"]["id"] == "3kq9x2ab" and lineage["run"]["url"].endswith("/acme/mnist-train/runs/3kq9x2ab")
    assert "✅ **Trained on data version `" in done.summary and "(matches the repository's `data/processed`)" \
        in done.summary
    # the train split is there, so the gap is measured: every train item (400 < 2,000), as torch computes it
    images, labels = make_images(N_TRAIN, seed=11)
    with torch.no_grad():
        expected = float((trained_cnn()(images.float().div(255).unsqueeze(1)).argmax(1) == labels).double().mean())
    g = report["generalisation"]
    assert g["train_samples"] == N_TRAIN and g["train_accuracy"] == pytest.approx(expected, abs=1e-9)
    assert g["eval_accuracy"] == report["accuracy"] and "### Generalisation gap" in done.summary


@pytest.mark.reliability(
    "data", "`require-data-lineage: true`, the training run logged another data version than eval-data's DVC hash",
    "exit 1; the gate names both hashes and how to fix it; report.json `lineage.verdict: differs`"
)
def test_require_data_lineage__fails_when_the_run_trained_on_another_data_version(
    tmp_path: Path, checkout: tuple[Path, str], model_files: dict[str, bytes], fake_wandb: FakeWandb,
    fake_github: FakeGitHub,
) -> None:
    workspace, md5 = checkout
    _, event = stage(fake_wandb, model_files, OTHER_MD5)

    done, report = run_gate(tmp_path, workspace, event, fake_wandb, fake_github, require_data_lineage="true")

    assert done.returncode == 1, done.stdout + done.stderr
    [gate] = [g for g in report["gates"] if g["name"] == "require-data-lineage"]
    assert (gate["passed"], gate["value"]) == (False, False)
    assert OTHER_MD5 in gate["detail"] and md5 in gate["detail"]
    assert report["lineage"]["verdict"] == "differs" and report["passed"] is False
    assert "❌ **Trained on data version `01234567….dir`** (differs from the repository's" in done.summary


HOSTILE = "![x](https://evil.example/a.png) @octocat | <details open>\u202e www.evil.example #1"


@pytest.mark.reliability(
    "data", "W&B run name and run config value (through the real wandb SDK) carrying an image, `@octocat`, `|`, "
    "`<details open>`, U+202E, `www.` and `#1`",
    "the job summary and check run, rendered by cmark-gfm, show them as text: no image, link, mention, "
    "attribute, bidi control or broken table")
def test_wandb_strings__inert_in_the_summary_and_check_run(
    tmp_path: Path, checkout: tuple[Path, str], model_files: dict[str, bytes], fake_wandb: FakeWandb,
    fake_github: FakeGitHub,
) -> None:
    from tests.github_markdown import unsafe

    workspace, _ = checkout
    run_path = fake_wandb.add_run(ENTITY, PROJECT, "3kq9x2ab", display_name=HOSTILE,
                                  config={"data_md5": HOSTILE, "data_version": HOSTILE})
    source = fake_wandb.add_model(ENTITY, PROJECT, "mnist-cnn", model_files, logged_by=run_path)
    fake_wandb.link(source, REGISTRY, ["staging"])
    event = json.loads((ROOT / "tests" / "fixtures" / "events" / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {"artifact_version_string": f"{ENTITY}/{REGISTRY}:v0",
                               "artifact_collection_name": "mnist", "entity_name": ENTITY,
                               "project_name": "wandb-registry-model", "alias": "staging",
                               "event_type": "ADD_ARTIFACT_ALIAS"}

    done, report = run_gate(tmp_path, workspace, event, fake_wandb, fake_github, require_data_lineage="true")

    assert done.returncode == 1, done.stdout + done.stderr  # the logged "hash" is not the repository's
    assert report["lineage"]["run"]["name"] == HOSTILE
    server = fake_github.server_url
    assert "Lineage" in done.summary and unsafe(done.summary, allowed_url=(f"{server}/",)) == []
    for check in fake_github.repo.check_runs:
        assert unsafe(check.text, allowed_url=(f"{server}/",)) == []
        assert unsafe(check.summary, allowed_url=(f"{server}/",)) == []
