"""Start entrypoint.py the way the GitHub runner starts the container: INPUT_* and GITHUB_* variables,
an event payload file, and the output/summary file commands read back afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.test_workflow import parse_outputs

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    workspace: Path

    def report_json(self) -> dict[str, Any]:
        return dict(json.loads((self.workspace / self.outputs["report-json"]).read_text()))


def run_entrypoint(files: Path, workspace: Path, event_name: str, event: Mapping[str, Any],
                   env: Mapping[str, str], inputs: Mapping[str, str]) -> Run:
    """``files`` (a new folder) holds the event, $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY of this run;
    ``env`` adds the fakes' variables and fixed INPUT_* values; ``inputs`` are snake_case input names."""
    files.mkdir()
    (files / "event.json").write_text(json.dumps(event))
    output, summary = files / "output", files / "summary"
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(files),
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(files / "event.json"),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    full_env.update({f"INPUT_{name.upper().replace('_', '-')}": value for name, value in inputs.items()})
    done = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=workspace, env=full_env,
                          capture_output=True, text=True, timeout=300, check=False)
    return Run(done.returncode, done.stdout, done.stderr,
               parse_outputs(output.read_text()) if output.exists() else {},
               summary.read_text() if summary.exists() else "", workspace)
