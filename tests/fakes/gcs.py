"""Pytest plugin: Google Cloud Storage on loopback, with a genuine service-account login.

Three real protocols, all on ``127.0.0.1`` with random ports:

* ``gcp-storage-emulator``'s JSON API, started in-process, that (like a private bucket) answers
  401 to any request not carrying a bearer token the token endpoint issued;
* a tiny OAuth 2.0 token endpoint that accepts the JWT-bearer grant google-auth sends for a
  service account, verifying the assertion's RS256 signature with the key's public half;
* a freshly generated service-account key whose ``token_uri`` points at that endpoint.

``.dvc/config`` stays production-shaped (``gs://bucket/path``); the emulator is reached through
environment variables only (``gcs_emulator.env``), as docs/STAND-INS.md explains.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcp_storage_emulator.handlers import buckets
from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage

_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_CLIENT_EMAIL = "mlgate-ci@mlgate-test.iam.gserviceaccount.com"


@dataclass
class Grant:
    """One token the endpoint issued, with the verified claims of the assertion that asked for it."""

    access_token: str
    claims: dict[str, Any]


@dataclass
class TokenEndpoint:
    """OAuth state: the public key it trusts and every grant it made."""

    public_pem: bytes
    client_email: str
    url: str = ""
    grants: list[Grant] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issued(self) -> set[str]:
        with self.lock:
            return {grant.access_token for grant in self.grants}


class _TokenHandler(BaseHTTPRequestHandler):
    endpoint: TokenEndpoint  # set on the per-server subclass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        grant_type = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant_type != _JWT_BEARER:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"})
            return
        try:
            claims = jwt.decode(
                assertion,
                self.endpoint.public_pem,
                algorithms=["RS256"],
                # google-auth addresses the assertion to Google's endpoint whatever token_uri says.
                audience=_GOOGLE_TOKEN_AUDIENCE,
                issuer=self.endpoint.client_email,
            )
        except jwt.InvalidTokenError as exc:
            with self.endpoint.lock:
                self.endpoint.rejected.append(str(exc))
            self._reply(
                HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
            return
        grant = Grant(access_token="ya29.fake-" + secrets.token_urlsafe(16), claims=claims)
        with self.endpoint.lock:
            self.endpoint.grants.append(grant)
        self._reply(HTTPStatus.OK, {"access_token": grant.access_token, "expires_in": 3599, "token_type": "Bearer"})

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class RequestLog:
    """Requests to the stand-ins of one test, in the order they arrived: ``(service, method, path)``,
    the path without its query (the storage emulator's and the workload-identity stand-ins')."""

    entries: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, service: str, method: str, target: str) -> None:
        with self.lock:
            self.entries.append((service, method, urlsplit(target).path))

    def lines(self) -> list[str]:
        with self.lock:
            return [f"{service} {method} {path}" for service, method, path in self.entries]


class _AuthenticatedStorageHandler(RequestHandler):
    """The emulator's handler behind a bearer-token check, like a private bucket.

    ``gcp-storage-emulator`` itself accepts any request, with or without a token; this check is what
    makes a missing or unknown token fail. Tokens are those the service-account token endpoint issued
    and those of any issuer in ``trusted`` (the workload-identity stand-ins add theirs)."""

    endpoint: TokenEndpoint
    seen_tokens: set[str]
    unauthorized: list[str]
    trusted: list[Callable[[], set[str]]]
    request_log: RequestLog

    def _authorized(self) -> bool:
        self.request_log.add("gcs", self.command, self.path)
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        known = token in self.endpoint.issued() or any(token in issued() for issued in self.trusted)
        if header.startswith("Bearer ") and known:
            self.seen_tokens.add(token)
            return True
        self.unauthorized.append(f"{self.command} {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "error": {
                    "code": 401,
                    "message": "Anonymous caller does not have storage.objects.list access to the "
                    "Google Cloud Storage bucket. Permission 'storage.objects.list' denied on resource "
                    "(or it may not exist).",
                    "errors": [{"domain": "global", "reason": "required", "message": "Login Required"}],
                }
            }
        ).encode()
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def do_GET(self) -> None:
        if self._authorized():
            super().do_GET()

    def do_POST(self) -> None:
        if self._authorized():
            super().do_POST()

    def do_PUT(self) -> None:
        if self._authorized():
            super().do_PUT()

    def do_PATCH(self) -> None:
        if self._authorized():
            super().do_PATCH()

    def do_DELETE(self) -> None:
        if self._authorized():
            super().do_DELETE()


@dataclass
class GcsEmulator:
    """Handle on the running stand-in: environment for DVC, the key, and the bucket contents."""

    env: dict[str, str]
    emulator_env: dict[str, str]
    service_account_json: str
    token_endpoint: TokenEndpoint
    storage: Storage
    seen_tokens: set[str]
    unauthorized: list[str]
    trusted: list[Callable[[], set[str]]]
    """Issuers of further tokens the storage accepts: append a callable returning their tokens."""
    request_log: RequestLog

    def create_bucket(self, name: str) -> str:
        """Create ``name`` and return its ``gs://`` URL."""
        buckets.create_bucket(name, self.storage)
        return f"gs://{name}"

    def object_names(self, bucket: str) -> list[str]:
        objects, _prefixes = self.storage.get_file_list(bucket)
        return sorted(obj["name"] for obj in objects)

    def delete_object(self, bucket: str, name: str) -> None:
        self.storage.delete_file(bucket, name)

    @property
    def logins(self) -> list[Grant]:
        """Grants made so far: one per genuine JWT-bearer exchange."""
        with self.token_endpoint.lock:
            return list(self.token_endpoint.grants)


@cache
def _rsa_key() -> rsa.RSAPrivateKey:
    # Generated once per test session: 2048-bit generation costs ~0.1 s.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_key(token_uri: str, private_key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
    """A service-account key shaped like the file ``gcloud iam service-accounts keys create`` writes."""
    key = private_key or _rsa_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "mlgate-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": _CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/mlgate-ci",
        "universe_domain": "googleapis.com",
    }


class _MemoryStorage(Storage):
    """The emulator's storage, kept in memory only. Upstream rewrites its whole metadata file (every
    object, as indented JSON) after each write, so that a disk-backed store can be reloaded: O(n) per
    upload, minutes for a few thousand objects. A memory store is never reloaded, so that file is
    skipped; what the API answers is unchanged."""

    def __init__(self) -> None:
        super().__init__(use_memory_fs=True)

    def _write_config_to_file(self) -> None:
        pass


class _Backlogged(HTTPServer):
    request_queue_size = 256


def _serve(server: HTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@contextmanager
def running_emulator(key_dir: Path) -> Iterator[GcsEmulator]:
    """Storage emulator + token endpoint + service-account key (written into ``key_dir``), running for
    the ``with`` block; what the :func:`gcs_emulator` fixture hands each test, and benchmarks use."""
    public_pem = (
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    endpoint = TokenEndpoint(public_pem=public_pem, client_email=_CLIENT_EMAIL)
    token_server = ThreadingHTTPServer(("127.0.0.1", 0), type("TokenHandler", (_TokenHandler,), {"endpoint": endpoint}))
    endpoint.url = f"http://127.0.0.1:{token_server.server_address[1]}/token"

    storage = _MemoryStorage()
    seen: set[str] = set()
    unauthorized: list[str] = []
    trusted: list[Callable[[], set[str]]] = []
    request_log = RequestLog()
    handler = type(
        "StorageHandler",
        (_AuthenticatedStorageHandler,),
        {"endpoint": endpoint, "seen_tokens": seen, "unauthorized": unauthorized, "trusted": trusted,
         "request_log": request_log},
    )
    # Single-threaded like the emulator's own server: its storage is not thread-safe. The listen backlog is
    # that of a real front end, so clients making many requests at once (DVC's `jobs`) queue, not reset.
    storage_server = _Backlogged(("127.0.0.1", 0), partial(handler, storage))
    threads = [_serve(token_server), _serve(storage_server)]
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{storage_server.server_address[1]}",
        # Without this gcsfs probes the bucket type over gRPC/TLS and waits 60 s per operation.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        # Keep google-auth away from the cloud metadata address.
        "NO_GCE_CHECK": "true",
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
    }
    key_json = json.dumps(service_account_key(endpoint.url), indent=2)
    key_file = key_dir / "service-account.json"
    key_file.write_text(key_json)
    key_file.chmod(0o600)
    try:
        yield GcsEmulator(
            env={**env, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)},
            emulator_env=env,
            service_account_json=key_json,
            token_endpoint=endpoint,
            storage=storage,
            seen_tokens=seen,
            unauthorized=unauthorized,
            trusted=trusted,
            request_log=request_log,
        )
    finally:
        for server in (token_server, storage_server):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


@pytest.fixture
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """Storage emulator + token endpoint + service-account key, fresh for each test.

    ``.env`` is everything DVC needs, ``GOOGLE_APPLICATION_CREDENTIALS`` included (a key file in a
    temp folder); ``.emulator_env`` is the same without it, for code that derives the credentials
    from ``.service_account_json`` itself (``mlgate.gcp.service_account_credentials``).
    """
    with running_emulator(tmp_path_factory.mktemp("gcs-key")) as emulator:
        yield emulator
