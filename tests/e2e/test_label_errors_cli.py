"""Likely label errors end to end: `python -m mlgate data-stats --baseline-train true` on a course-layout
dataset of real digits with labels flipped at planted positions (the ground truth)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from tests.fixtures.mnist import mnist_digits

ROOT = Path(__file__).resolve().parents[2]


def course_digits(root: Path, *, n_train: int, n_test: int, flips: int, seed: int) -> dict[int, tuple[int, int]]:
    """Real digits in the course layout (two train shards); ``flips`` train labels moved to another class.
    Returns ``{train item: (given label, true label)}`` for the flipped items."""
    images, labels = mnist_digits()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    train, test = order[:n_train], order[n_train : n_train + n_test]
    given = labels[train].clone()
    flipped = torch.randperm(n_train, generator=generator)[:flips]
    given[flipped] = (given[flipped] + torch.randint(1, 10, (flips,), generator=generator)) % 10
    root.mkdir(parents=True)
    half = n_train // 2
    for shard, part in enumerate((slice(0, half), slice(half, n_train))):
        torch.save(images[train][part].clone(), root / f"train_images_{shard}.pt")
        torch.save(given[part].clone(), root / f"train_target_{shard}.pt")
    torch.save(images[test].clone(), root / "test_images.pt")
    torch.save(labels[test].clone(), root / "test_target.pt")
    return {int(i): (int(given[i]), int(labels[train][i])) for i in flipped}


def mlgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mlgate", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.slow
def test_cli__planted_label_flips_are_listed_in_report_json_the_comment_and_the_figure(tmp_path: Path) -> None:
    planted = course_digits(tmp_path / "digits", n_train=1_500, n_test=300, flips=30, seed=7)
    # a budget that does not bind on a busy machine: the flags, not the timing, are under test here
    done = mlgate("data-stats", "--data", "digits", "--out", "out", "--baseline-train", "true",
                  "--baseline-time-budget", "600", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    jsonschema.validate(report, json.loads((ROOT / "schemas" / "data-stats-report.schema.json").read_text()))

    errors = report["label_errors"]
    assert errors["judged"] and errors["items_examined"] == 1_500 and not errors["stopped_early"]
    assert errors["flagged"] == len(errors["items"])
    found = {entry["item"] for entry in errors["items"]}
    hits = found & set(planted)
    precision, recall = len(hits) / len(found), len(hits) / len(planted)
    # measured: 34 flagged, 20 of the 30 flips (precision 0.59, recall 0.67, F1 0.63); before the pair rule
    # (issue 16), which leaves out pairs of digits these 1,500-item models confuse: 56, 25 (0.45, 0.83, 0.58)
    assert precision >= 0.5 and recall >= 0.6 and 2 * precision * recall / (precision + recall) >= 0.55, \
        (len(found), len(hits))
    for entry in errors["items"]:
        if entry["item"] in planted:
            assert entry["label"] == planted[entry["item"]][0]  # the label the dataset gives, as given

    first = errors["items"][0]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert f"⚠️ **{errors['flagged']} of 1,500 `train` items** (" in markdown
    assert f"| `train` {first['item']} | {first['label']} | {first['suggested']} |" in markdown
    assert "**Likely label errors:** look at the" in markdown
    assert report["figures"]["label_errors"] == "label_errors.png"
    assert "![Likely label errors: given label → suggested](label_errors.png)" in markdown
    assert (tmp_path / "out" / "label_errors.png").read_bytes().startswith(b"\x89PNG")
