"""The credentials mlgate hands to DVC, read by the real google-auth against the loopback stand-ins
of Workload Identity Federation (:mod:`tests.fakes.gcp_wif`) and the storage emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgate.gcp import google_credentials
from tests.fakes.gcp_wif import PROJECT_NUMBER, WorkloadIdentity
from tests.fakes.gcs import GcsEmulator

READ_ONLY = "https://www.googleapis.com/auth/devstorage.read_only"


@pytest.mark.parametrize("impersonate", [True, False], ids=["through a service account", "direct"])
def test_checked_copy__google_auth_logs_in_through_the_stand_ins_and_reads_the_bucket(
    workload_identity: WorkloadIdentity, gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch,
    impersonate: bool,
) -> None:
    import google.auth
    from google.auth.transport.requests import AuthorizedSession, Request

    for name, value in workload_identity.env.items():
        monkeypatch.setenv(name, value)
    gcs_emulator.create_bucket("mlgate-data")
    text = json.dumps(workload_identity.credentials(impersonate=impersonate))

    with google_credentials(text, mask=lambda _: None,
                            id_token_request_url=workload_identity.env["ACTIONS_ID_TOKEN_REQUEST_URL"]) as env:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", env["GOOGLE_APPLICATION_CREDENTIALS"])
        credentials, project = google.auth.default(scopes=[READ_ONLY], request=Request())
        with AuthorizedSession(credentials) as session:
            listing = session.get(f"{gcs_emulator.env['STORAGE_EMULATOR_HOST']}/storage/v1/b/mlgate-data/o")

    assert listing.status_code == 200, listing.text
    assert project == "mlgate-test" and workload_identity.rejected == []
    services = [line.split()[0] for line in workload_identity.log.lines()]
    assert services == ["oidc", "sts", *(["iam"] if impersonate else []), "proxy", "crm", "gcs"]
    assert workload_identity.log.lines()[-2] == f"crm GET /v1/projects/{PROJECT_NUMBER}"
    issuer = workload_identity.access_tokens if impersonate else workload_identity.sts_tokens
    assert gcs_emulator.seen_tokens == {issuer[-1]}


def test_storage__refuses_a_token_no_stand_in_issued(
    workload_identity: WorkloadIdentity, gcs_emulator: GcsEmulator
) -> None:
    import requests

    gcs_emulator.create_bucket("mlgate-data")
    url = f"{gcs_emulator.env['STORAGE_EMULATOR_HOST']}/storage/v1/b/mlgate-data/o"

    anonymous = requests.get(url, timeout=10)
    forged = requests.get(url, headers={"Authorization": "Bearer ya29.c.iam-forged"}, timeout=10)

    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert gcs_emulator.unauthorized == ["GET /storage/v1/b/mlgate-data/o"] * 2


@pytest.mark.reliability(
    "environment", "`GOOGLE_APPLICATION_CREDENTIALS` names a host file the container cannot see (auth@v0)",
    "a warning naming the variable, the path and the fix; DVC runs without it (other remotes unaffected)"
)
def test_dvc_session__exported_file_outside_the_workspace_warns_and_runs_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlgate import workflow
    from mlgate.data.dvc import DvcRunner
    from mlgate.data.pull import dvc_session
    from mlgate.settings import DvcInputs

    (tmp_path / ".dvc").mkdir()
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/runner/work/_temp/gha-creds-1.json")

    with workflow.running(in_actions=True), dvc_session(DvcInputs(), DvcRunner(tmp_path)) as dvc:
        assert dvc is not None

    out = capsys.readouterr().out
    assert out.startswith("::warning title=Google credentials not found::GOOGLE_APPLICATION_CREDENTIALS names "
                          "/home/runner/work/_temp/gha-creds-1.json")
    assert "google-github-actions/auth@v2" in out


def test_dvc_session__exported_external_account_is_checked_like_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgate.data.dvc import DvcRunner
    from mlgate.data.pull import dvc_session
    from mlgate.gcp import InvalidCredentials
    from mlgate.settings import DvcInputs

    (tmp_path / ".dvc").mkdir()
    hostile = {"type": "external_account", "credential_source": {"file": "/proc/self/environ"}}
    (tmp_path / "gha-creds-1.json").write_text(json.dumps(hostile))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/runner/work/r/r/gha-creds-1.json")

    with pytest.raises(InvalidCredentials) as caught, dvc_session(DvcInputs(), DvcRunner(tmp_path)):
        pass

    assert caught.value.message.startswith(
        "GOOGLE_APPLICATION_CREDENTIALS (/home/runner/work/r/r/gha-creds-1.json) is a workload-identity")


def test_dvc_session__a_developers_gcloud_login_is_passed_on_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgate.data.dvc import DvcRunner
    from mlgate.data.pull import dvc_session
    from mlgate.settings import DvcInputs

    (tmp_path / ".dvc").mkdir()
    adc = tmp_path / "application_default_credentials.json"  # what `gcloud auth application-default login` writes
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s",
                               "refresh_token": "r"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))

    with dvc_session(DvcInputs(), DvcRunner(tmp_path)) as dvc:
        assert dvc is not None
