"""Print the CHANGELOG.md section of one version: the release notes of its GitHub Release.

CHANGELOG.md follows Keep a Changelog: one `## [X.Y.Z] - YYYY-MM-DD` heading per release, newest
first, and link definitions (`[X.Y.Z]: https://...`) at the bottom. The section is everything
between the version's heading and the next `## ` heading, without the heading itself (the Release
has its own title) and without the trailing link definitions. A version with no section, or an
empty one, is an error: a release must say what changed.

    python .github/scripts/changelog_section.py 1.2.3 [--changelog CHANGELOG.md] > notes.md

Stdlib only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

VERSION = re.compile(r"v?(?P<version>\d+\.\d+\.\d+)")
LINK_DEFINITION = re.compile(r"^\[[^\]]+\]:\s*\S+\s*$")


class NoSection(LookupError):
    """Raised when CHANGELOG.md has no section, or only an empty one, for the version."""


def changelog_section(text: str, version: str) -> str:
    """The body of ``version``'s section (``X.Y.Z`` or ``vX.Y.Z``), stripped, ending in one newline."""
    match = VERSION.fullmatch(version.strip())
    if match is None:
        raise ValueError(f"version {version!r} is not X.Y.Z (a leading `v` is allowed), e.g. 1.2.3")
    wanted = match["version"]
    heading = re.compile(rf"^##[ \t]+\[?v?{re.escape(wanted)}\]?(?:[ \t]+-[ \t]+.*|[ \t]*)$")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if heading.match(line)]
    if not starts:
        raise NoSection(
            f"CHANGELOG.md has no section for {wanted}. Add one under `## [Unreleased]` before tagging:\n"
            f"## [{wanted}] - YYYY-MM-DD\n### Added\n- ..."
        )
    if len(starts) > 1:
        raise NoSection(f"CHANGELOG.md has {len(starts)} sections for {wanted}; keep exactly one.")
    body: list[str] = []
    for line in lines[starts[0] + 1:]:
        if re.match(r"^##?[ \t]", line):  # the next release (or a new top-level heading) ends the section
            break
        body.append(line)
    while body and (not body[-1].strip() or LINK_DEFINITION.match(body[-1])):
        body.pop()  # the link definitions at the end of the file belong to no section
    notes = "\n".join(body).strip()
    if not notes:
        raise NoSection(f"the CHANGELOG.md section for {wanted} is empty; say what changed in it.")
    return notes + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", help="X.Y.Z or vX.Y.Z")
    parser.add_argument("--changelog", type=Path, default=Path("CHANGELOG.md"))
    args = parser.parse_args(argv)
    try:
        notes = changelog_section(args.changelog.read_text(encoding="utf-8"), args.version)
    except (OSError, ValueError, NoSection) as exc:
        message = str(exc).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error file={args.changelog},title=No release notes::{message}", file=sys.stderr)
        return 1
    sys.stdout.write(notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
