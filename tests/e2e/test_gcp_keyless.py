"""Keyless Google login end to end: entrypoint.py as the runner starts it, DVC pulling from the
emulated ``gs://`` remote with only a workload-identity (``external_account``) file, the real
google-auth in DVC following the file's URLs to the loopback stand-ins of the Actions OIDC endpoint,
Google STS and IAM credentials (:mod:`tests.fakes.gcp_wif`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.dvc_repo import hermetic_env, run
from tests.fakes.gcp_wif import PROJECT_NUMBER, SERVICE_ACCOUNT, WorkloadIdentity
from tests.fakes.gcs import GcsEmulator
from tests.fakes.github import FakeGitHub
from tests.helpers import Run, build_data_repo, pr_event, run_entrypoint

IAM_PATH = f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken"


@dataclass
class Checkout:
    workspace: Path
    env: dict[str, str]
    head_sha: str
    event: dict[str, Any]


@pytest.fixture
def checkout(tmp_path: Path, fake_github: FakeGitHub, gcs_emulator: GcsEmulator) -> Checkout:
    """A pull request on a repository whose DVC remote is ``gs://mlgate-data/store`` (pushed with a
    service-account key), freshly cloned as actions/checkout leaves it: no cache, no data."""
    bucket = gcs_emulator.create_bucket("mlgate-data")
    repo = build_data_repo(tmp_path / "gs", remote_url=f"{bucket}/store", env_extra=gcs_emulator.env)
    workspace = tmp_path / "ws"
    run(tmp_path, repo.env, "git", "clone", "-q", str(repo.origin), str(workspace))
    _, event = pr_event(fake_github, repo)
    return Checkout(workspace, repo.env, repo.head_sha, event)


def run_keyless(tmp_path: Path, checkout: Checkout, fake_github: FakeGitHub, wif: WorkloadIdentity,
                env: Mapping[str, str] = (), **inputs: str) -> Run:
    """data-stats in a job with ``id-token: write``; the service-account key of the fixture repository
    is not in its environment, so only the workload-identity file can reach the bucket."""
    base = {name: value for name, value in checkout.env.items() if name != "GOOGLE_APPLICATION_CREDENTIALS"}
    full_env = {
        **base, **fake_github.env(), **wif.env, **dict(env),
        "GITHUB_SHA": checkout.head_sha, "INPUT_MODE": "data-stats", "INPUT_DATA": "data/processed",
        "INPUT_GITHUB-TOKEN": fake_github.token, "INPUT_TITLE": "", "INPUT_GCP-CREDENTIALS": "",
    }
    return run_entrypoint(tmp_path / "run", checkout.workspace, "pull_request", checkout.event, full_env, inputs)


def assert_keyless_flow(result: Run, wif: WorkloadIdentity, gcs: GcsEmulator, logins_before: int) -> None:
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.report_json()["splits"]["train"]["count"] == 800  # pulled from the bucket
    assert wif.rejected == [] and gcs.unauthorized == []
    log = wif.log.lines()
    # google-auth's order: the OIDC token, the STS exchange, the impersonation, the project lookup;
    # the first storage request only after a whole login
    login = [
        "oidc GET /_apis/distributedtask/hubs/Actions/plans/7f3c/jobs/9a1e/idtoken",
        "sts POST /v1/token",
        f"iam POST {IAM_PATH}",
        "proxy CONNECT /cloudresourcemanager.googleapis.com:443",
        f"crm GET /v1/projects/{PROJECT_NUMBER}",
    ]
    assert log[:5] == login, log[:5]
    # DVC logs in once per command and per storage client, some concurrently: every later login is
    # whole too (no step before the one it needs), and storage only ever sees IAM's tokens
    steps = [line for line in log if not line.startswith("gcs ")]
    assert set(steps) == set(login) and len(log) > len(steps)
    for at in range(len(steps)):
        done = [steps[: at + 1].count(step) for step in login]
        assert done == sorted(done, reverse=True), steps
    assert [steps.count(step) for step in login] == [len(wif.access_tokens)] * len(login)
    assert gcs.seen_tokens and gcs.seen_tokens <= set(wif.access_tokens)  # the bucket saw only IAM's tokens
    assert len(gcs.logins) == logins_before  # and no service-account login happened
    # minted tokens stay inside DVC's google-auth; the runner's request token is only masked
    for token in wif.minted():
        assert token not in result.stdout and token not in result.stderr and token not in result.summary
    assert f"::add-mask::{wif.request_token}" in result.stdout
    unmasked = [line for line in result.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any(wif.request_token in line for line in unmasked) and wif.request_token not in result.stderr


@pytest.mark.slow
@pytest.mark.reliability(
    "secret", "workload-identity file (`external_account`) in `gcp-credentials`, `gs://` DVC remote",
    "exit 0; OIDC -> STS -> IAM -> bucket in that order; no token but the masked request token in any log"
)
def test_gcp_credentials__external_account_pulls_through_oidc_sts_and_iam(
    tmp_path: Path, checkout: Checkout, fake_github: FakeGitHub, gcs_emulator: GcsEmulator,
    workload_identity: WorkloadIdentity,
) -> None:
    logins_before = len(gcs_emulator.logins)
    gcs_emulator.request_log.entries.clear()  # the fixture's push, with the service-account key
    gcs_emulator.seen_tokens.clear()

    result = run_keyless(tmp_path, checkout, fake_github, workload_identity,
                         gcp_credentials=json.dumps(workload_identity.credentials(), indent=2))

    assert_keyless_flow(result, workload_identity, gcs_emulator, logins_before)


def _ambient(form: str, where: str) -> object:
    return pytest.param(form, marks=pytest.mark.reliability(
        "secret", f"`GOOGLE_APPLICATION_CREDENTIALS` from google-github-actions/auth as {where}",
        "exit 0; the file is found under the workspace, checked and used; OIDC -> STS -> IAM -> bucket"), id=form)


@pytest.mark.slow
@pytest.mark.parametrize("form", [
    _ambient("container path", "the runner translates it (`/github/workspace/gha-creds-….json`)"),
    _ambient("host path", "the host's path (`/home/runner/work/r/r/gha-creds-….json`)"),
])
def test_ambient_credentials__file_an_auth_step_wrote_into_the_workspace_is_found_and_used(
    tmp_path: Path, checkout: Checkout, fake_github: FakeGitHub, gcs_emulator: GcsEmulator,
    workload_identity: WorkloadIdentity, form: str,
) -> None:
    name = "gha-creds-5f0c1e2d3b4a6978.json"  # google-github-actions/auth's naming
    (checkout.workspace / name).write_text(json.dumps(workload_identity.credentials()))
    # the runner translates the host workspace to /github/workspace (here: the test's workspace);
    # where it does not, the host path of a GitHub-hosted runner arrives unchanged
    named = str(checkout.workspace / name) if form == "container path" else f"/home/runner/work/data/data/{name}"
    assert form == "container path" or not Path(named).exists()
    logins_before = len(gcs_emulator.logins)
    gcs_emulator.request_log.entries.clear()
    gcs_emulator.seen_tokens.clear()

    result = run_keyless(tmp_path, checkout, fake_github, workload_identity,
                         env={"GOOGLE_APPLICATION_CREDENTIALS": named}, compare_base="false")

    assert_keyless_flow(result, workload_identity, gcs_emulator, logins_before)


@pytest.fixture
def bare_checkout(tmp_path: Path, fake_github: FakeGitHub) -> Checkout:
    """A DVC repository with one commit and nothing in its remote: credentials are checked first."""
    workspace = tmp_path / "bare"
    (workspace / ".dvc").mkdir(parents=True)
    (workspace / ".dvc" / "config").write_text("[core]\n    remote = storage\n['remote \"storage\"']\n"
                                               "    url = gs://mlgate-data/store\n")
    (workspace / "data" / "processed").mkdir(parents=True)
    (workspace / "data" / "processed" / "README").write_text("data\n")
    env = hermetic_env(tmp_path / "env")
    run(workspace, env, "git", "init", "-q", "-b", "main")
    run(workspace, env, "git", "add", "-A")
    run(workspace, env, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    sha = run(workspace, env, "git", "rev-parse", "HEAD").strip()
    pr = fake_github.add_pull()
    event = fake_github.event_payload(pr)
    event["pull_request"]["base"]["sha"] = event["pull_request"]["head"]["sha"] = sha
    return Checkout(workspace, env, sha, event)


@pytest.mark.reliability(
    "secret", "`external_account` file whose OIDC URL is not the runner's (a hostile file exfiltrating the token)",
    "exit 2 before any request: the error names the input and `ACTIONS_ID_TOKEN_REQUEST_URL`; the token is masked"
)
def test_gcp_credentials__file_sending_the_oidc_token_elsewhere_is_refused_before_any_request(
    tmp_path: Path, bare_checkout: Checkout, fake_github: FakeGitHub, gcs_emulator: GcsEmulator,
    workload_identity: WorkloadIdentity,
) -> None:
    hostile = workload_identity.credentials()
    hostile["credential_source"]["url"] = workload_identity.sts_url + "?api-version=2.0"  # another listener
    gcs_emulator.request_log.entries.clear()

    result = run_keyless(tmp_path, bare_checkout, fake_github, workload_identity, gcp_credentials=json.dumps(hostile))

    assert result.returncode == 2, result.stderr + result.stdout
    error = next(line for line in result.stdout.splitlines() if line.startswith("::error"))
    assert "gcp-credentials" in error and "ACTIONS_ID_TOKEN_REQUEST_URL" in error
    assert workload_identity.log.lines() == []
    unmasked = [line for line in result.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any(workload_identity.request_token in line for line in unmasked)
