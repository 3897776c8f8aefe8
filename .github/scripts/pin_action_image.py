"""Turn this repository's action.yml into a released one: run a prebuilt image pinned by digest.

On `main`, action.yml says `image: Dockerfile`, so every job that uses the action builds the image
from the checkout (that is what CI and pull requests of this repository must exercise). A release
commit instead says

    runs:
      using: docker
      image: docker://ghcr.io/OWNER/mlgate@sha256:<64 hex>
      env:
        MLGATE_IMAGE: ghcr.io/OWNER/mlgate@sha256:<64 hex>

so the runner pulls exactly the image the release workflow built, smoke-tested and attested, and
the report footer (mlgate/report_blocks.py) can name it. The edit is textual: the `image:` line is
replaced and the `env:` block inserted after it; every other byte of action.yml stays as it was,
and the result is parsed back and compared with the original before it is written.

    python .github/scripts/pin_action_image.py --owner OWNER --digest sha256:HEX [--action action.yml]

Stdlib and PyYAML only, so the release job needs nothing installed beyond the runner's Python.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REGISTRY = "ghcr.io"
DEFAULT_NAME = "mlgate"
# GitHub user and organisation names: 1-39 alphanumerics or single hyphens, not at either end.
# ghcr.io repository paths must be lower case, so the workflow passes the owner lower-cased.
OWNER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}")
NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# a registry host, optionally with a port: ghcr.io, or 127.0.0.1:5000 for the release rehearsal
HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?")
# the `image:` key of the `runs:` block: indentation, optional quotes, optional trailing comment
IMAGE_LINE = re.compile(r"^(?P<indent>[ ]+)image:[ ]*(?P<value>[^#\n]*?)[ ]*(?P<comment>#[^\n]*)?$")


class PinError(ValueError):
    """Raised when the owner, digest or action.yml cannot make a valid pinned action."""


def image_reference(owner: str, digest: str, name: str = DEFAULT_NAME, registry: str = REGISTRY) -> str:
    """``REGISTRY/OWNER/NAME@sha256:HEX`` (ghcr.io by default) after strict validation of each part."""
    if not HOST.fullmatch(registry):
        raise PinError(f"registry {registry!r} is not a lower-case host name with an optional port, e.g. `ghcr.io`.")
    if not OWNER.fullmatch(owner):
        hint = " (ghcr.io needs it lower case)" if OWNER.fullmatch(owner.lower()) else ""
        raise PinError(
            f"owner {owner!r} is not a GitHub user or organisation name{hint}: 1-39 lower-case letters, "
            "digits or single hyphens, not starting or ending with a hyphen, e.g. `mlgate` or `my-org`."
        )
    if not NAME.fullmatch(name):
        raise PinError(f"image name {name!r} is not a valid lower-case registry repository name, e.g. `mlgate`.")
    if not DIGEST.fullmatch(digest):
        raise PinError(
            f"digest {digest!r} is not an image digest: `sha256:` followed by exactly 64 lower-case hex digits, "
            "as `docker buildx imagetools inspect` or `docker inspect --format '{{index .RepoDigests 0}}'` "
            "print it, e.g. sha256:" + "0" * 64 + "."
        )
    return f"{registry}/{owner}/{name}@{digest}"


def _runs_image_line(lines: list[str]) -> int:
    """Index of the one `image:` line directly under the top-level `runs:` key."""
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"^runs:[ ]*(#.*)?$", line.rstrip("\r\n")))
    except StopIteration:
        raise PinError("action.yml has no top-level `runs:` block.") from None
    block: list[int] = []
    for i in range(start + 1, len(lines)):
        text = lines[i].rstrip("\r\n")
        if text and not text.startswith((" ", "#")):
            break  # the next top-level key ends the block
        block.append(i)
    child_indent = min((len(lines[i]) - len(lines[i].lstrip(" ")) for i in block if lines[i].strip()
                        and not lines[i].lstrip().startswith("#")), default=0)
    found = [i for i in block
             if (m := IMAGE_LINE.match(lines[i].rstrip("\r\n"))) and len(m["indent"]) == child_indent]
    if len(found) != 1:
        raise PinError(f"expected exactly one `image:` line in the `runs:` block of action.yml, found {len(found)}.")
    return found[0]


def pin_image(text: str, owner: str, digest: str, name: str = DEFAULT_NAME, registry: str = REGISTRY) -> str:
    """action.yml ``text`` with ``runs.image`` pinned to the digest and ``runs.env.MLGATE_IMAGE`` set.

    Raises PinError when the owner or digest is invalid, when action.yml is not a Docker action built
    from ``Dockerfile`` (already pinned, say), or when the result would differ anywhere else.
    """
    reference = image_reference(owner, digest, name, registry)
    original = yaml.safe_load(text)
    runs = original.get("runs") if isinstance(original, dict) else None
    if not isinstance(runs, dict) or runs.get("using") != "docker":
        raise PinError("action.yml is not a Docker container action (`runs.using: docker`).")
    if runs.get("image") != "Dockerfile":
        raise PinError(
            f"action.yml has `runs.image: {runs.get('image')}`; only `image: Dockerfile` (the state of `main`) is "
            "pinned. Run the script on the tagged source commit, not on an already pinned release commit."
        )
    if "env" in runs:
        raise PinError("action.yml already has `runs.env`; the script only knows how to add it.")

    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # split on "\n" only, keeping each line's ending
    index = _runs_image_line(lines)
    body = lines[index].rstrip("\r\n")
    newline = lines[index][len(body):] or "\n"  # the file's own line ending (\r\n stays \r\n)
    match = IMAGE_LINE.match(body)
    assert match is not None  # _runs_image_line only returns matching lines
    indent = match["indent"]
    comment = f"  {match['comment']}" if match["comment"] else ""
    lines[index] = (
        f"{indent}image: docker://{reference}{comment}{newline}"
        f"{indent}env:{newline}"
        f"{indent}  MLGATE_IMAGE: {reference}{lines[index][len(body):]}"
    )
    pinned = "".join(lines)
    _check(original, pinned, reference)
    return pinned


def _check(original: dict[str, Any], pinned_text: str, reference: str) -> None:
    """The pinned file parses to the original with only ``runs`` changed, as intended."""
    try:
        pinned = yaml.safe_load(pinned_text)
    except yaml.YAMLError as exc:
        raise PinError(f"the pinned action.yml does not parse: {exc}") from exc
    expected = {**original, "runs": {**original["runs"], "image": f"docker://{reference}",
                                     "env": {"MLGATE_IMAGE": reference}}}
    if pinned != expected:
        raise PinError("the pinned action.yml differs from the original in more than `runs.image` and `runs.env`.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owner", required=True, help="lower-case owner of the ghcr.io package, e.g. `mlgate`")
    parser.add_argument("--digest", required=True, help="image digest, `sha256:` and 64 hex digits")
    parser.add_argument("--name", default=DEFAULT_NAME, help="image name under the owner (default: %(default)s)")
    parser.add_argument("--registry", default=REGISTRY,
                        help="registry host (default: %(default)s; the rehearsal uses a loopback registry)")
    parser.add_argument("--action", type=Path, default=Path("action.yml"), help="file to rewrite in place")
    args = parser.parse_args(argv)
    try:
        text = args.action.read_bytes().decode("utf-8")  # bytes: keep the file's line endings as they are
        pinned = pin_image(text, args.owner, args.digest, args.name, args.registry)
    except (OSError, PinError) as exc:
        message = str(exc).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error title=Cannot pin the action's image::{message}", file=sys.stderr)
        return 1
    args.action.write_bytes(pinned.encode("utf-8"))
    print(f"{args.action}: runs.image -> docker://{image_reference(args.owner, args.digest, args.name, args.registry)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
