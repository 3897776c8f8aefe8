"""service_account_credentials: validation without echoing secrets, masking, a private short-lived file."""

from __future__ import annotations

import base64
import json
import stat
import tempfile
from pathlib import Path

import pytest

from mlgate.gcp import InvalidCredentials, service_account_credentials
from tests.fakes.gcs import service_account_key

KEY = service_account_key("http://127.0.0.1:9/token")
KEY_JSON = json.dumps(KEY)
PEM_BODY = [line for line in KEY["private_key"].splitlines() if line and not line.startswith("-----")]


def test_credentials__yields_private_key_file_and_removes_it_afterwards() -> None:
    with service_account_credentials(KEY_JSON, mask=lambda _: None) as env:
        path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
        assert list(env) == ["GOOGLE_APPLICATION_CREDENTIALS"]
        assert json.loads(path.read_text()) == KEY
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert not path.exists()


def test_credentials__file_removed_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), service_account_credentials(KEY_JSON, mask=lambda _: None) as env:
        path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
        raise RuntimeError("dvc failed")

    assert not path.exists()


def test_credentials__masks_every_key_line_and_key_id_as_single_line_values() -> None:
    masked: list[str] = []

    with service_account_credentials(KEY_JSON, mask=masked.append):
        pass

    assert set(masked) == {*PEM_BODY, KEY["private_key_id"]}
    assert all("\n" not in value for value in masked)
    # every line of the key, as it appears inside the JSON text (joined by literal \n), is covered
    json_key = json.dumps(KEY["private_key"])
    assert all(line in json_key for line in PEM_BODY)


def test_credentials__accepts_base64_encoded_key() -> None:
    encoded = base64.b64encode(KEY_JSON.encode()).decode()

    with service_account_credentials(encoded, mask=lambda _: None) as env:
        assert json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()) == KEY


def test_credentials__written_under_runner_temp_when_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))

    with service_account_credentials(KEY_JSON, mask=lambda _: None) as env:
        assert Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).parent == tmp_path


def test_credentials__missing_runner_temp_falls_back_to_system_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "host-path-not-mounted"))

    with service_account_credentials(KEY_JSON, mask=lambda _: None) as env:
        assert Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).parent == Path(tempfile.gettempdir())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("s3cr3t-token-value", "neither JSON nor base64"),
        ('{"private_key": "s3cr3t-token-value", ', "not valid JSON"),
        ('["s3cr3t-token-value"]', "not an object"),
        (json.dumps({"type": "authorized_user", "refresh_token": "s3cr3t-token-value"}), "'authorized_user'"),
        (json.dumps({**KEY, "private_key": "s3cr3t-token-value"}), "not a PEM key"),
        (json.dumps({k: v for k, v in KEY.items() if k != "client_email"}), "lacks client_email"),
    ],
)
def test_credentials__invalid_key_names_the_input_without_echoing_it(text: str, expected: str) -> None:
    masked: list[str] = []

    with pytest.raises(InvalidCredentials) as caught, service_account_credentials(text, mask=masked.append):
        pass

    shown = str(caught.value)
    assert "gcp-credentials" in caught.value.message
    assert expected in caught.value.message
    assert '"type": "service_account"' in caught.value.message  # says what a valid key looks like
    assert "secrets." in caught.value.hint
    assert "s3cr3t" not in shown
    assert not any(line in shown for line in PEM_BODY)
    # no chained decoder error (its text could quote the input) reaches a traceback
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
