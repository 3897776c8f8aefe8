"""Google Cloud credentials for DVC's ``gs://`` remotes, from the ``gcp-credentials`` input.

The input holds a service-account key (the JSON file `gcloud iam service-accounts keys create`
writes, or that file base64-encoded). It is written to a private temporary file for the lifetime of
a ``with`` block and handed to DVC as ``GOOGLE_APPLICATION_CREDENTIALS``; google-auth then performs
the usual JWT-bearer login against the key's ``token_uri``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlgate.errors import MlgateError
from mlgate.workflow import MIN_MASK_LENGTH

_REQUIRED_FIELDS = ("client_email", "private_key", "token_uri")
_KEY_SHAPE = (
    'a service-account key is a JSON object like {"type": "service_account", "project_id": "...", '
    '"private_key_id": "...", "private_key": "-----BEGIN PRIVATE KEY-----\\n...", '
    '"client_email": "NAME@PROJECT.iam.gserviceaccount.com", "token_uri": '
    '"https://oauth2.googleapis.com/token", ...} (the file `gcloud iam service-accounts keys create` '
    "writes), given raw or base64-encoded"
)
_HINT = (
    "Store the whole key file as a repository secret and pass it:\n"
    "  with:\n"
    "    gcp-credentials: ${{ secrets.GCP_SA_KEY }}"
)


class InvalidCredentials(MlgateError):
    """Raised when ``gcp-credentials`` is not a usable service-account key; never quotes the key."""

    title = "Invalid gcp-credentials"


@contextmanager
def service_account_credentials(json_text: str, *, mask: Callable[[str], None]) -> Iterator[dict[str, str]]:
    """Yield ``{"GOOGLE_APPLICATION_CREDENTIALS": path}`` for a private copy of the key.

    ``mask`` is called with each of :func:`secret_values` before anything else can print them.
    The file is created 0600 under ``RUNNER_TEMP`` when that folder exists (a container action may
    be handed a host path that does not), else under the system temp folder, and is removed when
    the block exits, also on error.
    """
    key = _parse_key(json_text)
    for secret in secret_values(json_text):
        mask(secret)
    fd, name = tempfile.mkstemp(prefix="gcp-credentials-", suffix=".json", dir=_scratch_dir())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(key, handle)
        yield {"GOOGLE_APPLICATION_CREDENTIALS": name}
    finally:
        Path(name).unlink(missing_ok=True)


def _parse_key(text: str) -> dict[str, Any]:
    stripped = text.strip()
    if not stripped:
        raise InvalidCredentials("gcp-credentials is empty; " + _KEY_SHAPE + ".", hint=_HINT)
    if not stripped.startswith(("{", "[")):
        try:
            joined = "".join(stripped.split())  # `base64` wraps at 76 columns unless told -w0
            stripped = base64.b64decode(joined, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidCredentials(
                "gcp-credentials is neither JSON nor base64-encoded JSON; " + _KEY_SHAPE + ".", hint=_HINT
            ) from None  # the decoder's message could quote the secret
    try:
        key = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise InvalidCredentials(
            f"gcp-credentials is not valid JSON (line {exc.lineno}, column {exc.colno}); {_KEY_SHAPE}.",
            hint=_HINT,
        ) from None
    if not isinstance(key, dict):
        raise InvalidCredentials("gcp-credentials is JSON but not an object; " + _KEY_SHAPE + ".", hint=_HINT)
    if key.get("type") != "service_account":
        kind = key.get("type")
        shown = f"type {kind!r}" if isinstance(kind, str) and len(kind) < 40 else "no type"
        raise InvalidCredentials(
            f"gcp-credentials has {shown}, not 'service_account' (user or workload-identity "
            "credentials are not supported); " + _KEY_SHAPE + ".",
            hint=_HINT,
        )
    missing = [field for field in _REQUIRED_FIELDS if not isinstance(key.get(field), str) or not key[field]]
    if missing:
        raise InvalidCredentials(
            f"gcp-credentials lacks {', '.join(missing)}; " + _KEY_SHAPE + ".",
            hint=_HINT,
        )
    if "PRIVATE KEY-----" not in key["private_key"]:
        raise InvalidCredentials(
            "gcp-credentials has a private_key that is not a PEM key; " + _KEY_SHAPE + ".", hint=_HINT
        )
    return key


def secret_values(text: str) -> list[str]:
    """What to mask of a ``gcp-credentials`` value: only secrets, each a single line of 4+ characters.

    - the value as given, when it is one line (minified JSON or base64); a wrapped base64 value line
      by line (every line of it decodes to part of the key);
    - the key's ``private_key``, line by line without the ``-----BEGIN/END`` lines: the runner masks
      within a log line, so this also covers the key's ``\\n``-joined form inside the JSON text;
    - ``private_key_id`` and ``client_email``.

    Never a line of the pretty-printed JSON itself: masking ``{`` or ``}`` would hide every brace in
    the rest of the log. Never raises: a value that is not a usable key is masked line by line (still
    never a line under 4 characters), and refused later, where it is used.
    """
    stripped = text.strip()
    values: list[str] = []
    if "\n" not in stripped:
        values.append(stripped)
    elif not stripped.startswith(("{", "[")):
        values += stripped.splitlines()  # base64 wrapped at 76 columns, as `base64` writes it
    try:
        values += _secret_parts(_parse_key(text))
    except InvalidCredentials:
        if "\n" in stripped and stripped.startswith(("{", "[")):
            values += stripped.splitlines()  # where its secrets are is unknown: mask every line
    kept = (value.strip() for value in values)
    return list(dict.fromkeys(value for value in kept if len(value) >= MIN_MASK_LENGTH))


def _secret_parts(key: dict[str, Any]) -> list[str]:
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
