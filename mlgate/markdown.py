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
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
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
    escaped = _PUNCTUATION.sub(r"\\\1", flat)
    return escaped.replace("@", "@" + WORD_JOINER).replace("#", "#" + WORD_JOINER)
