"""DvcRunner against the real ``dvc`` CLI: a local remote, and a gs:// remote on the GCS emulator;
downloads stream DVC's output as it comes and stop at their timeout (``run_streaming``).

Ground truth (files per commit, the diff, DVC's folder hash) comes from tests/fakes/dvc_repo.py,
which builds the repository; the code under test only ever sees fresh clones of it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from mlgate.data.dvc import DataDiff, DvcError, DvcRunner, DvcTimeout, run_streaming
from mlgate.gcp import google_credentials
from tests.fakes.dvc_repo import (
    BASE_FILES,
    EXPECTED_DIFF,
    HEAD_FILES,
    PROCESSED,
    RAW,
    DvcRepo,
    clone,
    dvc_dir_md5,
    files_under,
    hermetic_env,
    make_dvc_repo,
    run,
)
from tests.fakes.gcs import GcsEmulator


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory: pytest.TempPathFactory) -> DvcRepo:
    """Built once per module and never modified: tests work on fresh clones of it."""
    root = tmp_path_factory.mktemp("local-remote")
    env = hermetic_env(root / "env")
    return make_dvc_repo(root / "origin", env, remote_url=str(root / "remote"))


@pytest.fixture(scope="module")
def unpushed_repo(tmp_path_factory: pytest.TempPathFactory) -> DvcRepo:
    """Like ``local_repo``, but the head commit's data never reached the remote (no `dvc push`)."""
    root = tmp_path_factory.mktemp("unpushed")
    env = hermetic_env(root / "env")
    return make_dvc_repo(root / "origin", env, remote_url=str(root / "remote"), push="base")


@pytest.fixture
def fresh_clone(local_repo: DvcRepo, tmp_path: Path) -> Path:
    return clone(local_repo, tmp_path / "clone")


def _set_remote(repo: Path, url: str | None) -> None:
    """Rewrite the clone's committed-style .dvc/config (no config.local) to ``url`` or no remote."""
    remote = f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {url}\n" if url else ""
    (repo / ".dvc" / "config").write_text(remote)


def test_pull__fresh_clone_gets_only_the_target_from_local_remote(local_repo: DvcRepo, fresh_clone: Path) -> None:
    runner = DvcRunner(fresh_clone, env=local_repo.env)

    runner.pull(PROCESSED)

    assert files_under(fresh_clone, PROCESSED) == local_repo.files_at(local_repo.head_rev)
    assert not (fresh_clone / RAW).exists()  # the other tracked folder stayed in the remote


def test_tracked_targets__names_the_dvc_files_covering_a_path(local_repo: DvcRepo) -> None:
    runner = DvcRunner(local_repo.path, env=local_repo.env)

    assert runner.is_dvc_repo()
    assert runner.tracked_targets(PROCESSED) == ["data/processed.dvc"]
    assert runner.tracked_targets("data/processed/train/") == ["data/processed.dvc"]
    assert runner.tracked_targets("./data") == ["data/processed.dvc", "data/raw.dvc"]
    assert runner.tracked_targets("docs") == []


def test_content_hash__is_dvcs_folder_md5_and_changes_only_with_the_data(local_repo: DvcRepo) -> None:
    runner = DvcRunner(local_repo.path, env=local_repo.env)

    base = runner.content_hash(PROCESSED, rev=local_repo.base_rev)
    head = runner.content_hash(PROCESSED, rev=local_repo.head_rev)

    assert base == dvc_dir_md5(BASE_FILES, PROCESSED)
    assert head == dvc_dir_md5(HEAD_FILES, PROCESSED)
    assert base != head
    assert runner.content_hash(PROCESSED, rev=local_repo.head_rev) == head  # rerun
    assert runner.content_hash(PROCESSED) == head  # working tree = head commit
    assert runner.content_hash(RAW, rev=local_repo.base_rev) == runner.content_hash(RAW, rev=local_repo.head_rev)
    both_base = runner.content_hash("data", rev=local_repo.base_rev)
    assert both_base not in (None, base) and both_base != runner.content_hash("data", rev=local_repo.head_rev)
    assert runner.content_hash("docs", rev=local_repo.head_rev) is None


@pytest.mark.parametrize("name", ["données", "two words", "it's \"quoted\"", "tab\there", "new\nline"])
def test_stage_files__names_git_would_quote_are_found_in_the_tree_and_at_a_revision(tmp_path: Path, name: str) -> None:
    """`git ls-files` and `ls-tree` quote such names unless run with -z; each is found as it is."""
    env = hermetic_env(tmp_path / "env")
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    run(repo, env, "git", "init", "-q")
    md5 = "0123456789abcdef0123456789abcdef.dir"
    dvc_file = repo / "data" / f"{name}.dvc"
    dvc_file.parent.mkdir()
    dvc_file.write_text(f"outs:\n- md5: {md5}\n  size: 3\n  nfiles: 1\n  hash: md5\n  path: {json.dumps(name)}\n")
    runner = DvcRunner(repo, env=env)

    assert runner.tracked_targets(f"data/{name}") == [f"data/{name}.dvc"]
    assert runner.hash_lines(f"data/{name}") == [(f"data/{name}.dvc", 2)]
    assert runner.content_hash(f"data/{name}") == md5
    run(repo, env, "git", "add", "-A")
    run(repo, env, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "data")
    assert runner.content_hash(f"data/{name}", rev="HEAD") == md5


@pytest.mark.reliability(
    "environment", "base revision missing from a shallow checkout",
    "DVC error naming the revision; the fix shows `fetch-depth: 0`"
)
def test_content_hash__unknown_revision_raises_with_fetch_depth_hint(local_repo: DvcRepo) -> None:
    runner = DvcRunner(local_repo.path, env=local_repo.env)

    with pytest.raises(DvcError) as caught:
        runner.content_hash(PROCESSED, rev="0" * 40)

    assert "0" * 40 in caught.value.message
    assert "fetch-depth: 0" in caught.value.hint


def test_diff__fresh_clone_lists_files_added_modified_deleted_renamed(local_repo: DvcRepo, fresh_clone: Path) -> None:
    runner = DvcRunner(fresh_clone, env=local_repo.env)

    diff = runner.diff(local_repo.base_rev, local_repo.head_rev, PROCESSED)

    assert diff == DataDiff.model_validate(EXPECTED_DIFF)
    assert diff.changed


def test_diff__narrows_to_a_subfolder_and_reports_unchanged_data(local_repo: DvcRepo, fresh_clone: Path) -> None:
    runner = DvcRunner(fresh_clone, env=local_repo.env)

    train = runner.diff(local_repo.base_rev, local_repo.head_rev, "data/processed/train")
    raw = runner.diff(local_repo.base_rev, local_repo.head_rev, RAW)

    assert train == DataDiff(added=["data/processed/train/t2.csv"], modified=[], deleted=[], renamed=[])
    assert not raw.changed


def test_materialize__base_revision_gives_the_base_files(
    local_repo: DvcRepo, fresh_clone: Path, tmp_path: Path
) -> None:
    runner = DvcRunner(fresh_clone, env=local_repo.env)

    path = runner.materialize(local_repo.base_rev, PROCESSED, tmp_path / "base")

    assert path == tmp_path / "base" / PROCESSED
    assert files_under(tmp_path / "base", PROCESSED) == local_repo.files_at(local_repo.base_rev)
    assert not (fresh_clone / PROCESSED).exists()  # the checkout itself is untouched


@pytest.mark.reliability(
    "environment", "DVC-tracked data and no remote configured",
    "DVC error with the command and DVC's reason; the fix shows `dvc remote add -d`; no traceback"
)
def test_pull__no_remote_configured_raises_dvc_reason_and_remote_add_hint(
    local_repo: DvcRepo, fresh_clone: Path
) -> None:
    _set_remote(fresh_clone, None)

    with pytest.raises(DvcError) as caught:
        DvcRunner(fresh_clone, env=local_repo.env).pull(PROCESSED)

    error = caught.value
    assert "dvc pull data/processed.dvc" in error.message
    assert "No remote provided and no default remote set" in error.message
    assert "dvc remote add -d" in error.hint
    assert "Traceback" not in str(error)


@pytest.mark.reliability(
    "wire", "DVC remote lacks the data (never pushed)",
    "DVC error “failed to pull data from the cloud”; the fix says `dvc push`; no traceback"
)
def test_pull__remote_missing_objects_raises_with_push_hint(unpushed_repo: DvcRepo, tmp_path: Path) -> None:
    checkout = clone(unpushed_repo, tmp_path / "clone")

    with pytest.raises(DvcError) as caught:
        DvcRunner(checkout, env=unpushed_repo.env).pull(PROCESSED)

    assert "failed to pull data from the cloud" in caught.value.message
    assert "dvc push" in caught.value.hint
    assert "Traceback" not in str(caught.value)


@pytest.mark.reliability(
    "wire", "DVC remote lacks the folder listing needed for the diff",
    "DVC error naming the folder and `dvc push`, instead of a diff that only says “folder changed”"
)
def test_diff__remote_missing_folder_listing_raises_instead_of_folder_only_answer(
    unpushed_repo: DvcRepo, tmp_path: Path
) -> None:
    checkout = clone(unpushed_repo, tmp_path / "clone")
    runner = DvcRunner(checkout, env=unpushed_repo.env)

    with pytest.raises(DvcError) as caught:
        runner.diff(unpushed_repo.base_rev, unpushed_repo.head_rev, PROCESSED)

    assert "data/processed/" in caught.value.message
    assert "dvc push" in caught.value.hint


@pytest.mark.reliability(
    "data", "baseline path not tracked by DVC at the base revision",
    "DVC error “not tracked by DVC at revision …” before DVC runs; nothing written"
)
def test_materialize__path_untracked_at_revision_raises_before_running_dvc(local_repo: DvcRepo, tmp_path: Path) -> None:
    runner = DvcRunner(local_repo.path, env=local_repo.env)

    with pytest.raises(DvcError) as caught:
        runner.materialize(local_repo.base_rev, "docs", tmp_path / "base")

    assert "not tracked by DVC at revision " + local_repo.base_rev in caught.value.message
    assert not (tmp_path / "base").exists()


@pytest.mark.reliability(
    "data", "`data` folder that DVC does not track",
    "DVC error naming the folder; the fix says `dvc add`"
)
def test_pull__untracked_path_raises_with_dvc_add_hint(local_repo: DvcRepo, fresh_clone: Path) -> None:
    with pytest.raises(DvcError) as caught:
        DvcRunner(fresh_clone, env=local_repo.env).pull("docs/images")

    assert "docs/images" in caught.value.message
    assert "dvc add" in caught.value.hint


@pytest.mark.reliability(
    "environment", "`gs://` remote and no `gcp-credentials`",
    "DVC error whose fix names `gcp-credentials`; the bucket refused an anonymous request, no login tried"
)
def test_pull__gs_remote_without_credentials_is_refused_with_gcp_credentials_hint(
    local_repo: DvcRepo, fresh_clone: Path, gcs_emulator: GcsEmulator
) -> None:
    _set_remote(fresh_clone, gcs_emulator.create_bucket("mlgate-data") + "/dvcstore")

    with pytest.raises(DvcError) as caught:
        DvcRunner(fresh_clone, env={**local_repo.env, **gcs_emulator.emulator_env}).pull(PROCESSED)

    assert "gcp-credentials" in caught.value.hint
    assert gcs_emulator.unauthorized  # the anonymous request reached the bucket and was refused
    assert gcs_emulator.logins == []


@pytest.mark.slow
def test_pull_and_diff__gs_remote_with_service_account_login(gcs_emulator: GcsEmulator, tmp_path: Path) -> None:
    url = gcs_emulator.create_bucket("mlgate-data") + "/dvcstore"
    env = {**hermetic_env(tmp_path / "env"), **gcs_emulator.env}  # pushes with the fake's own key file
    origin = make_dvc_repo(tmp_path / "origin", env, remote_url=url)
    assert any(name.startswith("dvcstore/files/md5/") for name in gcs_emulator.object_names("mlgate-data"))
    checkout = clone(origin, tmp_path / "clone")
    logins_before = len(gcs_emulator.logins)
    masked: list[str] = []

    with google_credentials(gcs_emulator.service_account_json, mask=masked.append) as creds:
        runner = DvcRunner(checkout, env={**origin.env, **gcs_emulator.emulator_env, **creds})
        runner.pull(PROCESSED)
        diff = runner.diff(origin.base_rev, origin.head_rev, PROCESSED)

    assert files_under(checkout, PROCESSED) == origin.files_at(origin.head_rev)
    assert diff == DataDiff.model_validate(EXPECTED_DIFF)
    new_logins = gcs_emulator.logins[logins_before:]
    assert new_logins, "google-auth never called the token endpoint"
    assert {grant.claims["iss"] for grant in new_logins} == {"mlgate-ci@mlgate-test.iam.gserviceaccount.com"}
    assert {grant.access_token for grant in new_logins} & gcs_emulator.seen_tokens
    assert not gcs_emulator.unauthorized
    assert masked and all("\n" not in value for value in masked)
    assert not Path(creds["GOOGLE_APPLICATION_CREDENTIALS"]).exists()


def test_tracked_targets__reads_pipeline_outputs_from_dvc_yaml_and_hashes_from_dvc_lock(
    local_repo: DvcRepo, tmp_path: Path
) -> None:
    repo = tmp_path / "pipeline"
    (repo / ".dvc").mkdir(parents=True)
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        "  featurize:\n"
        "    cmd: python featurize.py\n"
        "    outs:\n"
        "      - data/features\n"
        "      - models/model.pt:\n"
        "          cache: false\n"
    )
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\n"
        "stages:\n"
        "  featurize:\n"
        "    cmd: python featurize.py\n"
        "    outs:\n"
        "    - path: data/features\n"
        "      hash: md5\n"
        "      md5: 0123456789abcdef0123456789abcdef.dir\n"
    )
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "pipeline"]):
        run(repo, local_repo.env, "git", *command)
    runner = DvcRunner(repo, env=local_repo.env)

    assert runner.tracked_targets("data/features/part-0") == ["data/features"]
    assert runner.tracked_targets(".") == ["data/features", "models/model.pt"]
    assert runner.content_hash("data/features", rev="HEAD") == "0123456789abcdef0123456789abcdef.dir"
    with pytest.raises(DvcError, match=r"models/model\.pt have no recorded hash") as caught:
        runner.content_hash("models", rev="HEAD")
    assert "dvc repro" in caught.value.hint


# --- downloads stream DVC's own output and stop at `dvc-timeout` ------------------------------------------

TQDM_BAR = re.compile(r"\|\s*[\d.]+\s*\[\d\d:\d\d")  # "Collecting |7.00 [00:00, 81.0entry/s]"


def test_pull__streams_dvcs_own_progress_and_summary_to_the_log(local_repo: DvcRepo, fresh_clone: Path) -> None:
    log = io.StringIO()

    DvcRunner(fresh_clone, env=local_repo.env, timeout=120, log=log).pull(PROCESSED)

    lines = log.getvalue().splitlines()
    assert lines[0] == "$ dvc pull data/processed.dvc"
    assert any(TQDM_BAR.search(line) for line in lines), lines  # DVC's progress bars, though not a terminal
    assert re.search(r"^\d+ files fetched", log.getvalue(), re.MULTILINE)  # DVC's own summary
    assert "\r" not in log.getvalue() and all(len(line.strip()) > 1 for line in lines)  # log lines, no redraws
    assert files_under(fresh_clone, PROCESSED) == local_repo.files_at(local_repo.head_rev)


def hanging_remote(repo: DvcRepo, dest: Path) -> Path:
    """A copy of ``repo``'s remote whose every object is a named pipe: reading one waits forever."""
    assert repo.remote_url is not None
    shutil.copytree(repo.remote_url, dest)
    for path in [path for path in dest.rglob("*") if path.is_file()]:
        path.unlink()
        os.mkfifo(path)
    return dest


def release(remote: Path) -> None:
    """Safety net: let a reader blocked on one of the pipes see end-of-file (the test then fails, not hangs)."""
    for path in remote.rglob("*"):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            continue  # no reader on this one


@pytest.mark.reliability(
    "wire", "DVC remote that never answers",
    "stopped at `dvc-timeout`: error says so with DVC's last output, the fix shows `dvc-timeout: 3600`"
)
def test_pull__remote_that_never_answers_is_stopped_at_dvc_timeout(
    local_repo: DvcRepo, fresh_clone: Path, tmp_path: Path
) -> None:
    remote = hanging_remote(local_repo, tmp_path / "hanging-remote")
    _set_remote(fresh_clone, str(remote))
    runner = DvcRunner(fresh_clone, env=local_repo.env, log=io.StringIO()).with_timeout(3)
    guard = threading.Timer(60, release, args=(remote,))
    guard.start()
    started = time.monotonic()
    try:
        with pytest.raises(DvcTimeout) as caught:
            runner.pull(PROCESSED)
    finally:
        guard.cancel()

    assert time.monotonic() - started < 3 + 5 + 15  # the timeout, the kill grace, DVC's start-up
    error = caught.value
    assert error.message.startswith(
        "`dvc pull data/processed.dvc` did not finish within 3 s (`dvc-timeout`) and was stopped. Its last output: "
    )
    assert "dvc-timeout: 3600" in error.hint
    assert isinstance(error, DvcError)  # reported like every DVC failure


PYTHON = sys.executable


def test_run_streaming__passes_each_line_on_while_the_command_still_runs(tmp_path: Path) -> None:
    # The command waits for a file that only the echo of its first line creates: if output were
    # passed on at the end, it would give up (exit 3) instead of finishing.
    marker = tmp_path / "seen"
    script = (
        "import pathlib, sys, time\n"
        "print('first', flush=True)\n"
        "deadline = time.monotonic() + 30\n"
        "while not pathlib.Path(sys.argv[1]).exists():\n"
        "    if time.monotonic() > deadline: sys.exit(3)\n"
        "    time.sleep(0.02)\n"
        "sys.stderr.write('\\rprogress 1\\rprogress 2\\n'); sys.stderr.flush()\n"
        "print('second', flush=True)\n"
    )
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line == "first":
            marker.touch()

    done = run_streaming([PYTHON, "-c", script, str(marker)], cwd=tmp_path, env=dict(os.environ), timeout=60,
                         echo=echo)

    assert done.returncode == 0
    assert lines[0] == "first"
    assert sorted(lines[1:]) == ["progress 2", "second"]  # a redraw right after a line is not shown
    assert done.stdout == "first\nsecond" and done.stderr == "progress 2"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's reaping is left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
@pytest.mark.reliability(
    "wire", "DVC command whose child process hangs past the timeout",
    "the whole process group is killed within seconds; the last output line is kept"
)
def test_run_streaming__stops_the_whole_process_group_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import pathlib, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "pathlib.Path(sys.argv[1]).write_text(str(child.pid))\n"
        "print('waiting for the remote', flush=True)\n"
        "time.sleep(120)\n"
    )
    started = time.monotonic()

    done = run_streaming([PYTHON, "-c", script, str(pid_file)], cwd=tmp_path, env=dict(os.environ), timeout=2,
                         echo=lambda line: None)

    assert done.timed_out and done.returncode is None
    assert time.monotonic() - started < 2 + 5 + 5
    assert done.last_line == "waiting for the remote"
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)  # the process it started went down with it


def test_manifest__after_a_pull_lists_the_md5_of_every_file_as_the_files_hash(
        local_repo: DvcRepo, fresh_clone: Path) -> None:
    import hashlib

    runner = DvcRunner(fresh_clone, env=local_repo.env)
    assert runner.manifest(PROCESSED) is None  # no listing in the clone's cache before a pull

    runner.pull(PROCESSED)

    expected = {path.removeprefix(PROCESSED + "/"): hashlib.md5(body).hexdigest()
                for path, body in local_repo.files_at(local_repo.head_rev).items()}
    assert runner.manifest(PROCESSED) == expected
    assert runner.manifest("data") is None  # a parent of two outputs: no one listing names its files
