from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate import workflow
from tests.helpers import parse_outputs


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def in_actions() -> Iterator[None]:
    with workflow.running(in_actions=True):
        yield


@pytest.fixture
def on_terminal() -> Iterator[None]:
    with workflow.running(in_actions=False):
        yield


@pytest.mark.reliability(
    "input", "an output value with lines `EOF` and `ghadelimiter_x`",
    "written whole to `GITHUB_OUTPUT`; no other output key can be forged"
)
def test_set_outputs__multiline_values_survive(tmp_path: Path) -> None:
    path = tmp_path / "output"
    value = "line one\nEOF\nghadelimiter_x\nlast"
    workflow.set_outputs(path, {"report": value, "passed": "true"})
    assert parse_outputs(path.read_text()) == {"report": value, "passed": "true"}


def test_running__sets_the_reader_for_the_block_and_restores_it() -> None:
    assert workflow.in_actions() is False  # the default: a person at a terminal
    with workflow.running(in_actions=True):
        assert workflow.in_actions() is True
        with workflow.running(in_actions=False):
            assert workflow.in_actions() is False
        assert workflow.in_actions() is True
    assert workflow.in_actions() is False


@pytest.mark.reliability(
    "input", "annotation text with a newline, `%`, `:` and `,`",
    "escaped (`%0A`, `%25`, `%3A`, `%2C`): one annotation, no second workflow command"
)
def test_annotate__in_actions_escapes_newlines_percent_and_property_separators(in_actions: None) -> None:
    out = io.StringIO()
    workflow.annotate("error", "Bad: input, really", "100% wrong\nsecond line", stream=out)
    assert out.getvalue() == "::error title=Bad%3A input%2C really::100%25 wrong%0Asecond line\n"


def test_annotate__on_a_terminal_is_plain_text_on_stderr(on_terminal: None, capsys: pytest.CaptureFixture[str]) -> None:
    workflow.annotate("warning", "No PR comment", "100% in the summary\nsecond line")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "warning: No PR comment — 100% in the summary\n  second line\n"


def test_error__on_a_terminal_says_title_message_and_the_fix(on_terminal: None) -> None:
    out = io.StringIO()
    workflow.error("Invalid input", "Input `data` is 'x': folder does not exist.",
                   "with:\n  data: data/processed", stream=out)
    assert out.getvalue() == (
        "error: Invalid input\n"
        "Input `data` is 'x': folder does not exist.\n"
        "\n"
        "How to fix it:\n"
        "  with:\n"
        "    data: data/processed\n"
    )


def test_error__in_actions_is_one_annotation_with_the_hint(in_actions: None) -> None:
    out = io.StringIO()
    workflow.error("Invalid input", "bad value", "with:\n  data: d", stream=out)
    assert out.getvalue() == "::error title=Invalid input::bad value%0Awith:%0A  data: d\n"


@pytest.mark.reliability(
    "secret", "multi-line secret (a PEM key)",
    "`::add-mask::` for each line of 4+ characters; never for a lone brace or a short line"
)
def test_mask__in_actions_masks_each_line_of_4_or_more_characters(in_actions: None) -> None:
    out = io.StringIO()
    workflow.mask("-----BEGIN KEY-----\nabc\n  {\nMIIEvQIBADANBg\n}\nabcd\nabcd\n-----END KEY-----", stream=out)
    assert re.findall(r"::add-mask::(.*)", out.getvalue()) == [
        "-----BEGIN KEY-----", "MIIEvQIBADANBg", "abcd", "-----END KEY-----",
    ]


@pytest.mark.parametrize("value", ["", "{", "}", " ab ", "abc", "\n\n"])
def test_mask__refuses_values_shorter_than_4_characters(in_actions: None, value: str) -> None:
    out = io.StringIO()
    workflow.mask(value, stream=out)
    assert out.getvalue() == ""


@pytest.mark.reliability(
    "secret", "secret to mask when run at a terminal",
    "nothing printed (echoing it would show it)"
)
def test_mask__on_a_terminal_prints_nothing(on_terminal: None, capsys: pytest.CaptureFixture[str]) -> None:
    workflow.mask("s3cr3t-token-value")
    assert capsys.readouterr() == ("", "")  # echoing it would show the secret, not hide it


def test_phase__in_actions_folds_the_step_and_shows_its_time_after_the_fold(in_actions: None) -> None:
    out, clock = io.StringIO(), Clock()
    with workflow.phase("Pulling data/processed", stream=out, clock=clock):
        print("dvc output", file=out)
        clock.now += 12.34
    assert out.getvalue() == "::group::Pulling data/processed\ndvc output\n::endgroup::\n  done in 12.3 s\n"


def test_phase__on_a_terminal_announces_the_step_and_its_time(on_terminal: None) -> None:
    out, clock = io.StringIO(), Clock()
    with workflow.phase("Drawing the figures", stream=out, clock=clock):
        clock.now += 75
    assert out.getvalue() == "▸ Drawing the figures…\n  done in 1 min 15 s\n"


def test_phase__closes_the_fold_before_an_error_propagates(in_actions: None) -> None:
    out, clock = io.StringIO(), Clock()
    with pytest.raises(RuntimeError), workflow.phase("Benchmarking", stream=out, clock=clock):
        clock.now += 0.5
        raise RuntimeError("shape mismatch")
    assert out.getvalue() == "::group::Benchmarking\n::endgroup::\n  failed after 0.5 s\n"


def test_progress__speaks_at_most_once_per_interval_and_not_at_all_in_a_short_loop(on_terminal: None) -> None:
    out, clock = io.StringIO(), Clock()
    say = workflow.progress(every_s=5, stream=out, clock=clock)
    for items in range(1, 31):  # 30 batches, one second each
        clock.now += 1
        say(f"{items * 1000:,} items read")
    assert out.getvalue().splitlines() == [
        "  … 5,000 items read (5.0 s)", "  … 10,000 items read (10.0 s)", "  … 15,000 items read (15.0 s)",
        "  … 20,000 items read (20.0 s)", "  … 25,000 items read (25.0 s)", "  … 30,000 items read (30.0 s)",
    ]
    quiet = io.StringIO()
    short = workflow.progress(every_s=5, stream=quiet, clock=clock)
    for _ in range(4):
        clock.now += 1
        short("working")
    assert quiet.getvalue() == ""


def test_files_are_skipped_outside_actions() -> None:
    workflow.set_outputs(None, {"a": "b"})
    workflow.append_summary(None, "text")


@pytest.mark.parametrize(("variable", "where", "why"), [
    pytest.param("GITHUB_OUTPUT", "folder", "it is a folder, not a file", id="output-folder"),
    pytest.param("GITHUB_OUTPUT", "missing", "does not exist", id="output-missing-folder"),
    pytest.param("GITHUB_STEP_SUMMARY", "folder", "it is a folder, not a file", id="summary-folder"),
    pytest.param("GITHUB_STEP_SUMMARY", "missing", "does not exist", id="summary-missing-folder"),
])
def test_file_commands__unwritable_raise_cannot_write_naming_the_variable(
        tmp_path: Path, variable: str, where: str, why: str) -> None:
    from mlgate.errors import CannotWrite

    path = tmp_path / "gone" / "file" if where == "missing" else tmp_path / "file"
    if where == "folder":
        path.mkdir()
    write = {"GITHUB_OUTPUT": lambda: workflow.set_outputs(path, {"passed": "true"}),
             "GITHUB_STEP_SUMMARY": lambda: workflow.append_summary(path, "# Report")}[variable]

    with pytest.raises(CannotWrite) as raised:
        write()

    assert raised.value.message.startswith(f"Cannot write to {variable} ({path}): ")
    assert why in raised.value.message
    assert raised.value.exit_code == 2
    assert not (tmp_path / "gone").exists()  # nothing created on the way


def test_file_commands__a_full_disk_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from mlgate.errors import CannotWrite

    def full(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "open", full)
    with pytest.raises(CannotWrite, match=r"Cannot write to GITHUB_OUTPUT \(.*\): No space left on device\."):
        workflow.set_outputs(tmp_path / "output", {"passed": "true"})
