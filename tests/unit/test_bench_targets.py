"""`make bench` (and `make bench-container`) run every benchmark the README quotes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_script__is_run_by_a_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    run = set(re.findall(r"\$\(PY\) (bench/\w+\.py)", makefile))
    scripts = {f"bench/{p.name}" for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("reference_")}
    assert scripts <= run, f"not run by make: {sorted(scripts - run)}"


def test_readme_performance_section__names_only_make_targets_that_exist() -> None:
    section = (ROOT / "README.md").read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"`make ([\w-]+)`", section):
        assert re.search(rf"^{target}:", makefile, re.M), target
