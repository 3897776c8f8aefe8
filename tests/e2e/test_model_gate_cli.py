"""``python -m mlgate model-gate ...`` on a laptop: the same code as the action, no GitHub, no W&B.

Real CNNs trained on generated images; accuracy checked against a plain torch computation. What a
person reads when `input-shape` and the model or the eval data disagree; eval data kept in DVC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from tests.fakes.dvc_repo import hermetic_env, run
from tests.fixtures.model_zoo import SmallCNN
from tests.fixtures.models import MODEL_CLASS, MODEL_KWARGS, make_images, torchscript_bytes, trained_cnn

pytestmark = pytest.mark.slow  # each run imports torch in a fresh process

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "model-gate-report.schema.json").read_text())
EVAL_SAMPLES, EVAL_SEED = 500, 11


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    (tmp_path / "data").mkdir()
    torch.save(images, tmp_path / "data" / "test_images.pt")
    torch.save(labels, tmp_path / "data" / "test_target.pt")
    return tmp_path


def reference_accuracy(model: SmallCNN) -> float:
    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    with torch.no_grad():
        predicted = model(images.float().div(255).unsqueeze(1)).argmax(1)
    return float((predicted == labels).double().mean())


def mlgate(workspace: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A developer's shell: no GITHUB_* variables, no W&B key; the repository on PYTHONPATH."""
    env = {"PATH": os.environ["PATH"], "HOME": str(workspace), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mlgate", "model-gate", *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli__passing_model_exits_0_with_a_valid_report_and_the_true_accuracy(workspace: Path) -> None:
    model = trained_cnn()
    (workspace / "model.pt").write_bytes(torchscript_bytes(model))

    done = mlgate(workspace, "--model", "model.pt", "--eval-data", "data/", "--out", "OUT",
                  "--min-accuracy", "0.9", "--predictions", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((workspace / "OUT" / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["passed"] is True
    assert report["model"] == "model.pt" and report["format"] == "torchscript"
    assert report["accuracy"] == pytest.approx(reference_accuracy(model), abs=1e-9)
    assert report["eval_samples"] == EVAL_SAMPLES
    assert report["predictions"] == 20
    assert report["params"] == sum(p.numel() for p in model.parameters())
    assert report["gates"] == [{"name": "min-accuracy", "value": report["accuracy"], "threshold": 0.9,
                                "passed": True, "detail": "", "interval": None}]
    assert (workspace / "OUT" / "report.md").read_text().startswith("## ✅ Model gate: `model.pt`")
    assert (workspace / "OUT" / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    assert "report: OUT/report.md" in done.stdout
    assert "::" not in done.stdout  # no workflow commands outside Actions (nothing to mask)


def test_cli__worse_model_fails_min_accuracy_and_says_by_how_much(workspace: Path) -> None:
    model = trained_cnn(seed=3, samples=64, epochs=1)
    torch.save(model.state_dict(), workspace / "weights.pth")

    done = mlgate(workspace, "--model", "weights.pth", "--model-class", MODEL_CLASS,
                  "--model-kwargs", json.dumps(MODEL_KWARGS), "--eval-data", "data/", "--out", "OUT",
                  "--min-accuracy", "0.999", "--predictions", "20", "--batch-sizes", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((workspace / "OUT" / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    accuracy = reference_accuracy(model)
    assert accuracy < 0.9  # the fixture really is worse
    [gate] = report["gates"]
    assert gate["name"] == "min-accuracy" and gate["passed"] is False
    assert gate["value"] == pytest.approx(accuracy, abs=1e-9)
    assert gate["detail"] == f"{(0.999 - accuracy) * 100:.1f} pp below the 99.9% minimum"
    assert report["format"] == "state_dict"
    assert "FAILED" in done.stdout
    assert gate["detail"] in (workspace / "OUT" / "report.md").read_text()


# --- the input shape, as a person at a terminal meets it ----------------------------------------------


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return torchscript_bytes(trained_cnn())


@pytest.mark.parametrize(("shape", "notice"), [
    ("1,28,28", None),  # one sample, as documented
    ("1,1,28,28", "`input-shape` 1,1,28,28 starts with a batch dimension of 1; one item of `eval-data` "
                  "(data, split test) is 28×28, so mlgate feeds the model 1,28,28 per item."),
])
def test_cli__per_sample_or_batch_of_one_input_shape_measures_the_true_accuracy(
    workspace: Path, model_bytes: bytes, shape: str, notice: str | None
) -> None:
    (workspace / "model.pt").write_bytes(model_bytes)

    done = mlgate(workspace, "--model", "model.pt", "--eval-data", "data", "--input-shape", shape, "--out", "OUT",
                  "--predictions", "10", "--batch-sizes", "1")

    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    report = json.loads((workspace / "OUT" / "report.json").read_text())
    assert report["accuracy"] == pytest.approx(reference_accuracy(trained_cnn()), abs=1e-9)
    assert (notice in said) if notice else ("batch dimension" not in said)


@pytest.mark.reliability(
    "input", "`--input-shape 3,32,32` with 28×28 eval data",
    "exit 2 before the model runs: gives both shapes, the fix shows `input-shape: 1,28,28`; no traceback; nothing"
    " written"
)
def test_cli__input_shape_that_disagrees_with_the_eval_data_is_explained_before_the_model_runs(
    workspace: Path, model_bytes: bytes
) -> None:
    (workspace / "model.pt").write_bytes(model_bytes)

    done = mlgate(workspace, "--model", "model.pt", "--eval-data", "data", "--input-shape", "3,32,32",
                  "--out", "OUT")

    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert ("`input-shape` is 3,32,32, but one item of `eval-data` (data, split test) is 28×28, which mlgate "
            "would feed the model as 1,28,28.") in said  # given vs expected
    assert "input-shape: 1,28,28" in said  # the YAML that fixes it
    assert "Traceback" not in said and "%0A" not in said
    assert not (workspace / "OUT").exists()  # nothing was measured or reported


@pytest.mark.reliability(
    "input", "`--input-shape 3,28,28` that the model itself refuses",
    "exit 2: the model's one-line reason and the shape it does take; no traceback; nothing written"
)
def test_cli__input_shape_the_model_refuses_is_a_clear_error_without_its_traceback(
    tmp_path: Path, model_bytes: bytes
) -> None:
    (tmp_path / "model.pt").write_bytes(model_bytes)

    done = mlgate(tmp_path, "--model", "model.pt", "--input-shape", "3,28,28", "--out", "OUT")

    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert ("The torchscript model 'model.pt' does not take `input-shape` 3,28,28: fed a batch of one, "
            "shape (1, 3, 28, 28), it fails with: ") in said
    assert "to have 1 channels, but got 3 channels instead" in said  # the model's own reason, one line
    assert "It does take 1,28,28 per item." in said and "input-shape: 1,28,28" in said
    for traceback in ("Traceback", "__torch__", "<--- HERE", "%0A"):
        assert traceback not in said
    assert not (tmp_path / "OUT").exists()


# --- eval data kept in DVC --------------------------------------------------------------------------------


def test_cli__eval_data_tracked_by_dvc_is_pulled_first(tmp_path: Path, model_bytes: bytes) -> None:
    """A fresh clone holds only data.dvc; model-gate pulls the eval data from the remote, then measures."""
    env = hermetic_env(tmp_path / "env")
    origin, checkout = tmp_path / "origin", tmp_path / "checkout"
    origin.mkdir()
    run(origin, env, "git", "init", "-q", "-b", "main")
    run(origin, env, "dvc", "init", "-q")
    (origin / ".dvc" / "config").write_text(
        f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {tmp_path / 'remote'}\n")
    images, labels = make_images(EVAL_SAMPLES, seed=EVAL_SEED)
    (origin / "data").mkdir()
    torch.save(images, origin / "data" / "test_images.pt")
    torch.save(labels, origin / "data" / "test_target.pt")
    run(origin, env, "dvc", "add", "-q", "data")
    run(origin, env, "git", "add", "-A")
    run(origin, env, "git", "commit", "-q", "-m", "eval data in DVC")
    run(origin, env, "dvc", "push", "-q")
    run(tmp_path, env, "git", "clone", "-q", str(origin), str(checkout))
    assert not (checkout / "data").exists()
    (checkout / "model.pt").write_bytes(model_bytes)

    done = mlgate(checkout, "--model", "model.pt", "--eval-data", "data", "--dvc-timeout", "300", "--out", "OUT",
                  "--predictions", "10", "--batch-sizes", "1", env=env)

    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "$ dvc pull data.dvc" in said
    assert torch.equal(torch.load(checkout / "data" / "test_images.pt"), images)
    report = json.loads((checkout / "OUT" / "report.json").read_text())
    assert report["eval_samples"] == EVAL_SAMPLES
    assert report["accuracy"] == pytest.approx(reference_accuracy(trained_cnn()), abs=1e-9)
