"""What mlgate leaves in the workspace is readable by the later steps of the job.

The container runs as root; later steps (``actions/upload-artifact``, ``cat``, a comment action) run
as the runner user (uid 1001 on GitHub's runners). Files must be 0644 and new folders 0755 whatever
the umask of the process that wrote them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate.data.stats import DatasetStats, LeakageStats
from mlgate.data.stats_cache import StatsCache
from mlgate.publish import write_report_files

RUNNER_UID = 1001
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A folder others may enter, like the runner's checkout (pytest's own tmp_path root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mlgate-workspace-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that, left to itself, would make every new file 0600 and every folder 0700."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _stats() -> DatasetStats:
    return DatasetStats(layout="course", class_names=["zero", "one"], splits={},
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))


def _as_runner_user(*command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(command), user=RUNNER_UID, group=RUNNER_UID, extra_groups=[],
                          capture_output=True, check=False, timeout=30)


def test_report_files__are_0644_in_new_0755_folders_under_a_strict_umask(
    workspace: Path, strict_umask: None
) -> None:
    out = workspace / "reports" / "data" / "mlgate-report"
    paths = write_report_files(out, "# report\n", '{"passed": true}', {"samples": PNG, "histogram": PNG})

    assert sorted(p.name for p in out.iterdir()) == ["histogram.png", "report.json", "report.md", "samples.png"]
    assert {p.name: _mode(p) for p in out.iterdir()} == dict.fromkeys(
        ["histogram.png", "report.json", "report.md", "samples.png"], 0o644)
    assert [_mode(f) for f in (workspace / "reports", workspace / "reports" / "data", out)] == [0o755] * 3
    assert paths.markdown.read_text() == "# report\n"


def test_report_files__rewritten_report_keeps_0644_and_leaves_no_temporary_files(
    workspace: Path, strict_umask: None
) -> None:
    out = workspace / "mlgate-report"
    write_report_files(out, "old", "{}", {"samples": b"old"})
    (out / "report.md").chmod(0o600)  # as earlier mlgate versions left it (mkstemp)

    write_report_files(out, "new", "{}", {"samples": PNG})

    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "samples.png"]
    assert (out / "report.md").read_text() == "new"
    assert {_mode(p) for p in out.iterdir()} == {0o644}


def test_report_files__leave_the_mode_of_an_existing_folder_alone(workspace: Path, strict_umask: None) -> None:
    out = workspace / "out"
    out.mkdir()
    out.chmod(0o750)  # the user's choice
    write_report_files(out, "# report\n", "{}", {})
    assert _mode(out) == 0o750
    assert _mode(out / "report.md") == 0o644


def test_stats_cache__entries_are_0644_in_new_0755_folders_and_read_back(
    workspace: Path, strict_umask: None
) -> None:
    folder = workspace / ".cache" / "mlgate"
    cache = StatsCache(folder)
    cache.put("abc123-course--v1", _stats())

    assert [p.name for p in folder.iterdir()] == ["abc123-course--v1.json"]
    assert _mode(folder / "abc123-course--v1.json") == 0o644
    assert [_mode(workspace / ".cache"), _mode(folder)] == [0o755, 0o755]
    assert StatsCache(folder).get("abc123-course--v1") == _stats()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a process as uid 1001; "
                    "the tests above check the modes that make this work")
def test_report_and_cache__written_by_root_are_readable_by_the_runner_user(
    workspace: Path, strict_umask: None
) -> None:
    out = workspace / "mlgate-report"
    write_report_files(out, "# report\n", '{"passed": true}', {"samples": PNG})
    cache_dir = workspace / ".mlgate-cache"
    StatsCache(cache_dir).put("key", _stats())
    files = sorted([*out.iterdir(), *cache_dir.iterdir()])

    for folder in (out, cache_dir):
        listing = _as_runner_user("ls", "-A", str(folder))
        assert listing.returncode == 0, listing.stderr
        assert sorted(listing.stdout.decode().split()) == sorted(p.name for p in folder.iterdir())
    for path in files:
        read = _as_runner_user("cat", str(path))
        assert read.returncode == 0, f"uid {RUNNER_UID} cannot read {path}: {read.stderr.decode()}"
        assert read.stdout == path.read_bytes()
