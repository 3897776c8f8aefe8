"""What GitHub would show for a Markdown body mlgate posted, and everything in it that is unsafe.

The Markdown is rendered with GitHub's own engine (cmark-gfm, through ``cmarkgfm``) with GitHub's
extensions (tables, autolinks, tagfilter, strikethrough) and raw HTML passed through, as GitHub's
renderer does before its sanitiser; the HTML is then read with ``html.parser``. :func:`unsafe` lists
what a reader would see that mlgate did not mean to write: an image or link to anywhere but the
hosted figures and this server, a tag mlgate does not emit or one with attributes it does not emit,
a ``@mention`` or ``#ref`` outside code, a bidi control, a table row whose cells do not match its
header (counted in the source, as GitHub pads or drops cells silently).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

ALLOWED_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr", "br", "strong", "em", "del",
    "code", "pre", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "details", "summary", "sub",
}
"""The tags mlgate's own Markdown renders to (cmark's output of it, and its details/summary/sub/br)."""
ALLOWED_ATTRIBUTES = {
    ("img", "src"), ("img", "alt"), ("a", "href"), ("th", "align"), ("td", "align"), ("pre", "lang"),
    ("ol", "start"),
}
"""The attributes mlgate's own Markdown renders to: figures, links to this server, table alignment,
a Mermaid code block's language, a numbered list's start."""
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")
REFERENCE = re.compile(r"(?<![\w&])#[0-9]")


def render(markdown: str) -> str:
    """GitHub-flavoured Markdown to HTML, raw HTML passed through as GitHub's renderer does."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


class _Reader(HTMLParser):
    def __init__(self, allowed_url: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed_url = allowed_url
        self.problems: list[str] = []
        self.in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if (tag, name) not in ALLOWED_ATTRIBUTES:
                self.problems.append(f"attribute {name}= on <{tag}>")
            elif name in ("src", "href") and not (value or "").startswith(self.allowed_url):
                self.problems.append(f"{name}={value!r} on <{tag}>")
        if tag in ("code", "pre"):
            self.in_code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre") and self.in_code:
            self.in_code -= 1

    def handle_data(self, data: str) -> None:
        if self.in_code:
            return
        if MENTION.search(data):
            self.problems.append(f"@mention in {data.strip()[:60]!r}")
        if REFERENCE.search(data):
            self.problems.append(f"#reference in {data.strip()[:60]!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"HTML comment <!--{data[:40]}-->")


def _cells(row: str) -> int:
    body = row.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return len(re.split(r"(?<!\\)\|", body))


def table_breaks(markdown: str) -> list[str]:
    """Rows of a GFM table whose cell count differs from its header's (pipes split cells even in code)."""
    problems, lines, i = [], markdown.split("\n"), 0
    while i < len(lines) - 1:
        if "|" in lines[i] and re.fullmatch(r"\s*\|?(\s*:?-+:?\s*\|)+\s*(:?-+:?\s*)?", lines[i + 1]):
            width = _cells(lines[i])
            j = i + 2
            while j < len(lines) and lines[j].strip() and "|" in lines[j]:
                if _cells(lines[j]) != width:
                    problems.append(f"table row with {_cells(lines[j])} cells under a {width}-cell header: "
                                    f"{lines[j][:80]!r}")
                j += 1
            i = j
        else:
            i += 1
    return problems


def unsafe(markdown: str, *, allowed_url: tuple[str, ...], first_line_marker: bool = True) -> list[str]:
    """Everything unsafe GitHub would show for ``markdown``; ``allowed_url``: the URL prefixes a link or
    image may point at (hosted figures, this server). The first line, a sticky-comment marker (an
    HTML comment mlgate writes), is skipped when ``first_line_marker``."""
    if first_line_marker and markdown.startswith("<!-- mlgate:"):
        markdown = markdown.partition("\n")[2]
    reader = _Reader(allowed_url)
    html = render(markdown)
    reader.feed(html)
    reader.close()
    problems = reader.problems + table_breaks(markdown)
    problems += [f"workflow command line {line.strip()[:60]!r}" for line in markdown.split("\n")
                 if line.strip().startswith(("::", "##["))]
    if BIDI.search(html):
        problems.append("bidi control character")
    return problems
