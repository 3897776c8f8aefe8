from __future__ import annotations

import io
import re
from pathlib import Path

from mlgate import workflow
from tests.helpers import parse_outputs


def test_set_outputs__multiline_values_survive(tmp_path: Path) -> None:
    path = tmp_path / "output"
    value = "line one\nEOF\nghadelimiter_x\nlast"
    workflow.set_outputs(path, {"report": value, "passed": "true"})
    assert parse_outputs(path.read_text()) == {"report": value, "passed": "true"}


def test_annotate__escapes_newlines_percent_and_property_separators() -> None:
    out = io.StringIO()
    workflow.annotate("error", "Bad: input, really", "100% wrong\nsecond line", stream=out)
    assert out.getvalue() == "::error title=Bad%3A input%2C really::100%25 wrong%0Asecond line\n"


def test_mask__masks_every_line_of_a_multiline_secret() -> None:
    out = io.StringIO()
    workflow.mask("-----BEGIN KEY-----\nabc\n-----END KEY-----", stream=out)
    assert re.findall(r"::add-mask::(.*)", out.getvalue()) == ["-----BEGIN KEY-----", "abc", "-----END KEY-----"]


def test_files_are_skipped_outside_actions() -> None:
    workflow.set_outputs(None, {"a": "b"})
    workflow.append_summary(None, "text")
