"""`dvc-pull: stream` end to end: entrypoint.py as a subprocess on a pull request, the ImageFolder (head and
base commit) in a `gs://` DVC remote on the GCS emulator, logged in with the service account from
`gcp-credentials`. The report equals the `dvc-pull: true` report, and nothing of the data reaches the disk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.dvc_repo import run
from tests.fakes.github import FakeGitHub
from tests.helpers import Run, build_imagefolder_repo, run_entrypoint

DATA = "data/images"


@pytest.fixture
def stream_repo(tmp_path: Path, gcs_emulator: Any) -> tuple[Path, dict[str, str], str, str]:
    bucket = gcs_emulator.create_bucket("mlgate-images")
    return build_imagefolder_repo(tmp_path / "repo", gcs_emulator.env, f"{bucket}/store", DATA)


@pytest.fixture
def start(tmp_path: Path, fake_github: FakeGitHub, gcs_emulator: Any,
          stream_repo: tuple[Path, dict[str, str], str, str]) -> Callable[..., tuple[Run, Path]]:
    """A fresh clone (no data, no DVC cache) and one data-stats run on a pull request in it; the key only
    through `gcp-credentials`, as `${{ secrets.GCP_SA_KEY }}`."""
    origin, env, base, head = stream_repo
    counter = iter(range(100))

    def go(**inputs: str) -> tuple[Run, Path]:
        n = next(counter)
        ws = tmp_path / f"ws{n}"
        run(tmp_path, env, "git", "clone", "-q", str(origin), str(ws))
        pr = fake_github.add_pull()
        event = fake_github.event_payload(pr)
        event["pull_request"]["base"]["sha"], event["pull_request"]["head"]["sha"] = base, head
        run_env = {key: value for key, value in env.items() if key != "GOOGLE_APPLICATION_CREDENTIALS"}
        run_env.update({**fake_github.env(), "GITHUB_SHA": head, "INPUT_MODE": "data-stats", "INPUT_DATA": DATA,
                        "INPUT_GITHUB-TOKEN": fake_github.token, "INPUT_TITLE": "",
                        "INPUT_GCP-CREDENTIALS": gcs_emulator.service_account_json,
                        "INPUT_ASSETS-BRANCH": f"mlgate-assets-{n}", "INPUT_WORKERS": "2"})
        return run_entrypoint(tmp_path / f"run{n}", ws, "pull_request", event, run_env, inputs), ws

    return go


def _data_files(ws: Path) -> list[str]:
    """Files of the checkout that git does not know: what a pull (data, DVC cache) leaves behind."""
    known = set(run(ws, dict(os.environ), "git", "ls-files", "-z").split("\0"))
    return sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(ws).parts[:1]
                  and p.relative_to(ws).as_posix() not in known)


@pytest.mark.slow
@pytest.mark.reliability(
    "secret", "`dvc-pull: stream` from a `gs://` remote with `gcp-credentials`",
    "exit 0; report.json equal to `dvc-pull: true`'s; no image file, no DVC cache object written"
)
def test_stream__report_equals_the_pulled_report_and_no_data_reaches_the_disk(
    start: Callable[..., tuple[Run, Path]], gcs_emulator: Any,
) -> None:
    logins = len(gcs_emulator.logins)
    streamed, stream_ws = start(dvc_pull="stream")
    assert streamed.returncode == 0, streamed.stderr + streamed.stdout
    assert len(gcs_emulator.logins) > logins  # the genuine JWT-bearer exchange, in the streaming process
    pulled, pull_ws = start(dvc_pull="true")
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout

    stream_report, pull_report = streamed.report_json(), pulled.report_json()
    assert stream_report == pull_report
    assert stream_report["changes"]["files"]["added"] and stream_report["changes"]["base"]  # compared with the base
    assert "Streaming data/images from the DVC remote" in streamed.stdout
    # the pull wrote the images (and DVC's cache); the stream wrote only mlgate's own report and cache
    assert any(name.startswith(DATA + "/") for name in _data_files(pull_ws))
    assert any(name.startswith(".dvc/cache/") for name in _data_files(pull_ws))
    written = _data_files(stream_ws)
    assert not [name for name in written if name.startswith((DATA + "/", ".dvc/cache/"))], written
    assert not [name for name in written if (stream_ws / name).read_bytes().startswith(b"\x89PNG")
                and not name.startswith("mlgate-report/")], written
    unmasked = [line for line in streamed.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any("PRIVATE KEY" in line for line in unmasked)


@pytest.mark.slow
@pytest.mark.reliability(
    "wire", "`dvc-pull: stream` with a service-account key the token endpoint refuses",
    "exit 2 or 3; `::error` names `dvc-pull: stream` and `gcp-credentials`; no key in the log"
)
def test_stream__refused_credentials__error_names_the_inputs(
    start: Callable[..., tuple[Run, Path]], gcs_emulator: Any,
) -> None:
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.fakes.gcs import service_account_key

    other = json.dumps(service_account_key(gcs_emulator.token_endpoint.url,
                                           rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    result, _ = start(dvc_pull="stream", gcp_credentials=other)
    assert result.returncode in (2, 3), result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert errors and "dvc-pull: stream" in errors[0] and "gcp-credentials" in result.stdout, result.stdout
    assert not any("PRIVATE KEY" in line for line in result.stdout.splitlines()
                   if not line.startswith("::add-mask::"))
