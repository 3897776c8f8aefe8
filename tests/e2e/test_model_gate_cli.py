"""``python -m mlgate model-gate ...`` on a laptop: the same code as the action, no GitHub, no W&B.

Real CNNs trained on generated images; accuracy checked against a plain torch computation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

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


def mlgate(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A developer's shell: no GITHUB_* variables, no W&B key; the repository on PYTHONPATH."""
    env = {"PATH": os.environ["PATH"], "HOME": str(workspace), "PYTHONPATH": str(ROOT)}
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
    assert report["gates"] == [{"name": "accuracy", "value": report["accuracy"], "threshold": 0.9,
                                "passed": True, "detail": ""}]
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
    assert gate["name"] == "accuracy" and gate["passed"] is False
    assert gate["value"] == pytest.approx(accuracy, abs=1e-9)
    assert gate["detail"] == f"{(0.999 - accuracy) * 100:.2f} percentage points below"
    assert report["format"] == "state_dict"
    assert "FAILED" in done.stdout
    assert gate["detail"] in (workspace / "OUT" / "report.md").read_text()
