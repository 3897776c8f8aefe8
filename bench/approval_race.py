"""Two model-gate runs at once for one staged model, ``on-pass: pull-request``, repeated: how often
do both exit 0 with one pull request and one branch? Prints outcome counts; asserts nothing.

Each round starts a fresh fake GitHub (octo-org/octo-repo) and stages a fresh version in the fake W&B
(the real ``wandb`` SDK over HTTP on loopback), then starts ``entrypoint.py`` twice, concurrently,
with the environment the runner sets for the W&B automation's ``repository_dispatch``. Two timings:

- ``forced``: the fake holds both runs' ``GET pulls?head=…`` until both have arrived, so both list
  before either creates (the race of the issue, on every round);
- ``natural``: no help; whatever the two processes' timing gives.

``--baseline-rev REV`` runs the same rounds with the ``mlgate`` package of git revision ``REV`` in the
same invocation (e.g. the commit before the fix) and prints both.

Run: ``.venv/bin/python bench/approval_race.py [--rounds 20] [--baseline-rev REV]`` from the
repository root. Measured 2026-12-07 on 2 cores shared with other jobs (load 14–16), about 1.75 min a
round: ``--rounds 20 --baseline-rounds 5 --timing forced --baseline-rev dc55e33`` (dc55e33: before the
fix) gave baseline 0/5 (every round: exits 0 and 3, one PR, one branch, a 422 seen), this tree 20/20
(exits 0 and 0, one PR, one branch, a 422 seen and answered); ``--rounds 5 --timing natural`` gave
5/5 with no 422 seen: left to timing, the two runs did not race in 5 rounds.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.wandb_server import FakeWandb, serve_fake_wandb  # noqa: E402
from tests.fixtures.models import make_images, torchscript_bytes, trained_cnn  # noqa: E402

REGISTRY = "wandb-registry-model/mnist"
EVENTS = ROOT / "tests" / "fixtures" / "events"


def checkout(root: Path) -> Path:
    data = root / "data" / "processed"
    data.mkdir(parents=True)
    images, labels = make_images(300, seed=7)
    torch.save(images, data / "test_images.pt")
    torch.save(labels, data / "test_target.pt")
    return root


def run(code: Path, ws: Path, files: Path, gh: FakeGitHub, wb: FakeWandb, event: dict[str, object],
        wandb_home: Path) -> int:
    files.mkdir(parents=True)
    (files / "event.json").write_text(json.dumps(event))
    env = {
        "PATH": os.environ["PATH"], "HOME": str(files), **gh.env(),
        "MLGATE_HTTP_TIMEOUT_S": "90", "MLGATE_RETRY_BUDGET_S": "120",  # a held list is not a timeout
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "repository_dispatch",
        "GITHUB_EVENT_PATH": str(files / "event.json"), "GITHUB_WORKSPACE": str(ws),
        "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(files / "summary"),
        "GITHUB_SHA": gh.repo.branch_sha("main") or "",
        "WANDB_BASE_URL": wb.base_url, "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true",
        **{name: str(wandb_home / name.lower()) for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR",
                                                             "WANDB_DATA_DIR", "WANDB_DIR", "WANDB_ARTIFACT_DIR")},
        "INPUT_MODE": "model-gate", "INPUT_GITHUB-TOKEN": gh.token, "INPUT_WANDB-API-KEY": wb.api_key,
        "INPUT_MODEL": "", "INPUT_REGISTRY": "", "INPUT_TITLE": "", "INPUT_EVAL-DATA": "data/processed",
        "INPUT_ON-PASS": "pull-request", "INPUT_MIN-ACCURACY": "0.5",
        "INPUT_PREDICTIONS": "20", "INPUT_BATCH-SIZES": "1", "INPUT_HOST-FIGURES": "false",
        "PYTHONPATH": str(code),
    }
    done = subprocess.run([sys.executable, str(code / "entrypoint.py")], cwd=ws, env=env,
                          capture_output=True, text=True, check=False)
    (files / "log").write_text(done.stdout + done.stderr)
    return done.returncode


def round_(code: Path, tmp: Path, wb: FakeWandb, model: bytes, forced: bool, wandb_home: Path) -> tuple[str, ...]:
    gh = FakeGitHub().start()
    try:
        gh.add_repo("octo-org/octo-repo")
        source = wb.add_model("acme", "mnist-train", "mnist-cnn", {"model.pt": model})
        version = wb.link(source, REGISTRY, ["staging"])
        event = json.loads((EVENTS / "repository_dispatch.json").read_text())
        event["action"] = "staged_model"
        event["client_payload"] = {"artifact_version_string": f"acme/{version}", "artifact_collection_name": "mnist",
                                   "entity_name": "acme", "project_name": "wandb-registry-model",
                                   "alias": "staging", "event_type": "ADD_ARTIFACT_ALIAS"}
        if forced:
            gh.rendezvous("GET", r"/repos/octo-org/octo-repo/pulls", parties=2, timeout=60)
        workspaces = [checkout(tmp / f"ws{i}") for i in (0, 1)]
        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(lambda i: run(code, workspaces[i], tmp / f"run{i}", gh, wb, event, wandb_home),
                                  (0, 1)))
        pulls = sum(p.state == "open" for p in gh.repo.pulls.values())
        branches = sum(ref.startswith("refs/heads/mlgate/promote") for ref in gh.repo.refs)
        raced = any(r.status == 422 for r in gh.requests if r.method == "POST" and r.path.endswith("/pulls"))
        return (f"exits {sorted(codes)}", f"{pulls} PR", f"{branches} branch", "422 seen" if raced else "no 422")
    finally:
        gh.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--baseline-rev", help="also run the mlgate package of this git revision")
    parser.add_argument("--baseline-rounds", type=int, help="rounds of the baseline (default: --rounds)")
    parser.add_argument("--timing", choices=("forced", "natural", "both"), default="both")
    args = parser.parse_args()
    model = torchscript_bytes(trained_cnn(), "trace")
    with tempfile.TemporaryDirectory(prefix="mlgate-race-") as tmp_root:
        tmp = Path(tmp_root)
        codes = {"this tree": ROOT}
        if args.baseline_rev:
            old = tmp / "baseline"
            old.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline_rev, "mlgate", "entrypoint.py"], cwd=ROOT,
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            codes = {f"baseline {args.baseline_rev}": old, **codes}
        wb = serve_fake_wandb()
        timings = {"forced": (True,), "natural": (False,), "both": (True, False)}[args.timing]
        for label, code in codes.items():
            rounds = args.baseline_rounds or args.rounds if code != ROOT else args.rounds
            for forced in timings:
                counts: collections.Counter[tuple[str, ...]] = collections.Counter()
                for n in range(rounds):
                    counts[round_(code, tmp / f"{label}-{forced}-{n}".replace(" ", "_"), wb, model, forced,
                                  tmp / "wandb")] += 1
                ok = sum(c for outcome, c in counts.items() if outcome[:3] == ("exits [0, 0]", "1 PR", "1 branch"))
                print(f"{label}, {'forced' if forced else 'natural'} race, {rounds} rounds: "
                      f"{ok}/{rounds} both exit 0 with one PR and one branch", flush=True)
                for outcome, count in counts.most_common():
                    print(f"  {count:3d} × {', '.join(outcome)}", flush=True)


if __name__ == "__main__":
    main()
