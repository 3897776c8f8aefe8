"""Check that anyone can pull a released image by digest, with no login, for every architecture.

    python .github/scripts/check_public_image.py REGISTRY/OWNER/NAME@sha256:HEX \
        [--platform linux/amd64 --platform linux/arm64] [--insecure-http]

A user's runner pulls `docker://ghcr.io/OWNER/mlgate@sha256:...` anonymously. GHCR creates a new
package private, so the release job runs this before any tag moves: it speaks the registry API as
an anonymous client does (`docker logout` state: the `WWW-Authenticate` challenge, an anonymous
pull token, no credentials of any kind) and fetches the index by its digest, the manifest of each
wanted platform by the digest the index names, and the config blob of each, and it checks that
every layer blob answers. Every body is checked against its digest. On any refusal it exits 1 with
an `::error::` that says how to make the package public. Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

REFERENCE = re.compile(
    r"(?P<registry>[a-z0-9.-]+(?::[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
TIMEOUT_S = 60


class NotPublic(RuntimeError):
    """Raised when an anonymous client cannot pull some part of the image."""


class IncompleteIndex(RuntimeError):
    """Raised when the image pulls anonymously but is not an index holding every wanted platform."""


@dataclass
class AnonymousRegistry:
    """A registry client that holds no credentials: only the anonymous token a challenge offers."""

    base: str
    repository: str
    token: str | None = None
    log: list[str] = field(default_factory=list)

    def _request(self, method: str, path: str, accept: tuple[str, ...]) -> tuple[int, bytes, str]:
        url = f"{self.base}/v2/{self.repository}/{path}"
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = response.read() if method == "GET" else b""
                return response.status, body, response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            with exc:  # an HTTPError holds the open response
                challenge, body = exc.headers.get("WWW-Authenticate", ""), exc.read()
            if exc.code == 401 and self.token is None and challenge.lower().startswith("bearer "):
                self.token = _anonymous_token(challenge)
                return self._request(method, path, accept)
            return exc.code, body, exc.headers.get("Content-Type", "")

    def get(self, kind: str, path: str, digest: str, accept: tuple[str, ...] = ()) -> bytes:
        status, body, _ = self._request("GET", path, accept)
        self.log.append(f"GET {kind} {digest}: HTTP {status}, {len(body)} bytes")
        if status != 200:
            raise NotPublic(f"GET {kind} {digest} answered HTTP {status}: {body[:300].decode(errors='replace')}")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise NotPublic(f"{kind} {digest}: the registry sent content whose digest is {actual}")
        return body

    def head(self, kind: str, path: str, digest: str) -> None:
        status, _, _ = self._request("HEAD", path, ())
        self.log.append(f"HEAD {kind} {digest}: HTTP {status}")
        if status != 200:
            raise NotPublic(f"HEAD {kind} {digest} answered HTTP {status}")


def _anonymous_token(challenge: str) -> str:
    """The token a `Bearer realm=...,service=...,scope=...` challenge hands an anonymous client."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if "realm" not in params:
        raise NotPublic(f"the registry's challenge names no token realm: {challenge!r}")
    query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    try:
        with urllib.request.urlopen(f"{params['realm']}?{query}", timeout=TIMEOUT_S) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise NotPublic(f"the token endpoint refused an anonymous pull token: HTTP {exc.code}") from exc
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise NotPublic("the token endpoint gave no anonymous token")
    return token


def check(reference: str, platforms: list[str], scheme: str = "https") -> list[str]:
    """Fetch what an anonymous `docker pull` of each platform fetches; returns the log of requests."""
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise ValueError(f"{reference!r} is not REGISTRY/REPOSITORY@sha256:<64 hex digits>")
    registry = AnonymousRegistry(f"{scheme}://{match['registry']}", match["repository"])
    index = json.loads(registry.get("index", f"manifests/{match['digest']}", match["digest"], INDEX_TYPES))
    if index.get("mediaType") not in INDEX_TYPES:
        raise IncompleteIndex(f"{reference} is a single manifest ({index.get('mediaType')}), not a multi-arch index")
    by_platform = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
                   for m in index.get("manifests", []) if m.get("platform", {}).get("os") not in (None, "unknown")}
    missing = [p for p in platforms if p not in by_platform]
    if missing:
        raise IncompleteIndex(
            f"the index has no manifest for {', '.join(missing)} (it has {', '.join(sorted(by_platform))})")
    for platform in platforms:
        digest = by_platform[platform]
        manifest = json.loads(registry.get(f"{platform} manifest", f"manifests/{digest}", digest, MANIFEST_TYPES))
        config = manifest["config"]["digest"]
        registry.get(f"{platform} config", f"blobs/{config}", config)
        for layer in manifest["layers"]:
            registry.head(f"{platform} layer", f"blobs/{layer['digest']}", layer["digest"])
        registry.log.append(f"{platform}: {len(manifest['layers'])} layers, "
                            f"{sum(layer['size'] for layer in manifest['layers']) / 1e6:.0f} MB compressed")
    return registry.log


def how_to_fix(reference: str) -> str:
    match = REFERENCE.fullmatch(reference)
    owner, _, name = (match["repository"] if match else "OWNER/mlgate").partition("/")
    return (f"Make the package public, then re-run this job (nothing has moved yet): "
            f"https://github.com/{owner}?tab=packages -> {name} -> Package settings -> Danger Zone -> "
            f"Change visibility -> Public (an organisation must allow public packages: Settings -> Packages). "
            f"GHCR creates every new package private; users' runners pull the image with no login.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="REGISTRY/OWNER/NAME@sha256:HEX, the multi-arch index")
    parser.add_argument("--platform", action="append", help="OS/ARCH that must be pullable (repeatable)")
    parser.add_argument("--insecure-http", action="store_true", help="plain http (a loopback test registry)")
    args = parser.parse_args(argv)
    platforms = args.platform or ["linux/amd64", "linux/arm64"]
    try:
        log = check(args.reference, platforms, "http" if args.insecure_http else "https")
    except IncompleteIndex as exc:
        title, message = "The image lacks an architecture", (
            f"{exc}. Nothing has moved yet: re-run the `image` job for the missing architecture, then `index`, "
            f"so that {args.reference.partition('@')[0]}:X.Y.Z is one index over linux/amd64 and linux/arm64.")
    except (NotPublic, OSError, KeyError, ValueError) as exc:
        title, message = "The image is not public", f"{exc}. {how_to_fix(args.reference)}"
    else:
        print("\n".join(log))
        print(f"anonymous pull OK for {', '.join(platforms)}: {args.reference}")
        return 0
    escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::error title={title}::{escaped}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
