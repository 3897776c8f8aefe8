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

    ``mask`` is called with every secret part of the key before anything else can print it; it is
    only ever called with single-line values, so ``::add-mask::`` covers them whole (the PEM key is
    masked line by line, which also covers its ``\\n``-joined form inside the JSON text).
    The file is created 0600 under ``RUNNER_TEMP`` when that folder exists (a container action may
    be handed a host path that does not), else under the system temp folder, and is removed when
    the block exits, also on error.
    """
    key = _parse_key(json_text)
    for secret in _secret_parts(key):
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
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8").strip()
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


def _secret_parts(key: dict[str, Any]) -> list[str]:
    lines = [line.strip() for line in key["private_key"].splitlines()]
    parts = [line for line in lines if line and not line.startswith("-----")]
    key_id = key.get("private_key_id")
    if isinstance(key_id, str) and key_id:
        parts.append(key_id)
    return parts


def _scratch_dir() -> str | None:
    runner_temp = os.environ.get("RUNNER_TEMP", "")
    return runner_temp if runner_temp and Path(runner_temp).is_dir() else None
