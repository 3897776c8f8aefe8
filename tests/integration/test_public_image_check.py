""".github/scripts/check_public_image.py against a registry on loopback that hands out tokens as ghcr.io does.

A client without credentials asks `/v2/...`, gets `401` with a `Bearer realm=...` challenge, fetches
an anonymous token from the realm and asks again. For a public package that token may pull; for a
private package (GHCR's default for a new package) the registry answers `403 DENIED`. The real
registry of the release rehearsal (tests/e2e/test_release_rehearsal.py) has no auth at all, so the
token dance and the private answer are exercised here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".github" / "scripts" / "check_public_image.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_public_image", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_public_image"] = module
    spec.loader.exec_module(module)
    return module


check = _load()


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class TokenRegistry:
    """Blobs and manifests by digest behind an anonymous-token challenge; ``public`` decides the answer."""

    def __init__(self, public: bool) -> None:
        self.public = public
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.authorizations: list[str] = []
        layer = b"layer bytes"
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        self.put(layer, "application/octet-stream")
        self.put(config, "application/vnd.oci.image.config.v1+json")
        manifests = []
        for arch in ("amd64", "arm64"):
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": _digest(config), "size": len(config)},
                "layers": [{"digest": _digest(layer), "size": len(layer)}], "arch": arch,
            }).encode()
            self.put(manifest, "application/vnd.oci.image.manifest.v1+json")
            manifests.append({"digest": _digest(manifest), "platform": {"os": "linux", "architecture": arch}})
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": manifests}).encode()
        self.index = self.put(index, "application/vnd.oci.image.index.v1+json")

    def put(self, body: bytes, media_type: str) -> str:
        self.objects[_digest(body)] = (body, media_type)
        return _digest(body)


@pytest.fixture
def serve() -> Iterator[Callable[[TokenRegistry], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(registry: TokenRegistry) -> str:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, media_type: str = "application/json",
                        headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                host = f"127.0.0.1:{self.server.server_address[1]}"
                if self.path.startswith("/token?"):
                    self._answer(200, json.dumps({"token": "anonymous"}).encode())
                    return
                auth = self.headers.get("Authorization", "")
                registry.authorizations.append(auth)
                if auth != "Bearer anonymous":
                    challenge = (f'Bearer realm="http://{host}/token",service="{host}",'
                                 f'scope="repository:owner/mlgate:pull"')
                    self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                 headers={"WWW-Authenticate": challenge})
                    return
                if not registry.public:
                    self._answer(403, b'{"errors":[{"code":"DENIED","message":"requested access to the resource '
                                      b'is denied"}]}')
                    return
                found = registry.objects.get(self.path.rsplit("/", 1)[-1])
                if found is None:
                    self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                    return
                self._answer(200, *found)

            do_HEAD = do_GET

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_public_package__anonymous_token_pulls_every_architecture(
    serve: Callable[[TokenRegistry], str], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = TokenRegistry(public=True)
    host = serve(registry)
    assert check.main([f"{host}/owner/mlgate@{registry.index}", "--insecure-http"]) == 0
    out = capsys.readouterr().out
    assert "linux/amd64: 1 layers" in out and "linux/arm64: 1 layers" in out
    assert f"anonymous pull OK for linux/amd64, linux/arm64: {host}/owner/mlgate@{registry.index}" in out
    assert set(registry.authorizations) == {"", "Bearer anonymous"}  # no credentials, only the anonymous token


def test_private_package__fails_saying_how_to_make_it_public(
    serve: Callable[[TokenRegistry], str], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = TokenRegistry(public=False)
    host = serve(registry)
    assert check.main([f"{host}/owner/mlgate@{registry.index}", "--insecure-http"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("::error title=The image is not public::")
    assert "HTTP 403" in err and "DENIED" in err
    assert "Change visibility -> Public" in err and "nothing has moved yet" in err


def test_content_that_does_not_match_its_digest_is_refused(
    serve: Callable[[TokenRegistry], str], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = TokenRegistry(public=True)
    body, media_type = registry.objects[registry.index]
    registry.objects[registry.index] = (body.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'), media_type)
    host = serve(registry)
    assert check.main([f"{host}/owner/mlgate@{registry.index}", "--insecure-http"]) == 1
    assert "the registry sent content whose digest is" in capsys.readouterr().err


def test_an_architecture_missing_from_the_index_is_named_with_its_fix(
    serve: Callable[[TokenRegistry], str], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = TokenRegistry(public=True)
    host = serve(registry)
    assert check.main([f"{host}/owner/mlgate@{registry.index}", "--insecure-http", "--platform", "linux/s390x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("::error title=The image lacks an architecture::the index has no manifest for linux/s390x")
    assert "re-run the `image` job" in err and "Change visibility" not in err
