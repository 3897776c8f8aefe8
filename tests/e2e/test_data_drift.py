"""data-stats against a baseline copy whose head is drifted: real MNIST digits, brightened in train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np

from tests.fixtures.mnist import mnist_digits

ROOT = Path(__file__).resolve().parents[2]


def _mlgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mlgate", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _binned_ks(a: np.ndarray, b: np.ndarray) -> float:
    """KS of two uint8 pixel sets on the uint8 histogram grid (bins of 4), in plain numpy."""
    edges = np.arange(0, 257, 4)
    cdf_a = np.cumsum(np.histogram(a, edges)[0]) / a.size
    cdf_b = np.cumsum(np.histogram(b, edges)[0]) / b.size
    return float(np.abs(cdf_a - cdf_b).max())


def test_drifted_head__max_pixel_drift_fails_and_report_json_holds_the_drift(tmp_path: Path) -> None:
    images, labels = (t.numpy() for t in mnist_digits())
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    np.savez(tmp_path / "old" / "train.npz", x=images[:2000], y=labels[:2000])
    np.savez(tmp_path / "old" / "test.npz", x=images[2000:2500], y=labels[2000:2500])
    brightened = np.clip(images[2500:4500].astype(np.int16) + 60, 0, 255).astype(np.uint8)
    brightened[5] = 0  # a blank frame among them
    np.savez(tmp_path / "new" / "train.npz", x=brightened, y=labels[2500:4500])
    np.savez(tmp_path / "new" / "test.npz", x=images[4500:], y=labels[4500:])

    done = _mlgate("data-stats", "--data", "new", "--baseline-data", "old", "--out", "out",
                   "--max-pixel-drift", "0.1", cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    assert "failed gate max-pixel-drift" in done.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    jsonschema.validate(report, json.loads((ROOT / "schemas" / "data-stats-report.schema.json").read_text()))
    (gate,) = report["gates"]
    assert (gate["name"], gate["passed"]) == ("max-pixel-drift", False)
    train = report["drift"]["splits"]["train"]
    expected = _binned_ks(images[:2000], brightened)
    assert train["pixels"]["ks"] == gate["value"]
    assert abs(train["pixels"]["ks"] - expected) < 1e-9
    assert "pixels" in train["moved"]
    test = report["drift"]["splits"]["test"]
    assert test["pixels"]["ks"] < test["pixels"]["ks_noise"] and "pixels" not in test["moved"]
    within = report["drift"]["within"]["test"]  # the brightened train no longer matches the untouched test
    assert within["reference"] == "train" and "pixels" in within["moved"]
    issues = report["splits"]["train"]["image_issues"]
    assert issues["constant"] == {"total": 1, "items": [5]}
    assert report["splits"]["test"]["image_issues"]["constant"]["total"] == 0
    assert (tmp_path / "out" / "drift_overlay.png").read_bytes().startswith(b"\x89PNG")
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "### Drift\n\nAgainst `old`:" in markdown
    assert "### Image issues" in markdown
    assert "![Drift against the base: pixel intensities and label shares](drift_overlay.png)" in markdown
