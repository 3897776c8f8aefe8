"""Hostile path inputs end to end: entrypoint.py as the runner starts it, with a checkout (the workspace)
next to folders and files that belong to no one's report.

Each case asserts what the user sees (exit code, a message naming the input, the value and the
workspace), that nothing was written outside the workspace, and that the dataset is byte for byte
what it was (a hash of every file, name and mode under it before and after the run). Refusals happen
before any work: no file is read, listed or written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.helpers import Run, run_entrypoint

DATA = "data/processed"
SECRET = "outside-secret.txt"  # a file outside the workspace whose name must never be listed


def tree_hash(root: Path) -> str:
    """Every file, folder and link under ``root``: relative name, kind, mode and bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} -> {os.readlink(path)}\n".encode())
        elif path.is_dir():
            digest.update(f"D {rel}\n".encode())
        else:
            digest.update(f"F {rel} {path.stat().st_mode:o}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.datasets import make_course  # imports torch

    root = tmp_path_factory.mktemp("dataset") / "processed"
    make_course(root, n_train=40, n_test=20, classes=4, seed=7)
    return root


@pytest.fixture
def world(tmp_path: Path, dataset: Path) -> Path:
    """``tmp_path/ws`` (the checkout, with ``data/processed`` and a README) next to ``tmp_path/outside``
    (a folder with a dataset and a secret file of its own)."""
    workspace = tmp_path / "ws"
    shutil.copytree(dataset, workspace / DATA)
    (workspace / "README.md").write_text("# the repository\n")
    outside = tmp_path / "outside"
    shutil.copytree(dataset, outside / "processed")
    (outside / SECRET).write_text("not yours\n")
    (outside / "promotion.json").write_text('{"artifact": "e/p/m:v1", "collection": "e/model-registry/m", '
                                            '"alias": "production"}\n')
    return tmp_path


class Action:
    """Runs the action in ``world`` and checks what must hold after every refused run."""

    def __init__(self, world: Path) -> None:
        self.world = world
        self.workspace = world / "ws"
        self.runs = 0

    def __call__(self, mode: str = "data-stats", env: Mapping[str, str] | None = None, **inputs: str) -> Run:
        self.runs += 1
        base = {"INPUT_MODE": mode, "INPUT_HOST-FIGURES": "false"}
        if mode != "promote":
            base["INPUT_DVC-PULL"] = "false"
        if mode == "data-stats":
            base |= {"INPUT_DATA": DATA, "INPUT_COMPARE-BASE": "false"}
        return run_entrypoint(self.world / f"run{self.runs}", self.workspace, "push", {}, {**base, **(env or {})},
                              inputs)

    def outside(self) -> str:
        """Everything in the world but the workspace and the runs' own files (event, outputs, HOME)."""
        digest = hashlib.sha256()
        for path in sorted(self.world.iterdir()):
            if path.name != "ws" and not path.name.startswith("run"):
                digest.update(f"{path.name}:{tree_hash(path) if path.is_dir() else path.read_bytes()!r}".encode())
        return digest.hexdigest()


@pytest.fixture
def action(world: Path) -> Action:
    return Action(world)


def refused(done: Run, *needles: str) -> str:
    """The run exited 2 with one ``::error`` annotation holding every needle; no traceback, no report."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, done.stdout
    message = errors[0].replace("%0A", "\n").replace("%25", "%")
    for needle in needles:
        assert needle in message, message
    assert "report" not in done.outputs
    seen = done.stdout + done.stderr + done.summary
    assert SECRET not in seen  # no listing of anything outside
    return message


def check_untouched(action: Action, before: tuple[str, str]) -> None:
    assert (tree_hash(action.workspace / DATA), action.outside()) == before


def snapshot(action: Action) -> tuple[str, str]:
    return tree_hash(action.workspace / DATA), action.outside()


# ---- paths that leave the workspace


def _link(target: str) -> Callable[[Path], str]:
    """A symlink ``ws/link`` to ``target`` (relative to the world), given as the input value ``link``."""
    def make(world: Path) -> str:
        (world / "ws" / "link").symlink_to(world / target)
        return "link"
    return make


def _absolute(target: str) -> Callable[[Path], str]:
    return lambda world: str(world / target)


def _literal(value: str) -> Callable[[Path], str]:
    return lambda world: value


LEAVING = [
    pytest.param("data", _literal("/etc"), "which points outside the workspace", id="data-etc", marks=
                 pytest.mark.reliability("input", "`data: /etc`", "exit 2 before reading: names `data`, the value "
                                         "and the workspace; nothing of /etc listed")),
    pytest.param("data", _absolute("outside/processed"), "which points outside the workspace", id="data-absolute",
                 marks=pytest.mark.reliability(
                     "input", "`data:` an absolute path to a dataset outside the workspace",
                     "exit 2 before reading: names `data` and the workspace")),
    pytest.param("data", _link("outside"), "through a symbolic link", id="data-symlink", marks=
                 pytest.mark.reliability("input", "`data:` a symlink in the checkout to a folder outside",
                                         "exit 2: says it points outside through a symbolic link; "
                                         "the folder's files are not listed")),
    pytest.param("baseline-data", _literal("../../x"), "no `..`", id="baseline-dotdot", marks=
                 pytest.mark.reliability("input", "`baseline-data: ../../x`",
                                         "exit 2 before any work: names `baseline-data`, says no `..`")),
    pytest.param("baseline-data", _absolute("outside/processed"), "which points outside the workspace",
                 id="baseline-absolute", marks=pytest.mark.reliability(
                     "input", "`baseline-data:` an absolute path to a dataset outside the workspace",
                     "exit 2 before any work: names `baseline-data` and the workspace; nothing read")),
    pytest.param("baseline-data", _link("outside/processed"), "through a symbolic link", id="baseline-symlink",
                 marks=pytest.mark.reliability(
                     "input", "`baseline-data:` a symlink in the checkout to a dataset outside",
                     "exit 2: names `baseline-data`, says through a symbolic link")),
    pytest.param("out", _literal("../escaped"), "no `..`", id="out-dotdot", marks=
                 pytest.mark.reliability("input", "`out: ../escaped`",
                                         "exit 2: names `out`, says no `..`; nothing written outside")),
    pytest.param("out", _absolute("escaped"), "which points outside the workspace", id="out-absolute", marks=
                 pytest.mark.reliability("input", "`out:` an absolute path outside the workspace",
                                         "exit 2 before any work: names `out` and the workspace; "
                                         "the folder is not created")),
    pytest.param("out", _link("outside"), "through a symbolic link", id="out-symlink", marks=
                 pytest.mark.reliability("input", "`out:` a symlink in the checkout to a folder outside",
                                         "exit 2: names `out`, says through a symbolic link; "
                                         "nothing written through it")),
    pytest.param("cache-dir", _absolute("outside"), "which points outside the workspace", id="cache-absolute",
                 marks=pytest.mark.reliability(
                     "input", "`cache-dir:` an absolute path outside the workspace",
                     "exit 2 before any work: names `cache-dir` and the workspace; nothing cached there")),
    pytest.param("cache-dir", _link("outside"), "through a symbolic link", id="cache-symlink", marks=
                 pytest.mark.reliability("input", "`cache-dir:` a symlink in the checkout to a folder outside",
                                         "exit 2: names `cache-dir`, says through a symbolic link")),
]


@pytest.mark.parametrize(("name", "make", "why"), LEAVING)
def test_path_input_leaving_the_workspace__is_refused_before_any_work(
    action: Action, name: str, make: Callable[[Path], str], why: str,
) -> None:
    value = make(action.world)
    before = snapshot(action)
    done = action(**{name: value})
    message = refused(done, f"Input `{name}`", repr(value), why)
    assert "passwd" not in done.stdout + done.stderr + done.summary  # /etc is not listed either
    if "`..`" not in why:
        assert str(action.workspace) in message
        assert "Reading" not in done.stdout  # refused before the data was opened
    check_untouched(action, before)
    assert not (action.world / "escaped").exists()
    assert sorted(p.name for p in (action.world / "outside").iterdir()) == [SECRET, "processed", "promotion.json"]


MODEL_AND_MANIFEST = [
    pytest.param("model-gate", "model", _literal("/etc/passwd"), "which points outside the workspace",
                 id="model-etc-passwd", marks=pytest.mark.reliability(
                     "input", "`model: /etc/passwd`",
                     "exit 2 before the file is opened: names `model`, the value and the workspace")),
    pytest.param("model-gate", "model", _link(f"outside/{SECRET}"), "through a symbolic link",
                 id="model-symlink", marks=pytest.mark.reliability(
                     "input", "`model:` a symlink in the checkout to a file outside",
                     "exit 2 before the file is opened: names `model`, says through a symbolic link")),
    pytest.param("model-gate", "eval-data", _literal("/etc"), "which points outside the workspace",
                 id="eval-data-etc", marks=pytest.mark.reliability(
                     "input", "`eval-data: /etc`",
                     "exit 2 before reading: names `eval-data` and the workspace; nothing of /etc listed")),
    pytest.param("promote", "manifest", _absolute("outside/promotion.json"), "which points outside the workspace",
                 id="manifest-absolute", marks=pytest.mark.reliability(
                     "input", "`manifest:` an absolute path to a file outside the workspace",
                     "exit 2 before the registry is called: names `manifest` and the workspace")),
]


@pytest.mark.parametrize(("mode", "name", "make", "why"), MODEL_AND_MANIFEST)
def test_model_eval_data_and_manifest_leaving_the_workspace__are_refused(
    action: Action, mode: str, name: str, make: Callable[[Path], str], why: str,
) -> None:
    value = make(action.world)
    inputs = {name: value}
    if name == "eval-data":
        inputs["model"] = "wandb-registry-model/mnist:staging"
    before = snapshot(action)
    done = action(mode, **inputs)
    message = refused(done, f"Input `{name}`", repr(value), why)
    assert str(action.workspace) in message
    assert "root:" not in done.stdout + done.stderr  # /etc/passwd was not read
    check_untouched(action, before)


# ---- a report folder that would destroy data


@pytest.mark.parametrize(("out", "where"), [
    pytest.param(DATA, "is `data`", id="equal", marks=pytest.mark.reliability(
        "input", "`out: data/processed` (the `data` folder itself)",
        "exit 2 before any work: says `out` is `data`; the dataset folder is byte for byte unchanged")),
    pytest.param(f"{DATA}/report", "is inside `data`", id="inside", marks=pytest.mark.reliability(
        "input", "`out: data/processed/report` (inside `data`)",
        "exit 2: says `out` is inside `data`; the dataset folder is unchanged, no folder added")),
    pytest.param("data", "contains `data`", id="parent", marks=pytest.mark.reliability(
        "input", "`out: data` (the folder around `data`)",
        "exit 2: says `out` contains `data`; the dataset folder is unchanged")),
    pytest.param(".", "contains `data`", id="workspace", marks=pytest.mark.reliability(
        "input", "`out: .` (the whole checkout)", "exit 2: says `out` contains `data`; nothing written")),
    pytest.param("data-link", "is `data`", id="symlink-to-data", marks=pytest.mark.reliability(
        "input", "`out:` a symlink in the checkout to the `data` folder",
        "exit 2: says `out` is `data` (symlinks followed); the dataset folder is unchanged")),
])
def test_out_on_the_data__is_refused_and_the_data_is_untouched(action: Action, out: str, where: str) -> None:
    (action.workspace / "data-link").symlink_to(action.workspace / DATA)
    before = snapshot(action)
    workspace_before = tree_hash(action.workspace)
    done = action(out=out)
    refused(done, "Input `out`", where, "out: mlgate-report")
    check_untouched(action, before)
    assert tree_hash(action.workspace) == workspace_before  # not even an empty report folder


@pytest.mark.parametrize(("out", "what"), [
    pytest.param("baseline", "is `baseline-data`", id="baseline", marks=pytest.mark.reliability(
        "input", "`out` equal to `baseline-data`",
        "exit 2: says `out` is `baseline-data`; that dataset is unchanged")),
    pytest.param(".mlgate-cache", "is `cache-dir`", id="cache", marks=pytest.mark.reliability(
        "input", "`out` equal to `cache-dir`", "exit 2: says `out` is `cache-dir`; nothing written")),
])
def test_out_on_the_baseline_or_the_cache__is_refused(action: Action, out: str, what: str) -> None:
    shutil.copytree(action.workspace / DATA, action.workspace / "baseline")
    before = tree_hash(action.workspace)
    done = action(out=out, baseline_data="baseline")
    refused(done, "Input `out`", what)
    assert tree_hash(action.workspace) == before


@pytest.mark.parametrize(("out", "what"), [
    pytest.param("README.md", "is a file, not a folder", id="file", marks=pytest.mark.reliability(
        "environment", "`out: README.md` (an existing file)",
        "exit 2 before any work: says `out` is a file; the file is unchanged")),
    pytest.param("README.md/report", "is inside", id="under-file", marks=pytest.mark.reliability(
        "environment", "`out: README.md/report` (a folder under a file)",
        "exit 2 before any work: says `out` is inside a file; the file is unchanged")),
])
def test_out_that_cannot_be_a_folder__is_refused_before_any_work(action: Action, out: str, what: str) -> None:
    before = tree_hash(action.workspace)
    done = action(out=out)
    message = refused(done, "Input `out`", what)
    assert done.stdout.startswith("::error")  # nothing ran before the refusal: no phase
    assert "Cannot write" in message
    assert tree_hash(action.workspace) == before


# ---- values that could become workflow commands, and values the OS cannot open


@pytest.mark.reliability(
    "input", "`out` with a newline followed by `::set-output name=passed::true` and `::error::`",
    "exit 2: one escaped `::error` annotation naming `out`; no other workflow command on stdout")
def test_out_with_a_workflow_command__never_reaches_the_log_as_a_command(action: Action) -> None:
    value = "rep\n::set-output name=passed::true\n::error::forged"
    done = action(out=value)
    refused(done, "Input `out`", "line breaks")
    commands = [line.lstrip() for line in done.stdout.splitlines() if line.lstrip().startswith(("::", "##["))]
    assert len(commands) == 1 and commands[0].startswith("::error title=Invalid input::")
    assert "passed" not in done.outputs


@pytest.mark.reliability(
    "input", "a data folder named `d###[error]forged` (legacy command syntax in a path)",
    "exit 0; the path reaches the log only as plain text, no `##[` command")
def test_path_with_legacy_command_syntax__is_printed_as_plain_text(action: Action) -> None:
    name = "d###[error]forged"
    shutil.copytree(action.workspace / DATA, action.workspace / name)
    done = action(env={"INPUT_DATA": name})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "##[" not in done.stdout
    assert "forged" in done.stdout  # the phase still names the folder
    assert done.report_json()["splits"]["train"]["count"] == 40


@pytest.mark.parametrize(("name", "value", "says"), [
    pytest.param("data", "a" * 5000, "at most 4,095 bytes", id="long-path", marks=pytest.mark.reliability(
        "input", "`data:` a path of 5,000 characters", "exit 2: names `data`, says at most 4,095 bytes; "
        "no traceback, the value is shortened in the message")),
    pytest.param("data", "d/" + "n" * 300, "at most 255", id="long-name", marks=pytest.mark.reliability(
        "input", "`data:` a folder name of 300 characters", "exit 2: names `data`, says a name may be at most "
        "255 bytes; no traceback")),
    pytest.param("out", "/".join(["o" * 200] * 21)[:4085], "longer than the 4,095", id="long-out",
                 marks=pytest.mark.reliability(
        "input", "`out:` a path that is too long only inside the workspace",
        "exit 2: names `out`, says it is longer than the OS opens; nothing created")),
])
def test_path_longer_than_the_os_opens__is_an_input_error(action: Action, name: str, value: str, says: str) -> None:
    before = tree_hash(action.workspace)
    done = action(env={f"INPUT_{name.upper()}": value})
    message = refused(done, f"Input `{name}`", says)
    assert value not in message
    assert tree_hash(action.workspace) == before


@pytest.mark.reliability(
    "input", "`INPUT_MIN-SAMPLES: 10` and `INPUT_MIN_SAMPLES: 5000` set together",
    "exit 2 before any work: names `min-samples` and both variables")
def test_two_spellings_of_one_input_with_different_values__are_refused(action: Action) -> None:
    done = action(env={"INPUT_MIN-SAMPLES": "10", "INPUT_MIN_SAMPLES": "5000"})
    refused(done, "Input `min-samples` is set twice", "INPUT_MIN-SAMPLES", "INPUT_MIN_SAMPLES")


def test_inside_the_workspace__the_same_inputs_work(action: Action) -> None:
    """The control for the refusals above: paths inside the workspace, a symlink that stays inside,
    both spellings with one value, and a report folder beside the data."""
    (action.workspace / "data-link").symlink_to(action.workspace / DATA)
    before = tree_hash(action.workspace / DATA)
    done = action(env={"INPUT_DATA": "data-link", "INPUT_MIN-SAMPLES": "10", "INPUT_MIN_SAMPLES": "10"},
                  out="reports/data", cache_dir=".cache/mlgate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.outputs["report"] == "reports/data/report.md"
    assert done.report_json()["splits"]["train"]["count"] == 40
    assert tree_hash(action.workspace / DATA) == before


# ---- symbolic links inside the data folder that lead nowhere


@pytest.mark.reliability(
    "data", "course shards that are symbolic links to nowhere: a shard linked to itself, one 100 links deep, "
    "its labels file dangling",
    "exit 0 (never 4, never 2): the pairs are listed under Findings with the reason, saying symbolic link; "
    "the other shards are counted")
def test_course_shards_that_are_broken_links__listed_not_a_crash(action: Action) -> None:
    import torch

    data = action.workspace / DATA
    (data / "train_images_1.pt").unlink()
    (data / "train_images_1.pt").symlink_to("train_images_1.pt")
    chain = action.world / "links"
    chain.mkdir()
    links = [data / "train_images_2.pt", *(chain / str(i) for i in range(1, 100))]
    for link, target in zip(links, [*links[1:], data / "train_images_0.pt"], strict=True):
        link.symlink_to(target)
    (data / "train_target_2.pt").symlink_to(data / "missing.pt")
    shard_0 = torch.load(data / "train_target_0.pt").shape[0]  # the one shard left to read

    done = action()

    assert done.returncode == 0, done.stdout + done.stderr
    assert "hit a bug" not in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
    train = done.report_json()["splits"]["train"]
    assert train["count"] == shard_0
    assert train["unreadable"] == [
        "train_images_1.pt / train_target_1.pt (a symbolic link loop (it leads back to itself), not followed)",
        "train_images_2.pt / train_target_2.pt (train_images_2.pt: a chain of 100 symbolic links, more than the "
        "system follows, not followed; train_target_2.pt: a dangling symbolic link (its target does not exist), "
        "not followed)"]
    report = (action.workspace / done.outputs["report"]).read_text()
    assert "train_images_1.pt / train_target_1.pt (a symbolic link loop" in report
