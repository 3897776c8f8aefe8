"""Pytest plugin: keyless Google login (Workload Identity Federation) on loopback, for the real google-auth.

What ``google-github-actions/auth`` sets up, each part a stand-in speaking the real protocol on
``127.0.0.1`` and checking what it receives, so that a skipped or altered step fails:

* the Actions OIDC endpoint (``ACTIONS_ID_TOKEN_REQUEST_URL``): answers ``{"value": JWT}`` only to
  ``Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` with an ``audience`` parameter; the JWT
  is RS256-signed, like GitHub's;
* Google STS (``token_url``): the token-exchange grant; checks the workload identity provider
  (``audience``), the token types, and that ``subject_token`` is a JWT the OIDC endpoint signed,
  for the audience it was asked for;
* IAM credentials ``generateAccessToken`` (``service_account_impersonation_url``): only with a
  bearer token STS issued, for the configured service account;
* Cloud Resource Manager ``GET /v1/projects/NUMBER``, which google-auth calls at a fixed
  ``https://cloudresourcemanager.googleapis.com`` URL (not in the credentials file) to find the
  project: served through an HTTPS proxy on loopback (``HTTPS_PROXY``) that terminates TLS with a
  test CA (``REQUESTS_CA_BUNDLE``) and refuses, and logs, a tunnel to any other host.

The storage emulator (:mod:`tests.fakes.gcs`) then accepts the access tokens IAM issued (and STS's,
for a file without impersonation). Every request of every stand-in lands in the emulator's
:class:`~tests.fakes.gcs.RequestLog`, in order.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.gcs import GcsEmulator, RequestLog

PROJECT_NUMBER = "123456789"
PROVIDER = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/github/providers/mlgate"
AUDIENCE = f"//iam.googleapis.com/{PROVIDER}"
OIDC_AUDIENCE = f"https://iam.googleapis.com/{PROVIDER}"  # google-github-actions/auth's default
SERVICE_ACCOUNT = "mlgate-ci@mlgate-test.iam.gserviceaccount.com"
ISSUER = "https://token.actions.githubusercontent.com"
CRM_HOST = "cloudresourcemanager.googleapis.com"
_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_OIDC_PATH = "/_apis/distributedtask/hubs/Actions/plans/7f3c/jobs/9a1e/idtoken"


@dataclass
class WorkloadIdentity:
    """State of the stand-ins: what each issued and refused, the environment of a job with
    ``id-token: write``, and the credentials file google-github-actions/auth would write."""

    request_token: str
    oidc_url: str = ""
    sts_url: str = ""
    iam_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    log: RequestLog = field(default_factory=RequestLog)
    oidc_tokens: list[str] = field(default_factory=list)
    sts_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    direct: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def credentials(self, *, impersonate: bool = True) -> dict[str, Any]:
        """The ``external_account`` file, as google-github-actions/auth@v2 writes it; without
        ``impersonate`` the federated token itself reaches the bucket (direct federation)."""
        self.direct = not impersonate
        info: dict[str, Any] = {
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": _JWT_TYPE,
            "token_url": self.sts_url,
            "credential_source": {
                "url": f"{self.oidc_url}&audience={OIDC_AUDIENCE}",
                "headers": {"Authorization": f"Bearer {self.request_token}"},
                "format": {"type": "json", "subject_token_field_name": "value"},
            },
        }
        if impersonate:
            info["service_account_impersonation_url"] = (
                f"{self.iam_url}/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken"
            )
        return info

    def minted(self) -> list[str]:
        """Every token the stand-ins handed out (none of them may appear in a log)."""
        with self.lock:
            return [*self.oidc_tokens, *self.sts_tokens, *self.access_tokens]

    def storage_tokens(self) -> set[str]:
        with self.lock:
            return {*self.access_tokens, *(self.sts_tokens if self.direct else ())}

    def refuse(self, why: str) -> None:
        with self.lock:
            self.rejected.append(why)


@cache
def _oidc_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Handler(BaseHTTPRequestHandler):
    wif: WorkloadIdentity
    service: str

    def do_GET(self) -> None:
        self.wif.log.add(self.service, "GET", self.path)
        if self.service != "oidc":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        query = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Authorization") != f"Bearer {self.wif.request_token}":
            self.wif.refuse("oidc: bearer is not ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            self._reply(HTTPStatus.UNAUTHORIZED, {"message": "Bad credentials"})
            return
        if urlsplit(self.path).path != _OIDC_PATH or query.get("api-version") != ["2.0"] or "audience" not in query:
            self.wif.refuse(f"oidc: unexpected request {urlsplit(self.path).path} {sorted(query)}")
            self._reply(HTTPStatus.BAD_REQUEST, {"message": "Bad request"})
            return
        now = int(time.time())
        claims = {
            "iss": ISSUER, "aud": query["audience"][0], "sub": "repo:octo/mlgate-test:pull_request",
            "repository": "octo/mlgate-test", "iat": now, "nbf": now, "exp": now + 300, "jti": secrets.token_hex(8),
        }
        token = jwt.encode(claims, _oidc_key(), algorithm="RS256", headers={"kid": "stand-in"})
        with self.wif.lock:
            self.wif.oidc_tokens.append(token)
        self._reply(HTTPStatus.OK, {"count": 1, "value": token})

    def do_POST(self) -> None:
        self.wif.log.add(self.service, "POST", self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.service == "sts":
            self._exchange(parse_qs(body))
        elif self.service == "iam":
            self._generate_access_token(body)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def _exchange(self, form: dict[str, list[str]]) -> None:
        def field_(name: str) -> str:
            return form.get(name, [""])[0]

        expected = {"grant_type": _TOKEN_EXCHANGE, "audience": AUDIENCE, "subject_token_type": _JWT_TYPE,
                    "requested_token_type": _ACCESS_TOKEN_TYPE}
        wrong = [name for name, value in expected.items() if field_(name) != value]
        if urlsplit(self.path).path != "/v1/token" or wrong:
            self.wif.refuse(f"sts: wrong {wrong or self.path}")
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "error_description": f"bad {wrong}"})
            return
        subject = field_("subject_token")
        try:
            jwt.decode(subject, _oidc_key().public_key(), algorithms=["RS256"], audience=OIDC_AUDIENCE, issuer=ISSUER)
        except jwt.InvalidTokenError as exc:
            self.wif.refuse(f"sts: subject_token {exc}")
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT."})
            return
        with self.wif.lock:
            known = subject in self.wif.oidc_tokens
        if not known or not field_("scope"):
            self.wif.refuse("sts: subject_token not issued by the OIDC endpoint, or no scope")
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Unknown token."})
            return
        token = "ya29.d.sts-" + secrets.token_urlsafe(24)
        with self.wif.lock:
            self.wif.sts_tokens.append(token)
        self._reply(HTTPStatus.OK, {"access_token": token, "issued_token_type": _ACCESS_TOKEN_TYPE,
                                    "token_type": "Bearer", "expires_in": 3599})

    def _generate_access_token(self, body: str) -> None:
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.wif.lock:
            known = bearer in self.wif.sts_tokens
        path = urlsplit(self.path).path
        if path != f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken" or not known:
            self.wif.refuse(f"iam: {'unknown bearer' if not known else 'wrong path ' + path}")
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
            return
        request = json.loads(body or "{}")
        if not isinstance(request.get("scope"), list) or not request["scope"]:
            self.wif.refuse("iam: no scope")
            self._reply(HTTPStatus.BAD_REQUEST, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})
            return
        token = "ya29.c.iam-" + secrets.token_urlsafe(24)
        with self.wif.lock:
            self.wif.access_tokens.append(token)
        expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
        self._reply(HTTPStatus.OK, {"accessToken": token, "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ResourceManagerHandler(_Handler):
    """Cloud Resource Manager behind the proxy's TLS: the project of an access token IAM issued."""

    service = "crm"

    def do_GET(self) -> None:
        self.wif.log.add("crm", "GET", self.path)
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.wif.storage_tokens():
            self.wif.refuse("crm: unknown bearer")
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
            return
        if urlsplit(self.path).path != f"/v1/projects/{PROJECT_NUMBER}":
            self._reply(HTTPStatus.NOT_FOUND, {"error": {"code": 404, "status": "NOT_FOUND"}})
            return
        self._reply(HTTPStatus.OK, {"projectNumber": PROJECT_NUMBER, "projectId": "mlgate-test",
                                    "lifecycleState": "ACTIVE"})


class _ProxyHandler(BaseHTTPRequestHandler):
    wif: WorkloadIdentity
    tls: ssl.SSLContext

    def do_CONNECT(self) -> None:
        self.wif.log.add("proxy", "CONNECT", "/" + self.path)
        self.close_connection = True
        if self.path != f"{CRM_HOST}:443":
            self.wif.refuse(f"proxy: tunnel to {self.path}")
            self.send_error(HTTPStatus.FORBIDDEN)
            return
        self.send_response(HTTPStatus.OK, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tunnel = self.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.wif.refuse(f"proxy: TLS {exc}")
            return
        handler = type("CrmHandler", (_ResourceManagerHandler,), {"wif": self.wif})
        try:
            handler(tunnel, self.client_address, self.server)
        finally:
            tunnel.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _test_ca(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA (written to ``folder/ca.pem`` for ``REQUESTS_CA_BUNDLE``) and a server context with its
    certificate for :data:`CRM_HOST`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlgate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CRM_HOST)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(CRM_HOST)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, chain = folder / "ca.pem", folder / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + leaf.public_bytes(serialization.Encoding.PEM)
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return ca_file, context


@pytest.fixture
def workload_identity(
    gcs_emulator: GcsEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkloadIdentity]:
    """The four stand-ins, fresh for each test, wired to ``gcs_emulator``.

    ``.env`` is a job's environment with ``permissions: id-token: write`` (the OIDC request URL and
    token) plus what routes google-auth to the stand-ins and the emulator; it holds no credentials:
    pass ``.credentials()`` as ``gcp-credentials`` or as the file ``GOOGLE_APPLICATION_CREDENTIALS`` names.
    """
    wif = WorkloadIdentity(request_token="ghs-oidc-request-" + secrets.token_urlsafe(24), log=gcs_emulator.request_log)
    gcs_emulator.trusted.append(wif.storage_tokens)
    ca_file, tls = _test_ca(tmp_path_factory.mktemp("test-ca"))
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), type(f"{name}Handler", (_Handler,), {"wif": wif, "service": name}))
        for name in ("oidc", "sts", "iam")
    ]
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), type("ProxyHandler", (_ProxyHandler,), {"wif": wif, "tls": tls}))
    servers.append(proxy)
    oidc, sts, iam = (f"http://127.0.0.1:{server.server_address[1]}" for server in servers[:3])
    wif.oidc_url, wif.sts_url, wif.iam_url = f"{oidc}{_OIDC_PATH}?api-version=2.0", f"{sts}/v1/token", iam
    wif.env = {
        **gcs_emulator.emulator_env,
        "ACTIONS_ID_TOKEN_REQUEST_URL": wif.oidc_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": wif.request_token,
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.server_address[1]}",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "REQUESTS_CA_BUNDLE": str(ca_file),
    }
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield wif
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
