"""Smoke-test a built mlgate image the way the GitHub runner runs a Docker container action.

    python .github/scripts/smoke_image.py IMAGE

Runs IMAGE twice on the bundled example (run from the repository root, which becomes the mounted
workspace): `data-stats` on examples/data against examples/data-v1, and `model-gate` on
examples/model/model.pt. Each run gets what the runner gives a container action and nothing more:
the checkout at /github/workspace (also the working directory), the file commands at
/github/file_commands, the event at /github/workflow/event.json, INPUT_* variables with their hyphens
kept, and no network (the image must need nothing at run time).

Then it checks what a later step of the user's job sees: exit code 0, the outputs (`passed`,
`report`, `report-json`, the model-gate numbers), and that every file and folder the container wrote
grants read access to other users (0644 / 0755) and can be opened by the user running this script,
which on GitHub is the non-root runner user. Any failure exits 1, so the release workflow publishes
nothing. Stdlib only.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = "mlgate-smoke"
RUNS: dict[str, dict[str, str]] = {
    "data-stats": {
        "MODE": "data-stats",
        "DATA": "examples/data",
        "BASELINE-DATA": "examples/data-v1",
        "DVC-PULL": "false",
        "COMMENT": "off",
        "HOST-FIGURES": "false",
        "MIN-SAMPLES": "100",
        "OUT": f"{OUT}/data-stats",
    },
    "model-gate": {
        "MODE": "model-gate",
        "MODEL": "examples/model/model.pt",
        "EVAL-DATA": "examples/data",
        "COMMENT": "off",
        "HOST-FIGURES": "false",
        "MIN-ACCURACY": "0.8",
        "MAX-LATENCY-MS": "100",
        "OUT": f"{OUT}/model-gate",
    },
}


class SmokeFailure(AssertionError):
    """Raised when the image did not behave as a released action must."""


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIMITER` heredocs."""
    outputs: dict[str, str] = {}
    lines, i = text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


def run_action(image: str, workspace: Path, scratch: Path, inputs: dict[str, str]) -> dict[str, str]:
    """One `docker run` as the runner does it; returns the step's outputs."""
    commands, workflow = scratch / "file_commands", scratch / "workflow"
    commands.mkdir(parents=True)
    workflow.mkdir()
    (commands / "set_output").touch()
    (commands / "step_summary").touch()
    (workflow / "event.json").write_text("{}\n")
    for folder in (commands, workflow):  # the container runs as root, the files are ours
        folder.chmod(0o777)
        for path in folder.iterdir():
            path.chmod(0o666)
    env = {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": "/github/file_commands/set_output",
        "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
        "GITHUB_REPOSITORY": os.environ.get("GITHUB_REPOSITORY", "mlgate/mlgate"),
        "GITHUB_SHA": os.environ.get("GITHUB_SHA", "0" * 40),
        "GITHUB_SERVER_URL": os.environ.get("GITHUB_SERVER_URL", "https://github.com"),
        "GITHUB_API_URL": os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        "HOME": "/github/home",
        **{f"INPUT_{name}": value for name, value in inputs.items()},
    }
    command = ["docker", "run", "--rm", "--network=none", "--workdir", "/github/workspace",
               "-v", f"{workspace}:/github/workspace", "-v", f"{commands}:/github/file_commands",
               "-v", f"{workflow}:/github/workflow"]
    for name, value in env.items():
        command += ["-e", f"{name}={value}"]
    print(f"::group::{inputs['MODE']}: docker run ... {image}", flush=True)
    done = subprocess.run([*command, image], check=False)
    print("::endgroup::", flush=True)
    if done.returncode != 0:
        raise SmokeFailure(f"{inputs['MODE']}: the container exited with {done.returncode}")
    outputs = parse_outputs((commands / "set_output").read_text())
    if not (commands / "step_summary").read_text().strip():
        raise SmokeFailure(f"{inputs['MODE']}: the job summary is empty")
    return outputs


def check_outputs(mode: str, outputs: dict[str, str], workspace: Path) -> None:
    if outputs.get("passed") != "true":
        raise SmokeFailure(f"{mode}: output passed={outputs.get('passed')!r}, expected 'true'")
    for name in ("report", "report-json"):
        if not outputs.get(name) or not (workspace / outputs[name]).is_file():
            raise SmokeFailure(f"{mode}: output {name}={outputs.get(name)!r} names no file in the workspace")
    report = json.loads((workspace / outputs["report-json"]).read_text())
    if report.get("mode") != mode or report.get("passed") is not True:
        raise SmokeFailure(f"{mode}: report.json says mode={report.get('mode')!r}, passed={report.get('passed')!r}")
    accuracy, p95 = float(outputs.get("accuracy") or 0), float(outputs.get("latency-p95-ms") or 0)
    if mode == "model-gate" and (accuracy < 0.8 or p95 <= 0):
        raise SmokeFailure(f"{mode}: accuracy {accuracy}, latency-p95-ms {p95}: expected >= 0.8 and > 0")


def check_readable(folder: Path) -> list[str]:
    """`MODE OWNER PATH` for every entry under ``folder``; raises when one is not readable by others."""
    problems, listing = [], []
    for path in sorted([folder, *folder.rglob("*")]):
        info = path.lstat()
        wanted = 0o005 if stat.S_ISDIR(info.st_mode) else 0o004  # folders: read + enter; files: read
        listing.append(f"{stat.S_IMODE(info.st_mode):o} uid={info.st_uid} {path}")
        if stat.S_IMODE(info.st_mode) & wanted != wanted:
            problems.append(f"{path}: mode {stat.S_IMODE(info.st_mode):o} does not let other users read it")
        elif path.is_file():
            try:
                path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: {exc}")
    print("\n".join(listing))
    if problems:
        raise SmokeFailure("files a later step cannot read:\n" + "\n".join(problems))
    return listing


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    image, workspace = argv[0], Path.cwd()
    try:
        with tempfile.TemporaryDirectory(prefix="mlgate-smoke-", ignore_cleanup_errors=True) as tmp:
            for mode, inputs in RUNS.items():
                outputs = run_action(image, workspace, Path(tmp) / mode, inputs)
                print(f"{mode} outputs: {json.dumps(outputs, indent=1)}")
                check_outputs(mode, outputs, workspace)
                if not any((workspace / inputs["OUT"]).glob("*.png")):
                    raise SmokeFailure(f"{mode}: no figure (.png) in {inputs['OUT']}")
        check_readable(workspace / OUT)  # the folders mlgate created, down to every file
    except SmokeFailure as exc:
        message = str(exc).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error title=Image smoke test failed::{message}", file=sys.stderr)
        return 1
    print(f"smoke test passed: {image}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
