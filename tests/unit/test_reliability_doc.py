"""docs/reliability.md is the catalogue the tests define (tests/reliability/catalogue.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.catalogue import DOC, ROOT, Row, render


def test_reliability_doc__equals_the_catalogue_the_tests_define(tmp_path: Path) -> None:
    dump = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT, env={**os.environ, "MLGATE_RELIABILITY_JSON": str(dump)}, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [Row(**r) for r in json.loads(dump.read_text())]
    assert DOC.read_text() == render(rows), (
        "docs/reliability.md is out of date; regenerate it with\n"
        "  MLGATE_WRITE_RELIABILITY=1 .venv/bin/python -m pytest --collect-only -q tests"
    )
    assert len(rows) >= 80
