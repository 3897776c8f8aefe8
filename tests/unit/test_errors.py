"""Exit codes mean one thing each: every error class declares its code, ``mlgate.cli.main`` returns
it, and anything else is a bug reported in a few lines with the version and where to file it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path

import pytest

import mlgate
from mlgate import cli
from mlgate.context import EventPayloadError, RunContext
from mlgate.data.dvc import DvcError, DvcRemoteUnavailable, DvcTimeout, _failed
from mlgate.errors import CannotWrite, ExitCode, InvalidInput, MlgateError
from mlgate.github.client import GitHubError, GitHubPermissionError, NothingToPropose
from mlgate.model.registry import ArtifactNotFound, RegistryError, RegistryUnauthorized, RegistryUnavailable
from mlgate.publish import Finished, Publication

ISSUES = "https://github.com/mlgate/mlgate/issues"


def _env(tmp_path: Path, *, in_actions: bool = True) -> dict[str, str]:
    return {
        "INPUT_MODE": "data-stats", "INPUT_DATA": "data",
        "GITHUB_ACTIONS": "true" if in_actions else "false",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "GITHUB_WORKSPACE": str(tmp_path),
    }


def _raising(exc: BaseException) -> Callable[..., object]:
    def load_settings(*_: object, **__: object) -> object:
        raise exc

    return load_settings


def _all_error_classes() -> list[type[MlgateError]]:
    for module in pkgutil.walk_packages(mlgate.__path__, "mlgate."):
        if module.name != "mlgate.__main__":
            importlib.import_module(module.name)
    found: set[type[MlgateError]] = set()
    todo: list[type[MlgateError]] = [MlgateError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("mlgate.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def test_every_error_class__declares_an_exit_code_of_2_or_3() -> None:
    classes = _all_error_classes()
    assert len(classes) > 15  # the walk found the package's errors, not an empty list
    for cls in classes:
        assert cls.exit_code in (ExitCode.ERROR, ExitCode.SERVICE), cls


@pytest.mark.parametrize(("cls", "code"), [
    pytest.param(InvalidInput, 2, id="input"),
    pytest.param(CannotWrite, 2, id="cannot-write"),
    pytest.param(EventPayloadError, 2, id="event"),
    pytest.param(GitHubPermissionError, 2, id="github-permission"),
    pytest.param(NothingToPropose, 2, id="nothing-to-propose"),
    pytest.param(GitHubError, 3, id="github"),
    pytest.param(RegistryError, 2, id="registry-path"),
    pytest.param(RegistryUnauthorized, 2, id="registry-key"),
    pytest.param(ArtifactNotFound, 2, id="registry-not-found"),
    pytest.param(RegistryUnavailable, 3, id="registry-unavailable"),
    pytest.param(DvcError, 2, id="dvc"),
    pytest.param(DvcRemoteUnavailable, 3, id="dvc-remote-unavailable"),
    pytest.param(DvcTimeout, 3, id="dvc-timeout"),
])
def test_exit_code__is_2_when_the_user_can_fix_it_and_3_when_a_service_failed(cls: type[MlgateError],
                                                                               code: int) -> None:
    assert cls.exit_code == code


def _case(cls: type[MlgateError], code: int, case: str) -> object:
    exc = cls("something failed", hint="do this") if cls is not GitHubPermissionError else \
        GitHubPermissionError("something failed", permission="pull-requests: write", hint="do this")
    return pytest.param(exc, code, id=cls.__name__, marks=pytest.mark.reliability(
        "exit", case, f"exit {code}; `::error` with the message and the fix; the same in the job summary"))


@pytest.mark.parametrize(("exc", "code"), [
    _case(GitHubError, 3, "GitHub fails after the client's retries (`GitHubError`)"),
    _case(RegistryUnavailable, 3, "W&B unreachable or answering 5xx (`RegistryUnavailable`)"),
    _case(DvcRemoteUnavailable, 3, "DVC remote unreachable (`DvcRemoteUnavailable`)"),
    _case(RegistryUnauthorized, 2, "W&B refuses the API key"),
    _case(CannotWrite, 2, "a file the run must write cannot be written (`CannotWrite`)"),
])
def test_main__returns_the_errors_exit_code_with_the_message_and_fix(
        exc: MlgateError, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "load_settings", _raising(exc))

    assert cli.main([], _env(tmp_path)) == code

    out, err = capsys.readouterr()
    assert f"::error title={exc.title}::something failed%0Ado this" in out
    assert "Traceback" not in out + err
    summary = (tmp_path / "summary").read_text()
    assert f"### ❌ mlgate: {exc.title}" in summary and "something failed" in summary


@pytest.mark.reliability("exit", "an unexpected exception (a bug) in Actions",
                         "exit 4; `::error` and stderr say `mlgate X.Y.Z hit a bug: Type: message`, the last "
                         "2 frames and the issues URL; the job summary says the same; no traceback")
def test_bug__in_actions_is_a_short_report_with_version_frames_and_issue_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "load_settings", _raising(ZeroDivisionError("division by zero")))

    assert cli.main([], _env(tmp_path)) == ExitCode.BUG == 4

    out, err = capsys.readouterr()
    what = f"mlgate {mlgate.__version__} hit a bug: ZeroDivisionError: division by zero"
    assert out.startswith("::error title=mlgate hit a bug::" + what)
    assert err.splitlines()[0] == what
    frames = [line for line in err.splitlines() if line.startswith("  at ")]
    assert len(frames) == 2
    assert frames[0].startswith("  at mlgate/cli.py:")  # where main called it, short path, then the raiser
    assert frames[1].endswith("in load_settings")
    assert f"open an issue at {ISSUES} with this log" in err
    assert "Traceback" not in out + err
    summary = (tmp_path / "summary").read_text()
    assert "mlgate hit a bug" in summary and "ZeroDivisionError: division by zero" in summary and ISSUES in summary


@pytest.mark.reliability("exit", "an unexpected exception (a bug) on a terminal",
                         "exit 4; stderr only: version, exception, 2 frames, issues URL; stdout empty")
def test_bug__on_a_terminal_is_plain_text_on_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "load_settings", _raising(KeyError("split")))
    env = _env(tmp_path, in_actions=False)
    del env["GITHUB_STEP_SUMMARY"]

    assert cli.main([], env) == 4

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"mlgate {mlgate.__version__} hit a bug: KeyError: 'split'\n  at ")
    assert ISSUES in err and "Traceback" not in err


@pytest.mark.reliability("exit", "an error while GITHUB_STEP_SUMMARY is a folder",
                         "the error's own exit code (2); `::error` with the message, and a warning naming "
                         "GITHUB_STEP_SUMMARY; no traceback")
def test_error__whose_summary_cannot_be_written_still_exits_with_its_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "load_settings", _raising(InvalidInput("Input `data` is wrong.")))
    env = _env(tmp_path)
    (tmp_path / "summary").mkdir()

    assert cli.main([], env) == 2

    out, err = capsys.readouterr()
    assert "::error title=Invalid input::Input `data` is wrong." in out
    assert "::warning title=Cannot write::Cannot write to GITHUB_STEP_SUMMARY" in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("reason", "cls"), [
    pytest.param("ERROR: unexpected error - Connection refused", DvcRemoteUnavailable, id="refused",
                 marks=pytest.mark.reliability("exit", "DVC remote refuses the connection",
                                               "exit 3 (`DvcRemoteUnavailable`): a service, not the input")),
    pytest.param("ERROR: failed to pull data from the cloud - 503 Service Unavailable", DvcRemoteUnavailable,
                 id="503", marks=pytest.mark.reliability("exit", "DVC remote answers 503",
                                                         "exit 3 (`DvcRemoteUnavailable`)")),
    pytest.param("ERROR: failed to pull - 403 Forbidden: caller does not have storage.objects.get permission",
                 DvcError, id="403", marks=pytest.mark.reliability(
                     "exit", "DVC remote refuses the credentials (403)",
                     "exit 2 (`DvcError`) with the `gcp-credentials` hint: the user fixes the key")),
    pytest.param("ERROR: missing cache files: md5 a5030f1e50204e8c", DvcError, id="missing",
                 marks=pytest.mark.reliability("exit", "data missing on the DVC remote (hash holds `503`)",
                                               "exit 2 (`DvcError`) with the `dvc push` hint")),
])
def test_dvc_failure__is_a_service_error_only_when_the_remote_did_not_answer(reason: str,
                                                                            cls: type[DvcError]) -> None:
    assert _failed(reason) is cls


@pytest.mark.parametrize(("message", "cls"), [
    pytest.param("Giving up after 3 attempts: dial tcp 127.0.0.1:9: connection refused", RegistryUnavailable,
                 id="unreachable", marks=pytest.mark.reliability(
                     "exit", "W&B server unreachable", "exit 3 (`RegistryUnavailable`), names the server URL")),
    pytest.param("500 Server Error: Internal Server Error", RegistryUnavailable, id="500"),
    pytest.param("artifact 'e/p/m:v9' not found", ArtifactNotFound, id="not-found"),
])
def test_wandb_failure__unreachable_or_5xx_is_a_service_error(message: str, cls: type[RegistryError]) -> None:
    from wandb.errors import CommError

    from mlgate.model.registry import _translate

    translated = _translate(CommError(message), "e/p/m:v9", "http://127.0.0.1:9", "key-1234")
    assert type(translated) is cls
    if cls is RegistryUnavailable:
        assert translated.exit_code == 3 and "http://127.0.0.1:9" in translated.message


def test_bug_report__frames_are_short_paths() -> None:
    assert cli._short_path("/usr/lib/python3.11/site-packages/torch/nn/modules/module.py") == \
        "torch/nn/modules/module.py"
    assert cli._short_path("/github/workspace/mlgate/mlgate/data/stats.py") == "mlgate/data/stats.py"
    assert cli._short_path(inspect.getfile(cli)) == "mlgate/cli.py"


# ---- degrade, don't abort


@pytest.mark.reliability("exit", "a figure's drawing code raises an unexpected exception",
                         "that figure is left out with a `::notice` naming it and the exception; the others "
                         "are drawn; the run goes on")
def test_render_jobs__a_failing_figure_is_left_out_with_a_notice(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mlgate import workflow
    from mlgate.figures.worker import FigureWorker, LabelDistribution, LossCurve, render_jobs

    def broken(self: LossCurve) -> bytes:
        raise ValueError("x and y must have same first dimension")

    monkeypatch.setattr(LossCurve, "render", broken)
    jobs = {"label_distribution": LabelDistribution({"train": {"0": 3, "1": 4}}),
            "baseline_loss": LossCurve([1.0, 0.5], title="loss"),
            "no_losses": LossCurve([], title="empty")}
    with workflow.running(in_actions=True):
        drawn = render_jobs(jobs)
        in_worker = FigureWorker(None).render(jobs)  # the worker's fallback path answers the same

    assert list(drawn) == ["label_distribution"] and drawn["label_distribution"].startswith(b"\x89PNG")
    assert in_worker == drawn
    out = capsys.readouterr().out
    assert ("::notice title=Figure baseline_loss left out::The figure baseline_loss is not in the report: "
            "ValueError: x and y must have same first dimension") in out


@pytest.mark.reliability("exit", "the figure worker answers that one figure could not be drawn",
                         "the parent leaves that figure out with a `::notice` saying why; the others are kept")
def test_worker__a_figure_it_could_not_draw_is_left_out_with_a_notice(capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import pickle

    from mlgate import workflow
    from mlgate.figures.worker import LabelDistribution, LossCurve, serve

    answer = io.BytesIO()
    serve(io.BytesIO(pickle.dumps({"label_distribution": LabelDistribution({"train": {"0": 1}}),
                                   "no_losses": LossCurve([], title="empty")})), answer)
    received = pickle.loads(answer.getvalue())
    assert received["no_losses"] == "No losses were given to draw a loss curve."

    from mlgate.figures.worker import _keep_drawn

    with workflow.running(in_actions=True):
        kept = _keep_drawn(received)
    assert list(kept) == ["label_distribution"]
    assert "::notice title=Figure no_losses left out::" in capsys.readouterr().out


def _finish_setup(tmp_path: Path) -> tuple[Finished, Publication, RunContext]:
    from mlgate.clients import NOT_IN_ACTIONS

    result = Finished(passed=True, report_json='{"passed": true}',
                      render=lambda links, note: "## Data report\n\nall numbers here\n",
                      figures={"label_distribution": b"\x89PNG fake"})
    publication = Publication(repo=None, branch_store=None, pr_number=None, comment="update", marker="<!-- m -->",
                              host=False, assets_branch="mlgate-assets", out_dir=tmp_path / "mlgate-report",
                              blocked=NOT_IN_ACTIONS)
    ctx = RunContext(in_actions=True, workspace=tmp_path, summary_path=tmp_path / "summary",
                     output_path=tmp_path / "output")
    return result, publication, ctx


@pytest.mark.reliability("exit", "disk full while writing the report folder (after computing)",
                         "exit 2; `::error` names `out`, the path and 'No space left on device'; the report is "
                         "in the job summary; outputs set with `report` empty; no partial files left")
def test_finish__disk_full_still_publishes_the_summary_then_exits_2_naming_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    from mlgate import publish, workflow
    from tests.helpers import parse_outputs

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(publish, "write_shared_file", full)
    result, publication, ctx = _finish_setup(tmp_path)

    with workflow.running(in_actions=True), pytest.raises(CannotWrite) as raised:
        publish.finish(result, publication, ctx)

    assert raised.value.exit_code == 2
    assert raised.value.message.startswith(f"Cannot write the report folder `out` ({tmp_path / 'mlgate-report'}): "
                                           "No space left on device")
    assert "out: mlgate-report" in raised.value.hint
    assert "## Data report\n\nall numbers here" in (tmp_path / "summary").read_text()
    outputs = parse_outputs((tmp_path / "output").read_text())
    assert outputs["passed"] == "true" and outputs["report"] == "" and outputs["report-json"] == ""
    assert list((tmp_path / "mlgate-report").iterdir()) == []
    assert "report: not written (see the error)" in capsys.readouterr().out


@pytest.mark.reliability("exit", "report folder read-only (simulated: every write refused with EACCES)",
                         "exit 2; `::error` names `out` and 'permission denied'; the report is in the job summary")
def test_main__unwritable_report_folder_exits_2_after_the_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    from mlgate import publish

    def refused(path: Path, data: bytes) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(publish, "write_shared_file", refused)
    result, publication, ctx = _finish_setup(tmp_path)

    def run_and_finish(*_: object, **__: object) -> object:
        return publish.finish(result, publication, ctx)

    monkeypatch.setattr(cli, "load_settings", run_and_finish)

    assert cli.main([], _env(tmp_path)) == 2

    out, err = capsys.readouterr()
    assert "::error title=Cannot write::Cannot write the report folder `out`" in out
    assert "permission denied" in out
    summary = (tmp_path / "summary").read_text()
    assert summary.index("all numbers here") < summary.index("### ❌ mlgate: Cannot write")
    assert "Traceback" not in out + err


@pytest.mark.reliability("exit", "an arithmetic error while measuring (`batch-sizes` reaching a 0 divisor)",
                         "exit 2 (`Cannot benchmark model`) naming the model, the error and the inputs that size "
                         "the benchmark; no traceback, no report")
def test_model_gate__an_arithmetic_error_while_measuring_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from mlgate.clients import NOT_IN_ACTIONS, Clients
    from mlgate.data.dvc import DvcRunner
    from mlgate.model.measure import run as measure_run
    from mlgate.model.measure.values import BenchmarkError
    from mlgate.model.mode import run_model_gate
    from mlgate.settings import ModelGateSettings, load_settings
    from tests.fixtures.models import make_images, torchscript_bytes

    images, labels = make_images(50, seed=3)
    (tmp_path / "data").mkdir()
    torch.save(images, tmp_path / "data" / "test_images.pt")
    torch.save(labels, tmp_path / "data" / "test_target.pt")
    untrained = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))  # never measured
    (tmp_path / "model.pt").write_bytes(torchscript_bytes(untrained, "trace"))

    def divides_by_zero(*_: object, **__: object) -> object:
        return 1 // 0

    monkeypatch.setattr(measure_run, "measure_model", divides_by_zero)
    settings = load_settings({"mode": "model-gate", "eval-data": "data", "model": "model.pt",
                              "predictions": "5", "batch-sizes": "1"})
    assert isinstance(settings, ModelGateSettings)
    clients = Clients(github=None, github_blocked=NOT_IN_ACTIONS, dvc=DvcRunner(tmp_path), registry=None,  # type: ignore[arg-type]
                      env={})

    with pytest.raises(BenchmarkError) as raised:
        run_model_gate(settings, RunContext(in_actions=False, workspace=tmp_path), clients)

    assert raised.value.exit_code == 2
    assert raised.value.message == "Measuring model.pt failed: ZeroDivisionError: integer division or modulo by zero."
    assert "`batch-sizes`" in raised.value.hint
    assert not (tmp_path / "mlgate-report").exists()


def test_bug__a_very_long_exception_text_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "load_settings", _raising(ValueError("x" * 5000)))

    assert cli.main([], _env(tmp_path, in_actions=False)) == 4

    first = capsys.readouterr().err.splitlines()[0]
    assert first == f"mlgate {mlgate.__version__} hit a bug: ValueError: {'x' * cli.BUG_MESSAGE_CHARS} …"
