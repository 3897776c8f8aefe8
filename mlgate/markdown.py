"""The one escaping function: text from data, a registry, a path, a fork or an input, made inert Markdown.

Every string mlgate did not write itself (class, split and file names, a ``Dataset``'s classes, W&B
metadata, run names, config values, project and dataset names, digests, titles) goes through
:func:`inert` before it is put into the comment, the job summary, a check run, an approval pull
request or a model card. What comes out renders as the same words on GitHub, never as markup:

- no images, links or autolinks: every ASCII punctuation character is backslash-escaped (CommonMark
  lets any of them be escaped), which also breaks ``www.``, ``http://`` and emphasis;
- no HTML and no entities (``<`` and ``&`` are escaped);
- no ``@mention``, e-mail autolink or ``#123`` reference: a WORD JOINER (U+2060, invisible) follows
  every ``@`` and ``#`` (GitHub links those after rendering, so escaping alone would not do);
- no table breaks: ``|`` is escaped (GitHub's tables honour ``\\|`` even inside code spans), line
  breaks become spaces;
- no bidi controls or other invisible format characters (U+202A-E, U+2066-9, U+200B-F, U+061C,
  U+FEFF), no control characters;
- no workflow command: ``::`` is escaped like every other ``:``.

``code=True`` gives the same words as an inline code span (names shown as ``train``): inside a code
span nothing is markup and GitHub neither mentions nor autolinks, so only the fence, ``|`` and the
invisible characters need care.
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
                        "\u2028\u2029]")
_MARKUP = re.compile(r"[\\`*_\[\]<>&|~$]")
"""Characters that start markup anywhere in a line: escapes, code, emphasis, links and images, HTML and
autolinks, entities, table cells, strikethrough, math."""
_LINE_START = re.compile(r"^(?:[-+=]+|\d{1,9}(?=[.)](?:\s|$)))(?=[\s.)]|$)")
"""What starts a block only at the start of a line: list items, setext underlines, numbered lists."""
MAX_CHARS = 500
"""Longer text is cut (with an ellipsis): a name is not a document."""


def inert(text: object, *, code: bool = False) -> str:
    """``text`` as Markdown that shows exactly its words (see the module docstring); ``code``: as a code span."""
    flat = _INVISIBLE.sub("", " ".join(str(text).splitlines()).replace("\t", " "))
    if len(flat) > MAX_CHARS:
        flat = flat[:MAX_CHARS - 1] + "…"
    if code:
        body = flat.replace("|", "\\|")
        ticks = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
        pad = " " if body.startswith(("`", " ")) or body.endswith(("`", " ")) or not body else ""
        return f"{ticks}{pad}{body}{pad}{ticks}"
    escaped = _MARKUP.sub(r"\\\g<0>", flat)
    escaped = re.sub(r":(?=[/:])", r"\\:", escaped)  # scheme:// autolinks and ::workflow commands
    escaped = re.sub(r"(?i)(?<=www)\.", r"\\.", escaped)  # www. autolinks
    escaped = _LINE_START.sub(lambda m: m[0] + "\\" if m[0][0].isdigit() else "\\" + m[0], escaped)
    return escaped.replace("@", "@" + WORD_JOINER).replace("#", "#" + WORD_JOINER)


def code(text: object) -> str:
    """``inert(text, code=True)``: a name shown as code (``train``), inert like any other text."""
    return inert(text, code=True)


_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")


def inert_message(text: str) -> str:
    """A sentence mlgate composed that may quote names in code spans (a gate's detail, a lineage reason,
    an error message), when it may also have come from elsewhere (a fork's report.json): its code spans
    stay code (their content inert, :func:`code`), everything else is :func:`inert`."""
    parts, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        parts += [inert(text[last:match.start()]) if match.start() > last else "", code(match[2].strip(" "))]
        last = match.end()
    parts.append(inert(text[last:]) if last < len(text) else "")
    return "".join(parts)
