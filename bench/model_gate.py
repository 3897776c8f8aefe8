"""How long does a full model-gate take? Prints figures; asserts nothing.

The run the issue sizes (target: under 15 s on 2 cores, import and load included): the small CNN
from a W&B registry, 10,000 28x28 eval images, a production version in the same collection measured
as the baseline (interleaved), the default 100 predictions and batch sizes 1 and 32, accuracy and
relative gates decided with ``gate-significance: 0.05`` (McNemar, paired bootstrap intervals of the
accuracy difference and of the median latency ratio), the lineage read from W&B, and the figures:
confusion matrix, per-class change, flipped items and the confusion-matrix difference.
``entrypoint.py`` runs as a subprocess with the environment the runner sets for a
``repository_dispatch`` from a W&B automation, against the fake W&B (the real ``wandb`` SDK over
HTTP on loopback), so the wall time holds interpreter start-up, imports, the W&B round trips and
both downloads. No GitHub: publishing is the job summary only.

Run: ``.venv/bin/python bench/model_gate.py`` from the repository root (about a minute).
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

# run as a script from anywhere: the repository root holds both mlgate/ and tests/
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.wandb_server import serve_fake_wandb  # noqa: E402
from tests.fixtures.models import make_images, trained_cnn  # noqa: E402

EVAL_IMAGES = 10_000
REPEATS = 3
TARGET_SECONDS = 15.0
REGISTRY = "wandb-registry-model/mnist"


def torchscript(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; its files still exist
        torch.jit.save(torch.jit.trace(model, torch.zeros(1, 1, 28, 28)), buffer)
    return buffer.getvalue()


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def cpu_seconds() -> float:
    """CPU time (user + system) of every finished child so far: on a shared machine, far steadier
    than wall time, which counts the time other work held the cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phases(log: str) -> dict[str, float]:
    """Seconds per ``workflow.phase`` of one run, read from its log (``::group::name`` … ``  done in 1.2 s``)."""
    found: dict[str, float] = {}
    name = ""
    for line in log.splitlines():
        if line.startswith("::group::"):
            name = line.removeprefix("::group::")
        elif (match := re.fullmatch(r"  done in ([0-9.]+) s", line)) and name:
            found[name] = float(match.group(1))
    return found


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlgate-bench-"))
    workspace = tmp / "ws"
    (workspace / "data").mkdir(parents=True)
    images, labels = make_images(EVAL_IMAGES, seed=7)
    torch.save(images, workspace / "data" / "test_images.pt")
    torch.save(labels, workspace / "data" / "test_target.pt")

    fake = serve_fake_wandb()
    production = fake.add_model("acme", "mnist-train", "mnist-cnn",
                                {"model.pt": torchscript(trained_cnn(seed=2, samples=160, epochs=1))})
    fake.link(production, REGISTRY, ["production"])
    candidate = fake.add_model("acme", "mnist-train", "mnist-cnn", {"model.pt": torchscript(trained_cnn())})
    registry_version = fake.link(candidate, REGISTRY, ["staging"])

    event = json.loads((ROOT / "tests" / "fixtures" / "events" / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {
        "artifact_version_string": f"acme/{registry_version}", "artifact_collection_name": "mnist",
        "entity_name": "acme", "project_name": "wandb-registry-model", "alias": "staging",
        "event_type": "ADD_ARTIFACT_ALIAS",
    }
    (tmp / "event.json").write_text(json.dumps(event))
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp),
        **{name: str(tmp / name.lower()) for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR",
                                                      "WANDB_DIR", "WANDB_ARTIFACT_DIR")},
        "WANDB_BASE_URL": fake.base_url, "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true",
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "repository_dispatch",
        "GITHUB_EVENT_PATH": str(tmp / "event.json"), "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary"), "GITHUB_OUTPUT": str(tmp / "output"),
        "INPUT_MODE": "model-gate", "INPUT_WANDB-API-KEY": fake.api_key, "INPUT_EVAL-DATA": "data",
        "INPUT_MIN-ACCURACY": "0.9", "INPUT_MAX-ACCURACY-DROP": "0.01", "INPUT_MAX-LATENCY-REGRESSION": "0.5",
        "INPUT_MAX-LATENCY-MS": "50", "INPUT_GATE-SIGNIFICANCE": "0.05",
    }

    imports, _ = timed([sys.executable, "-c", "import mlgate.model.mode, mlgate.model.report, "
                        "mlgate.figures.model, mlgate.github.comments, mlgate.github.branch_store, "
                        "mlgate.github.pulls, torch._dynamo, wandb, matplotlib.pyplot"],
                       {**env, "PYTHONPATH": str(ROOT)}, workspace)
    load_before = os.getloadavg()[0]  # a shared machine: other work on the 2 cores shows up here
    walls, cpus, logs = [], [], []
    for _ in range(REPEATS):
        cpu_before = cpu_seconds()
        wall, done = timed([sys.executable, str(ROOT / "entrypoint.py")], env, workspace)
        if done.returncode != 0:
            sys.exit(f"model-gate exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        walls.append(wall)
        cpus.append(cpu_seconds() - cpu_before)
        logs.append(phases(done.stdout + done.stderr))
    report = json.loads((workspace / "mlgate-report" / "report.json").read_text())
    assert report["baseline"] is not None and report["eval_samples"] == EVAL_IMAGES
    agreement = report["comparison"]["agreement"]
    assert agreement is not None and (workspace / "mlgate-report" / "flipped_items.png").exists()

    env_info = report["environment"]
    print("## Full model-gate: small CNN, 10,000 eval images, production baseline (fake W&B, real SDK)\n")
    print(f"CPU {env_info['cpu']}, torch {env_info['torch']}, {env_info['threads']} measuring thread(s); "
          f"load average (1 min) before the runs: {load_before:.2f}\n")
    print("| figure | seconds |\n|---|---:|")
    print(f"| wall time of `python entrypoint.py`, median of {REPEATS} | {statistics.median(walls):.2f} |")
    print(f"| each run | {', '.join(f'{w:.2f}' for w in walls)} |")
    print(f"| CPU time (user + system) of each run | {', '.join(f'{c:.2f}' for c in cpus)} |")
    for name in logs[0]:
        print(f"| phase: {name}, median | {statistics.median(log.get(name, 0.0) for log in logs):.2f} |")
    print(f"| of which: interpreter + imports alone (torch, dynamo, wandb, matplotlib, PyGithub) | {imports:.2f} |")
    print(f"| {report['predictions']} timed predictions, candidate (production: "
          f"{report['baseline']['total_seconds']:.3f}) | {report['total_seconds']:.3f} |")
    verdict = "under" if max(walls) < TARGET_SECONDS else "OVER"
    print(f"\nSlowest run {max(walls):.2f} s: {verdict} the {TARGET_SECONDS:.0f} s target. "
          f"Accuracy {report['accuracy']:.4f} vs production {report['baseline']['accuracy']:.4f}; "
          f"p95 {report['latency_ms']['p95']:.3f} ms (ratio to production "
          f"{report['baseline']['ratios']['latency_p95']:.2f}).")
    ratio = report["comparison"]["latency_median_ratio"]
    diff = agreement["accuracy_difference"]
    print(f"Significance ({report['comparison']['confidence']:.0%} intervals): {agreement['production_only_right']:,} "
          f"items lost, {agreement['candidate_only_right']:,} gained, McNemar p {agreement['mcnemar_p']:.3g}; "
          f"accuracy difference {diff['value']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]; median latency ratio "
          f"{ratio['value']:.3f} [{ratio['low']:.3f}, {ratio['high']:.3f}] "
          f"over {report['comparison']['rounds']} rounds. "
          f"Figures: {', '.join(sorted(p.stem for p in (workspace / 'mlgate-report').glob('*.png')))}.")


if __name__ == "__main__":
    main()
