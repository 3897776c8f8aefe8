"""Check runs: create and update (``checks: write``), as the Checks API takes them from a workflow token.

GitHub's rules the OpenAPI description does not carry are enforced here: ``head_sha`` is a full commit
id, a ``completed`` run has a ``conclusion``, and the annotations of an update are appended to the
earlier ones. Whether the commit exists is not checked: the end-to-end tests' commits live in a
local git repository, not in the fake.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import Call, not_found, route, validation_failed
from tests.fakes.github.objects import FakeCheckRun, Json

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo

_SHA = re.compile(r"[0-9a-f]{40}")


def check_run_json(fake: FakeGitHub, repo: FakeRepo, run: FakeCheckRun) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}"
    return {
        "id": run.id,
        "node_id": f"CR_fake{run.id}",
        "name": run.name,
        "head_sha": run.head_sha,
        "external_id": "",
        "url": f"{api}/check-runs/{run.id}",
        "html_url": f"{fake.server_url}/{repo.full_name}/runs/{run.id}",
        "details_url": f"{fake.server_url}/{repo.full_name}/runs/{run.id}",
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "output": {
            "title": run.title or None,
            "summary": run.summary or None,
            "text": run.text or None,
            "annotations_count": len(run.annotations),
            "annotations_url": f"{api}/check-runs/{run.id}/annotations",
        },
        "check_suite": {"id": run.id + 1},
        "app": {"id": 15368, "slug": run.app, "name": "GitHub Actions"},
        "pull_requests": [],
    }


def _apply(fake: FakeGitHub, run: FakeCheckRun, body: Json) -> None:
    if "name" in body:
        run.name = body["name"]
    if "conclusion" in body:  # a conclusion completes the run (GitHub's rule)
        run.conclusion, run.status = body["conclusion"], "completed"
    elif "status" in body:
        run.status = body["status"]
    if run.status == "completed" and run.conclusion is None:
        raise validation_failed("Invalid request.\n\n`conclusion` is required when `status` is `completed`.")
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = body.get("completed_at") or fake.now()
    output = body.get("output")
    if output:
        run.title = output.get("title", run.title)
        run.summary = output.get("summary", run.summary)
        run.text = output.get("text", run.text)
        run.annotations += list(output.get("annotations") or [])


def create_check_run(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    body: Json = call.body
    if not _SHA.fullmatch(body["head_sha"]):
        raise validation_failed("Validation Failed", resource="CheckRun", field="head_sha", code="invalid",
                                message=f"No commit found for SHA: {body['head_sha']}")
    run = FakeCheckRun(id=fake.next_id(), name=body["name"], head_sha=body["head_sha"], status="queued",
                       conclusion=None, title="", summary="", text="", annotations=[], app="github-actions",
                       started_at=body.get("started_at") or fake.now(), completed_at=None)
    _apply(fake, run, body)
    call.repo.check_runs.append(run)
    return 201, check_run_json(fake, call.repo, run)


def update_check_run(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    for run in call.repo.check_runs:
        if run.id == int(call.params["check_run_id"]):
            _apply(fake, run, call.body)
            return 200, check_run_json(fake, call.repo, run)
    raise not_found()


ROUTES = (
    route("POST", r"/check-runs", "checks/create", create_check_run, "checks"),
    route("PATCH", r"/check-runs/(?P<check_run_id>\d+)", "checks/update", update_check_run, "checks"),
)
