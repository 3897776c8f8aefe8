"""mlgate.markdown.inert: text shows as the same words on GitHub, never as markup (rendered with cmark-gfm)."""

from __future__ import annotations

import re

import pytest

from mlgate.markdown import MAX_CHARS, code, inert, inert_message
from tests.github_markdown import render, unsafe

SERVER = ("https://github.com/",)


def shown(markdown: str) -> str:
    """The text a reader sees (tags dropped, entities decoded, the invisible word joiner removed)."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", render(markdown))).replace("\u2060", "").strip()


@pytest.mark.parametrize("text", [
    "![x](https://evil.example/a.png)", "[x](https://evil.example)", "www.evil.example", "a@evil.example",
    "@octocat", "#12", "<details open>", "a | b", "**bold** _it_ ~~del~~", "`code`", "&amp; &#64;", "- item",
    "1. item", "> quote", "\\", "http://evil.example/x", "::set-output name=a::b", "$x$",
])
def test_inert__renders_as_exactly_its_words_and_nothing_else(text: str) -> None:
    for context in ("{}", "| a | b |\n|---|---|\n| {} | x |", "- {}", "## {}"):
        markdown = context.format(inert(text))
        assert unsafe(markdown, allowed_url=SERVER) == [], markdown
    assert shown(inert(text)) == text


def test_inert__drops_bidi_zero_width_and_control_characters_and_flattens_lines() -> None:
    assert shown(inert("a\u202eb\u2066c\u200bd\x1b[1m\ne")) == "abcd[1m e"


def test_inert__bounded() -> None:
    assert len(shown(inert("x" * 10_000))) == MAX_CHARS


@pytest.mark.parametrize("text", ["train", "a|b", "x`y", "``", " lead", "@octocat", "<b>"])
def test_code__a_code_span_of_the_same_words_in_and_out_of_tables(text: str) -> None:
    row = f"| a | b |\n|---|---|\n| {code(text)} | x |"
    assert unsafe(row, allowed_url=SERVER) == []
    assert f"<td><code>{text.replace('<', '&lt;').replace('>', '&gt;')}</code></td>" in render(row)


def test_inert_message__keeps_mlgates_code_spans_and_neutralises_the_rest() -> None:
    message = "1.70 over the 1.2× limit in split `test` ![x](https://evil.example/a.png) @octocat"
    assert unsafe(inert_message(message), allowed_url=SERVER) == []
    assert "<code>test</code>" in render(inert_message(message))
    assert shown(inert_message(message)) == message.replace("`", "")
