"""The local CLI: same code path as the action, no GitHub, no network."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.datasets import make_course, make_imagefolder

ROOT = Path(__file__).resolve().parents[2]


def mlgate(*args: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra_env)
    return subprocess.run([sys.executable, "-m", "mlgate", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_cli__writes_report_json_and_figures_and_compares_with_a_baseline_copy(tmp_path: Path) -> None:
    old = make_course(tmp_path / "old", n_train=300, n_test=60, seed=3)
    new = make_imagefolder(tmp_path / "new", per_class={"train": 40, "test": 10}, classes=4, corrupt=2, seed=4)
    done = mlgate("data-stats", "--data", "new", "--out", "out", "--baseline-data", "old", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["layout"] == "imagefolder"
    assert report["splits"]["train"]["count"] == new.counts["train"]
    assert sorted(report["splits"]["train"]["unreadable"]) == sorted(new.unreadable["train"])
    assert report["changes"]["splits"]["train"]["count_delta"] == new.counts["train"] - old.counts["train"]
    for name in report["figures"].values():
        assert (tmp_path / "out" / name).read_bytes().startswith(b"\x89PNG")
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "![Samples per class](sample_grid.png)" in markdown
    assert "::" not in done.stdout  # no workflow commands outside Actions


@pytest.mark.reliability(
    "data", "`data` folder in no known layout (only a readme.txt)",
    "exit 2: says what was found and shows each supported layout with an example tree; plain text on a terminal; "
    "no report"
)
def test_cli__unrecognised_folder_fails_with_what_was_found_and_the_supported_layouts(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "readme.txt").write_text("hello")
    done = mlgate("data-stats", "--data", "data", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("▸ Reading data and computing its statistics…\n  failed after ")
    error = done.stderr.split("error: ", 1)[1]
    assert error.startswith("Unrecognised dataset layout\nCould not recognise the dataset layout of ")
    assert "found readme.txt" in error
    fix = error.split("\nHow to fix it:\n", 1)[1]
    for layout in ("course", "imagefolder", "npz", "dataset-class"):
        assert f"\n    {layout} " in fix  # the hint: each supported layout with an example tree
    assert "::" not in done.stdout + done.stderr and "%0A" not in done.stderr  # plain text on a terminal
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.reliability(
    "input", "`--data` folder that does not exist, at a terminal",
    "exit 2: plain-text error naming `data` and the path, then “How to fix it” with an example; nothing on stdout"
)
def test_cli__a_bad_input_is_explained_in_plain_text_with_the_fix(tmp_path: Path) -> None:
    done = mlgate("data-stats", "--data", str(tmp_path / "no-such-folder"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "error: Invalid input"
    assert "`data`" in lines[1] and "no-such-folder" in lines[1] and "does not exist" in lines[1]
    assert lines[2:4] == ["", "How to fix it:"]
    assert "      data: data/processed" in lines  # the example, indented under the fix
    assert "::" not in done.stderr and "%0A" not in done.stderr


def test_cli__a_failing_gate_says_so_on_stdout_and_times_each_phase_on_stderr(tmp_path: Path) -> None:
    done = mlgate("data-stats", "--data", str(ROOT / "examples" / "data"), "--out", "out", "--max-imbalance", "1.2",
                  cwd=tmp_path)
    assert done.returncode == 1
    assert "FAILED" in done.stdout and "max-imbalance" in done.stdout
    assert done.stdout.rstrip().endswith("report: out/report.md")  # relative to the working folder
    phases = [line for line in done.stderr.splitlines() if line.startswith("▸ ")]
    assert phases == [f"▸ Reading {ROOT / 'examples' / 'data'} and computing its statistics…",
                      "▸ Searching for near-duplicates…", "▸ Drawing the figures…",
                      "▸ Publishing the report…"]
    assert len(re.findall(r"^  done in \d+\.\d s$", done.stderr, re.MULTILINE)) == 4


def test_cli__in_actions_phases_are_folded_and_the_outcome_follows(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "data")  # in Actions data stays inside the workspace
    done = mlgate("data-stats", "--data", "data", "--out", "out", "--max-imbalance", "1.2",
                  cwd=tmp_path, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 1
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    groups = [line.removeprefix("::group::") for line in lines if line.startswith("::group::")]
    assert groups == ["Reading data and computing its statistics",
                      "Searching for near-duplicates", "Drawing the figures", "Publishing the report"]
    for index, line in enumerate(lines):  # every fold is closed, its time right after it
        if line == "::endgroup::":
            assert re.fullmatch(r"  done in \d+\.\d s", lines[index + 1])
    assert lines.count("::endgroup::") == 4
    assert lines[-1] == "report: out/report.md"
    assert "FAILED" in done.stdout
    assert "max-imbalance" in summary.read_text()


@pytest.mark.reliability(
    "input", "`--input-shape 3,28,28` for a 1-channel model",
    "exit 2: names the given shape and the model's one-line reason, the fix shows `1,28,28`; no TorchScript "
    "traceback"
)
def test_cli__model_shape_error_names_both_shapes_without_the_models_traceback(tmp_path: Path) -> None:
    done = mlgate("model-gate", "--model", str(ROOT / "examples" / "model" / "model.pt"), "--input-shape", "3,28,28",
                  "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    error = done.stderr.split("\nerror: ", 1)[1]
    message, fix = error.split("\n\nHow to fix it:\n")
    assert "3,28,28" in message or "(3, 28, 28)" in message  # what was given
    assert "expected input[1, 3, 28, 28] to have 1 channels" in message  # the model's own reason, one line
    assert "1,28,28" in fix  # what works
    assert "Traceback" not in done.stderr and "__torch__" not in done.stderr and "<--- HERE" not in done.stderr


def test_cli__every_input_is_a_flag() -> None:
    done = mlgate("data-stats", "--help", cwd=ROOT)
    for flag in ("--data", "--min-samples", "--fail-on-leakage", "--baseline-data", "--gcp-credentials"):
        assert flag in done.stdout


def test_cli__help_works_for_every_mode_and_shows_real_defaults() -> None:
    for mode in ("data-stats", "model-gate", "promote"):
        done = mlgate(mode, "--help", cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert "--out" in done.stdout and "(default: mlgate-report)" in done.stdout
        assert "PydanticUndefined" not in done.stdout and "(default: )" not in done.stdout


def test_cli__version_and_usage_without_arguments() -> None:
    from mlgate import __version__

    done = mlgate("--version", cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == f"mlgate {__version__}"
    done = mlgate(cwd=ROOT)
    assert done.returncode == 2
    assert "usage: python -m mlgate" in done.stderr and "data-stats" in done.stderr
    assert "::error" not in done.stdout + done.stderr


def test_cli__sanity_baseline_learns_the_example_digits_and_fails_on_random_labels(tmp_path: Path) -> None:
    done = mlgate("data-stats", "--data", str(ROOT / "examples" / "data"), "--out", str(tmp_path / "digits"),
                  "--baseline-train", "true", "--baseline-time-budget", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "digits" / "report.json").read_text())
    baseline = report["baseline"]
    assert baseline["converged"] is True
    assert baseline["test_accuracy"] > baseline["chance_accuracy"] + 0.3
    assert (tmp_path / "digits" / "baseline_loss.png").exists()
    assert {"name": "baseline-train", "passed": True}.items() <= report["gates"][0].items()

    make_course(tmp_path / "noise", n_train=600, n_test=200, seed=5)  # random pixels, random labels
    done = mlgate("data-stats", "--data", "noise", "--out", "noise-out", "--baseline-train", "true",
                  "--baseline-time-budget", "30", cwd=tmp_path)
    assert done.returncode == 1
    report = json.loads((tmp_path / "noise-out" / "report.json").read_text())
    assert report["baseline"]["converged"] is False
    assert report["passed"] is False
    assert "does not learn" in (tmp_path / "noise-out" / "report.md").read_text()


def test_cli__feature_vectors_get_statistics_without_a_sample_grid(tmp_path: Path) -> None:
    from tests.fixtures.datasets import make_npz

    truth = make_npz(tmp_path / "features", n_train=200, n_test=50, shape=(16,), dtype="float32", seed=6)
    done = mlgate("data-stats", "--data", "features", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["splits"]["train"]["count"] == truth.counts["train"]
    assert report["splits"]["train"]["shape"] == [16]
    assert "sample_grid" not in report["figures"]
    assert "label_distribution" in report["figures"]
    assert "notice: No sample grid — " in done.stderr


def test_cli__readme_demo_compares_with_the_whole_bundled_previous_version(tmp_path: Path) -> None:
    """`make demo`: examples/data-v1 must be read (its files are real files, not links out of the folder)."""
    import torch

    done = mlgate("data-stats", "--data", "examples/data", "--out", str(tmp_path / "demo"),
                  "--baseline-data", "examples/data-v1", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    splits = json.loads((tmp_path / "demo" / "report.json").read_text())["changes"]["splits"]
    v1 = ROOT / "examples" / "data-v1"
    expected = {"train": len(torch.load(v1 / "train_target_0.pt")), "test": len(torch.load(v1 / "test_target.pt"))}
    assert {name: split["count_delta"] for name, split in splits.items()} == {
        name: json.loads((tmp_path / "demo" / "report.json").read_text())["splits"][name]["count"] - count
        for name, count in expected.items()
    }
    assert expected["train"] > 0 and expected["test"] > 0
