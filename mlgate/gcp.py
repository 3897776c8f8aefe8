"""Google Cloud credentials for DVC's ``gs://`` remotes: a service-account key or keyless
Workload Identity Federation.

Two sources, the first that is set:

* the ``gcp-credentials`` input: a service-account key (the JSON file `gcloud iam service-accounts
  keys create` writes) or an ``external_account`` file, raw or base64-encoded;
* ``GOOGLE_APPLICATION_CREDENTIALS`` exported by an earlier ``google-github-actions/auth`` step: the
  ``external_account`` file it writes into the workspace (:func:`locate_in_workspace` finds it from
  inside the container when the runner passed the host's path).

Either is validated, its secrets masked, and a private copy of what was validated is handed to DVC
as ``GOOGLE_APPLICATION_CREDENTIALS`` for the lifetime of a ``with`` block; google-auth then logs in
(JWT bearer for a key; OIDC token -> STS exchange -> optional impersonation for federation). The
tokens federation mints live in DVC's google-auth and never reach mlgate's output.

An ``external_account`` file tells google-auth where to send the job's OIDC token, so one that is
not exactly what ``google-github-actions/auth`` writes is refused: only a ``url`` credential source
(no file, executable or AWS source), that URL the runner's own ``ACTIONS_ID_TOKEN_REQUEST_URL``,
the token exchange at Google's STS and impersonation at Google's IAM credentials API (or loopback,
which never leaves the machine: local stand-ins and emulators).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mlgate.errors import MlgateError
from mlgate.workflow import MIN_MASK_LENGTH

INPUT = "gcp-credentials"
AMBIENT = "GOOGLE_APPLICATION_CREDENTIALS"

_REQUIRED_FIELDS = ("client_email", "private_key", "token_uri")
_KEY_SHAPE = (
    'a service-account key is a JSON object like {"type": "service_account", "project_id": "...", '
    '"private_key_id": "...", "private_key": "-----BEGIN PRIVATE KEY-----\\n...", '
    '"client_email": "NAME@PROJECT.iam.gserviceaccount.com", "token_uri": '
    '"https://oauth2.googleapis.com/token", ...} (the file `gcloud iam service-accounts keys create` '
    'writes), given raw or base64-encoded; a keyless one is the {"type": "external_account", ...} file '
    "google-github-actions/auth writes"
)
_HINT = (
    "Store the whole key file as a repository secret and pass it:\n"
    "  with:\n"
    "    gcp-credentials: ${{ secrets.GCP_SA_KEY }}\n"
    "or, without a key, authenticate first with google-github-actions/auth (workload_identity_provider, "
    "service_account; `permissions: id-token: write`) and leave gcp-credentials empty."
)
_AMBIENT_HINT = (
    "GOOGLE_APPLICATION_CREDENTIALS comes from an earlier step. Use google-github-actions/auth@v2 with "
    "workload_identity_provider and service_account after actions/checkout (it writes the file into the "
    "workspace, where this container action can read it), and grant `permissions: id-token: write`."
)
_MAX_FILE_BYTES = 64 * 1024

_EXTERNAL_FIELDS = frozenset({
    "type", "audience", "subject_token_type", "token_url", "credential_source",
    "service_account_impersonation_url", "service_account_impersonation", "universe_domain", "quota_project_id",
})
_AUDIENCE = re.compile(
    r"//iam\.googleapis\.com/projects/[0-9]{1,20}/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}"
    r"/providers/[a-z0-9-]{4,32}"
)
_SUBJECT_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
_STS = ("sts.googleapis.com", re.compile(r"/v1/token"))
_IAM = (
    "iamcredentials.googleapis.com",
    re.compile(r"/v1/projects/-/serviceAccounts/[A-Za-z0-9._%+-]{1,100}@[a-z0-9.-]{1,100}\.gserviceaccount\.com"
               r":generateAccessToken"),
)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_BEARER = re.compile(r"Bearer ([A-Za-z0-9._~+/=-]{1,8192})")
_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


class InvalidCredentials(MlgateError):
    """Raised when ``gcp-credentials`` (or the file ``GOOGLE_APPLICATION_CREDENTIALS`` names) is not a
    usable service-account key or workload-identity file; never quotes the value."""

    title = "Invalid gcp-credentials"


@contextmanager
def google_credentials(
    text: str, *, mask: Callable[[str], None], source: str = INPUT, id_token_request_url: str | None = None
) -> Iterator[dict[str, str]]:
    """Yield ``{"GOOGLE_APPLICATION_CREDENTIALS": path}`` for a private copy of the validated credentials.

    ``text`` is the value of ``source`` (the input's value, or the content of the file the
    environment names); ``id_token_request_url`` is the runner's ``ACTIONS_ID_TOKEN_REQUEST_URL``,
    the only place an ``external_account`` file may fetch the job's OIDC token from. ``mask`` is
    called with each of :func:`secret_values` before anything is parsed. The file is created 0600
    under ``RUNNER_TEMP`` when that folder exists (a container action may be handed a host path that
    does not), else under the system temp folder, and is removed when the block exits, also on error.
    """
    for secret in secret_values(text):
        mask(secret)
    info = parse_credentials(text, source=source, id_token_request_url=id_token_request_url)
    fd, name = tempfile.mkstemp(prefix="gcp-credentials-", suffix=".json", dir=_scratch_dir())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
        yield {AMBIENT: name}
    finally:
        Path(name).unlink(missing_ok=True)


def locate_in_workspace(path: str, workspace: Path) -> Path | None:
    """The file ``path`` (``GOOGLE_APPLICATION_CREDENTIALS``) names, as this process can open it.

    ``path`` as given when it is a file (the runner translates the host's workspace prefix to
    ``/github/workspace`` in the variables it passes to a container; outside a container the host
    path is right). Otherwise ``path`` is a host path, e.g. ``/home/runner/work/repo/repo/gha-creds-1.json``,
    and the workspace ``/github/workspace`` is the host's checkout mounted: the longest tail of
    ``path`` that is a file under ``workspace`` is the same file. None when no tail is.
    """
    given = Path(path) if Path(path).is_absolute() else workspace / path
    if given.is_file():
        return given
    parts = given.parts[1:]
    for start in range(len(parts)):
        candidate = workspace.joinpath(*parts[start:])
        if candidate.is_file():
            return candidate
    return None


def read_credentials_file(path: Path) -> str:
    """The text of the credentials file at ``path``, which an earlier step wrote; at most 64 KiB."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidCredentials(
            f"{AMBIENT} names {path}, which cannot be read ({exc.strerror or type(exc).__name__}).", hint=_AMBIENT_HINT
        ) from None
    if len(data) > _MAX_FILE_BYTES:
        raise InvalidCredentials(
            f"{AMBIENT} names {path}, which is over {_MAX_FILE_BYTES // 1024} KiB: not a credentials file.",
            hint=_AMBIENT_HINT,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCredentials(
            f"{AMBIENT} names {path}, which is not UTF-8 text: not a credentials file.", hint=_AMBIENT_HINT
        ) from None


def credentials_type(text: str) -> str | None:
    """The ``type`` of the credentials in ``text``; None when it is not a JSON object with one."""
    try:
        kind = _load(text, INPUT, _HINT).get("type")
    except InvalidCredentials:
        return None
    return kind if isinstance(kind, str) else None


def parse_credentials(text: str, *, source: str = INPUT, id_token_request_url: str | None = None) -> dict[str, Any]:
    """The credentials in ``text`` (the value of ``source``) as google-auth will read them: a checked
    service-account key, or an ``external_account`` file holding only the fields that
    google-github-actions/auth writes, each checked. Raises :class:`InvalidCredentials`."""
    hint = _HINT if source == INPUT else _AMBIENT_HINT
    info = _load(text, source, hint)
    kind = info.get("type")
    if kind == "service_account":
        return _check_service_account(info, source, hint)
    if kind == "external_account":
        return _check_external_account(info, source, hint, id_token_request_url)
    shown = f"type {kind!r}" if isinstance(kind, str) and len(kind) < 40 else "no type"
    raise InvalidCredentials(
        f"{source} has {shown}, not 'service_account' or 'external_account' (user credentials and other "
        f"kinds are not supported); {_KEY_SHAPE}.",
        hint=hint,
    )


def _load(text: str, source: str, hint: str) -> dict[str, Any]:
    stripped = text.strip()
    if not stripped:
        raise InvalidCredentials(f"{source} is empty; {_KEY_SHAPE}.", hint=hint)
    if not stripped.startswith(("{", "[")):
        try:
            joined = "".join(stripped.split())  # `base64` wraps at 76 columns unless told -w0
            stripped = base64.b64decode(joined, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidCredentials(
                f"{source} is neither JSON nor base64-encoded JSON; {_KEY_SHAPE}.", hint=hint
            ) from None  # the decoder's message could quote the secret
    try:
        info = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise InvalidCredentials(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}); {_KEY_SHAPE}.", hint=hint
        ) from None
    if not isinstance(info, dict):
        raise InvalidCredentials(f"{source} is JSON but not an object; {_KEY_SHAPE}.", hint=hint)
    return info


def _check_service_account(key: dict[str, Any], source: str, hint: str) -> dict[str, Any]:
    missing = [field for field in _REQUIRED_FIELDS if not isinstance(key.get(field), str) or not key[field]]
    if missing:
        raise InvalidCredentials(f"{source} lacks {', '.join(missing)}; {_KEY_SHAPE}.", hint=hint)
    if "PRIVATE KEY-----" not in key["private_key"]:
        raise InvalidCredentials(f"{source} has a private_key that is not a PEM key; {_KEY_SHAPE}.", hint=hint)
    return key


def _check_external_account(
    info: dict[str, Any], source: str, hint: str, id_token_request_url: str | None
) -> dict[str, Any]:
    def refuse(what: str) -> InvalidCredentials:
        return InvalidCredentials(
            f"{source} is a workload-identity (external_account) file, but {what}. mlgate accepts only the file "
            "google-github-actions/auth writes: the job's OIDC token from ACTIONS_ID_TOKEN_REQUEST_URL, exchanged "
            "at https://sts.googleapis.com/v1/token, optionally for a service account's token at "
            "https://iamcredentials.googleapis.com.",
            hint=hint,
        )

    unknown = sorted(set(info) - _EXTERNAL_FIELDS)
    if unknown:
        named = [name for name in unknown if re.fullmatch(r"[A-Za-z0-9_]{1,40}", name)]
        raise refuse(f"it has fields mlgate does not accept ({', '.join(named) or 'with unusual names'})")
    audience = info.get("audience")
    if not isinstance(audience, str) or not _AUDIENCE.fullmatch(audience):
        raise refuse("its audience is not a workload identity provider "
                     "(//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/ID)")
    if info.get("subject_token_type") not in _SUBJECT_TOKEN_TYPES:
        raise refuse("its subject_token_type is not an OIDC token (urn:ietf:params:oauth:token-type:jwt)")
    if not _is_endpoint(info.get("token_url"), *_STS):
        raise refuse("its token_url is not Google's STS")
    impersonation = info.get("service_account_impersonation_url")
    if impersonation is not None and not _is_endpoint(impersonation, *_IAM):
        raise refuse("its service_account_impersonation_url is not Google's IAM credentials "
                     "generateAccessToken for a service account")
    options = info.get("service_account_impersonation")
    if options is not None and not (
        isinstance(options, dict) and set(options) <= {"token_lifetime_seconds"}
        and isinstance(options.get("token_lifetime_seconds", 3600), int)
        and 600 <= options.get("token_lifetime_seconds", 3600) <= 43200
    ):
        raise refuse("its service_account_impersonation is not {\"token_lifetime_seconds\": 600..43200}")
    if info.get("universe_domain", "googleapis.com") != "googleapis.com":
        raise refuse("its universe_domain is not googleapis.com")
    project = info.get("quota_project_id")
    if project is not None and not (isinstance(project, str) and _PROJECT_ID.fullmatch(project)):
        raise refuse("its quota_project_id is not a project id")
    _check_credential_source(info.get("credential_source"), refuse, id_token_request_url)
    return info


def _check_credential_source(
    source: Any, refuse: Callable[[str], InvalidCredentials], id_token_request_url: str | None
) -> None:
    if not isinstance(source, dict) or set(source) - {"url", "headers", "format"}:
        raise refuse("its credential_source is not a URL (file, executable and AWS sources are refused)")
    if source.get("format") != {"type": "json", "subject_token_field_name": "value"}:
        raise refuse('its credential_source.format is not {"type": "json", "subject_token_field_name": "value"}')
    headers = source.get("headers")
    if not (isinstance(headers, dict) and list(headers) == ["Authorization"]
            and isinstance(headers["Authorization"], str) and _BEARER.fullmatch(headers["Authorization"])):
        raise refuse('its credential_source.headers are not {"Authorization": "Bearer <the runner\'s token>"}')
    if not id_token_request_url:
        raise refuse("ACTIONS_ID_TOKEN_REQUEST_URL is not set, so the job cannot ask GitHub for an OIDC token "
                     "(the job needs `permissions: id-token: write`)")
    if not _same_endpoint(source.get("url"), id_token_request_url):
        raise refuse("its credential_source.url is not this runner's ACTIONS_ID_TOKEN_REQUEST_URL")


def _is_endpoint(url: Any, host: str, path: re.Pattern[str]) -> bool:
    """``url`` is ``https://host/path`` with nothing else, or the same path on loopback (local stand-ins)."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username or parts.password or parts.query or parts.fragment or not path.fullmatch(parts.path):
        return False
    if parts.hostname == host:
        return parts.scheme == "https" and port in (None, 443)
    return parts.hostname in _LOOPBACK and parts.scheme in ("http", "https")


def _same_endpoint(url: Any, expected: str) -> bool:
    """``url`` is ``expected`` (scheme, host, port, path and every query parameter) plus at most an
    ``audience`` parameter, which google-github-actions/auth appends."""
    if not isinstance(url, str) or len(url) > 4096:
        return False
    try:
        got, want = urlsplit(url), urlsplit(expected)
        same_port = got.port == want.port
    except ValueError:
        return False
    if got.username or got.password or got.fragment or not same_port:
        return False
    if (got.scheme, got.hostname, got.path) != (want.scheme, want.hostname, want.path):
        return False
    got_query, want_query = parse_qsl(got.query, keep_blank_values=True), parse_qsl(want.query, keep_blank_values=True)
    extra = [pair for pair in got_query if pair not in want_query]
    return all(pair in got_query for pair in want_query) and all(name == "audience" for name, _ in extra) \
        and len(extra) <= 1


def secret_values(text: str) -> list[str]:
    """What to mask of a ``gcp-credentials`` value: only secrets, each a single line of 4+ characters.

    - the value as given, when it is one line (minified JSON or base64); a wrapped base64 value line
      by line (every line of it decodes to part of the key);
    - a key's ``private_key``, line by line without the ``-----BEGIN/END`` lines: the runner masks
      within a log line, so this also covers the key's ``\\n``-joined form inside the JSON text;
      ``private_key_id`` and ``client_email``;
    - a workload-identity file's request header values (the runner's bearer token), whole and
      without ``Bearer``; nothing else of it is secret.

    Never a line of the pretty-printed JSON itself: masking ``{`` or ``}`` would hide every brace in
    the rest of the log. Never raises: a value that is not usable is masked line by line (still
    never a line under 4 characters), and refused later, where it is used.
    """
    stripped = text.strip()
    values: list[str] = []
    if "\n" not in stripped:
        values.append(stripped)
    elif not stripped.startswith(("{", "[")):
        values += stripped.splitlines()  # base64 wrapped at 76 columns, as `base64` writes it
    parts = _secret_parts(text)
    if parts is not None:
        values += parts
    elif "\n" in stripped and stripped.startswith(("{", "[")):
        values += stripped.splitlines()  # where its secrets are is unknown: mask every line
    kept = (value.strip() for value in values)
    return list(dict.fromkeys(value for value in kept if len(value) >= MIN_MASK_LENGTH))


def _secret_parts(text: str) -> list[str] | None:
    """The secret fields of the credentials in ``text``; None when where they are is unknown."""
    try:
        info = _load(text, INPUT, _HINT)
    except InvalidCredentials:
        return None
    if info.get("type") == "external_account":
        source = info.get("credential_source")
        headers = source.get("headers", {}) if isinstance(source, dict) else None
        if not isinstance(headers, dict) or not all(isinstance(value, str) for value in headers.values()):
            return None
        return [part for value in headers.values() for part in (value, value.removeprefix("Bearer "))]
    try:
        key = _check_service_account(info, INPUT, _HINT) if info.get("type") == "service_account" else None
    except InvalidCredentials:
        return None
    if key is None:
        return None
    lines = [line.strip() for line in key["private_key"].splitlines()]
    parts = [line for line in lines if line and not line.startswith("-----")]
    for field in ("private_key_id", "client_email"):
        value = key.get(field)
        if isinstance(value, str) and value:
            parts.append(value)
    return parts


def _scratch_dir() -> str | None:
    runner_temp = os.environ.get("RUNNER_TEMP", "")
    return runner_temp if runner_temp and Path(runner_temp).is_dir() else None
