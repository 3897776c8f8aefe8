"""The hostile-string catalogue: every payload through every surface that turns strings into Markdown,
posted to the fake GitHub over real HTTP and rendered with GitHub's engine (tests/github_markdown.py).

Surfaces (where the string comes from):

- ``fork``: a fork's report.json (title, data path, class, split and file names, a gate's detail) and
  its report.md, published by the trusted ``mode: publish`` run through ``mlgate.cli.main``;
- ``data``: ImageFolder class, split and file names, a ``Dataset``'s class names, the data path and the
  ``title`` input, in a data-stats report posted by ``finish()``;
- ``wandb``: W&B strings — artifact and collection names, digest, the run's name, project and URL, run
  config values and used-artifact names (through ``lineage.judge``), class labels — in a model-gate
  report posted by ``finish()``, the approval pull request's body and the model card.

Each payload's row asserts that nothing unsafe reaches what GitHub would show: no image or link but
hosted figures and this server, only mlgate's tags without foreign attributes, no @mention or #ref
outside code, no bidi control, every table row as wide as its header, no workflow-command line; and
plain-text fields (check-run name and title) stay one line without bidi or control characters.

``MLGATE_HOSTILE_JSON=path`` appends each payload's outcome (problems per surface) to ``path`` as JSON
lines: the before/after measurement in the issue's closing note counts them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from mlgate.context import PullRequest, RunContext
from mlgate.data.report import build_report, data_outcome, render_markdown
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
from mlgate.github.client import GitHubRepo, connect
from mlgate.markdown import code
from mlgate.publish import Finished, Publication, finish
from mlgate.report_blocks import Gate, check_summary
from tests.fakes.github import FakeGitHub
from tests.github_markdown import BIDI, unsafe

REPO = "octo-org/octo-repo"
HEAD_SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
FORK = "someone/octo-repo"

# (class, id, payload): the cases first, then ours
PAYLOADS: list[tuple[str, str, str]] = [
    ("image", "image", "![x](https://evil.example/a.png)"),
    ("image", "image-nested-brackets", "![a [b] c](https://evil.example/a.png)"),
    ("image", "image-nested-parens", "![x](https://evil.example/a(1).png)"),
    ("image", "image-single-quote-title", "![x](https://evil.example/a.png 'title')"),
    ("image", "image-paren-title", "![x](https://evil.example/a.png (title))"),
    ("image", "image-multiline-title", "![x](https://evil.example/a.png \"a\nb\")"),
    ("image", "image-alt-line-break", "![a\nb](https://evil.example/a.png)"),
    ("image", "image-reference", "![x][r]\n\n[r]: https://evil.example/a.png"),
    ("image", "image-reference-in-list", "- ![x][r]\n\n[r]: https://evil.example/a.png"),
    ("image", "image-reference-in-quote", "> ![x][r]\n>\n> [r]: https://evil.example/a.png"),
    ("image", "image-in-link", "[![figure](sample_grid.png)](https://evil.example/)"),
    ("image", "image-angle-target", "![x](<https://evil.example/a b.png>)"),
    ("image", "image-html", "<img src=https://evil.example/a.png>"),
    ("image", "image-html-uppercase", "<IMG SRC=\"https://evil.example/a.png\">"),
    ("image", "image-picture", "<picture><source srcset=https://evil.example/a.png></picture>"),
    ("image", "image-data-uri", "![x](data:image/png;base64,iVBORw0KGgo=)"),
    ("link", "link", "[click](https://evil.example/phish)"),
    ("link", "link-javascript", "[click](javascript:alert(1))"),
    ("link", "link-entity-javascript", "[click](&#106;avascript:alert(1))"),
    ("link", "link-reference", "[click][r]\n\n[r]: https://evil.example/"),
    ("link", "link-collapsed-reference", "[r][]\n\n[r]: https://evil.example/"),
    ("link", "link-html-anchor", "<a href=\"https://evil.example/\">x</a>"),
    ("link", "link-same-host-lookalike", "[x](https://github.com.evil.example/)"),
    ("link", "link-userinfo", "[x](https://github.com@evil.example/)"),
    ("link", "link-angle-autolink", "<https://evil.example/>"),
    ("link", "link-angle-email", "<someone@evil.example>"),
    ("autolink", "autolink-http", "see https://evil.example/p now"),
    ("autolink", "autolink-www", "www.evil.example"),
    ("autolink", "autolink-email", "someone@evil.example"),
    ("autolink", "autolink-ftp", "ftp://evil.example/x"),
    ("autolink", "autolink-www-in-parens", "(www.evil.example/x)"),
    ("html", "html-script", "<script>alert(1)</script>"),
    ("html", "html-nested-script", "<scr<script>ipt>alert(1)</script>"),
    ("html", "html-details-open", "<details open>x</details>"),
    ("html", "html-details-onclick", "<details onclick=\"x()\"><summary>s</summary></details>"),
    ("html", "html-iframe", "<iframe src=https://evil.example/></iframe>"),
    ("html", "html-comment-marker", "<!-- mlgate:data-stats:Production -->"),
    ("html", "html-style", "<span style=\"font-size:90px\">big</span>"),
    ("html", "html-unclosed", "<div"),
    ("html", "html-entity", "&lt;script&gt; &amp; &#x40;octocat"),
    ("html", "html-close-details", "</details></details>## Passed"),
    ("mention", "mention", "@octocat"),
    ("mention", "mention-team", "@octo-org/security"),
    ("mention", "mention-in-word-boundary", "(@octocat)"),
    ("mention", "mention-fullwidth-free", "hi @octocat, please merge"),
    ("ref", "ref-issue", "#1"),
    ("ref", "ref-cross-repo", "octo-org/octo-repo#1"),
    ("ref", "ref-gh", "fixes #2 and closes #3"),
    ("table", "table-pipe", "a | b | c"),
    ("table", "table-escaped-pipe", "a \\| b"),
    ("table", "table-newline", "a\n| x | y |\n|---|---|"),
    ("table", "table-backslash-end", "a\\"),
    ("bidi", "bidi-rlo", "abc\u202edcba.png"),
    ("bidi", "bidi-isolates", "\u2066x\u2069 \u2067y\u2069 \u2068z\u2069"),
    ("bidi", "bidi-marks", "a\u200eb\u200fc\u061cd"),
    ("bidi", "bidi-embeddings", "\u202aa\u202bb\u202cc\u202dd"),
    ("command", "command-set-output", "::set-output name=passed::true"),
    ("command", "command-error", "x\n::error::pwned"),
    ("command", "command-cr", "ok\r::warning::pwned"),
    ("command", "command-old-style", "##[set-output name=a;]b"),
    ("command", "command-stop", "::stop-commands::tok"),
    ("markup", "markup-heading", "## ✅ Passed"),
    ("markup", "markup-heading-after-newline", "x\n# Passed"),
    ("markup", "markup-backticks", "``` evil ```"),
    ("markup", "markup-fence", "x\n```\ncode\n```"),
    ("markup", "markup-emphasis", "**Passed** _x_ ~~y~~"),
    ("markup", "markup-list", "- a\n- b"),
    ("markup", "markup-numbered", "1. a"),
    ("markup", "markup-quote", "> quoted"),
    ("markup", "markup-math", "$\\href{https://evil.example}{x}$"),
    ("markup", "markup-control", "a\x1b[31mred\x00\x07"),
    ("markup", "markup-long", "A" * 5000),
    ("markup", "markup-zero-width", "a\u200bb\ufeffc"),
]


# ---- what a surface posts


def _split(labels: dict[str, int], unreadable: list[str]) -> SplitStats:
    total = sum(labels.values())
    return SplitStats(
        count=total, shape=[28, 28], shapes={"28x28": total}, dtype="uint8", channels=1, min=0.0, max=1.0,
        channel_mean=[0.5], channel_std=[0.25], label_counts=labels,
        label_shares={k: v / total for k, v in labels.items()},
        imbalance_ratio=max(labels.values()) / min(labels.values()), missing_classes=[], nonfinite=0,
        unreadable=unreadable, duplicates=0, histogram=[1, 2], histogram_edges=[0.0, 0.5, 1.0],
    )


def _data_report(payload: str, title: str = "Data report") -> Any:
    """A data-stats report whose class, split and file names, data path and a gate's detail are ``payload``."""
    stats = DatasetStats(
        layout="imagefolder", class_names=[payload, "b"],
        splits={"train": _split({"0": 30, "1": 20}, []), payload: _split({"0": 5, "1": 5}, [f"{payload}.png"])},
        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={payload: 1}, conflicting_labels=0))
    gates = [Gate(name="min-samples", value=10, threshold=1, passed=True)]
    return build_report(title=title, data=payload, stats=stats, content_hash=None, changes=None, gates=gates,
                        baseline=None, figures={})


def _ctx(tmp_path: Path, number: int) -> RunContext:
    pull = PullRequest(number=number, head_sha=HEAD_SHA, head_ref="feature", base_sha="c" * 40, base_ref="main",
                       is_fork=False)
    return RunContext(in_actions=True, sha="a" * 40, repository=REPO, workspace=tmp_path, pull_request=pull,
                      summary_path=tmp_path / "summary", output_path=tmp_path / "output")


def _post(tmp_path: Path, fake_github: FakeGitHub, number: int, result: Finished, title: str, mode: str) -> None:
    client = connect(fake_github.token, fake_github.api_url, throttle=False)
    try:
        repo = GitHubRepo(client, REPO, fake_github.server_url)
        publication = Publication(
            repo=repo, branch_store=None, pr_number=number, comment="update", marker=f"<!-- mlgate:{mode}:x -->",
            host=False, assets_branch="mlgate-assets", out_dir=tmp_path / "mlgate-report", check_run=title,
            check_sha=HEAD_SHA)
        finish(result, publication, _ctx(tmp_path, number))
    finally:
        client.close()


def _posted(fake_github: FakeGitHub, tmp_path: Path, number: int) -> dict[str, str]:
    """Every Markdown body the fake received (and the job summary), by where it went."""
    bodies = {f"comment {i}": c.body for i, c in enumerate(fake_github.repo.comments_on(number))}
    for i, run in enumerate(fake_github.repo.check_runs):
        bodies |= {f"check-run {i} summary": run.summary, f"check-run {i} text": run.text}
    summary = tmp_path / "summary"
    if summary.is_file():
        bodies["job summary"] = summary.read_text()
    return bodies


def _plain_problems(fake_github: FakeGitHub) -> list[str]:
    """The check run's name and title are plain text: one line, no bidi or control characters."""
    problems = []
    for run in fake_github.repo.check_runs:
        for what, text in (("name", run.name), ("title", run.title)):
            if BIDI.search(text) or re.search(r"[\x00-\x1f\x7f]", text):
                problems.append(f"check-run {what} {text[:40]!r}")
    return problems


def data_surface(payload: str, tmp_path: Path, fake_github: FakeGitHub) -> dict[str, str]:
    pr = fake_github.add_pull(head_sha=HEAD_SHA)
    title = " ".join(payload.split()) or "x"  # the `title` input: one line (settings refuse control characters)
    report = _data_report(payload, title=title)
    result = Finished(passed=report.passed, report_json=report.model_dump_json(),
                      render=lambda links, note: render_markdown(report, links, note=note),
                      headline=data_outcome(report),
                      check_summary=check_summary(data_outcome(report), report.gates, {}),
                      gated=True)
    _post(tmp_path, fake_github, pr.number, result, title, "data-stats")
    return _posted(fake_github, tmp_path, pr.number)


def wandb_surface(payload: str, tmp_path: Path, fake_github: FakeGitHub) -> dict[str, str]:
    from mlgate.model.card import render_card
    from mlgate.model.gates import GateThresholds, evaluate_gates
    from mlgate.model.lineage import judge
    from mlgate.model.measure.values import Environment, LatencyStats, ModelMeasurement, Throughput
    from mlgate.model.registry import Lineage, LineageRun, ModelVersion, UsedArtifact
    from mlgate.model.report import build_report as build_model_report
    from mlgate.model.report import model_outcome
    from mlgate.model.report import render_markdown as render_model

    pr = fake_github.add_pull(head_sha=HEAD_SHA)
    latency = LatencyStats(predictions=100, total_seconds=1.0, mean_ms=9.9, p50_ms=9.5, p90_ms=11.0,
                           p95_ms=12.3, p99_ms=14.0, iqr_ms=1.0, stdev_ms=1.25)
    m = ModelMeasurement(
        latency=latency, throughput=[Throughput(batch_size=32, samples_per_second=1000.0, batch_p50_ms=2.9)],
        size_mb=0.1, params=24_030, flops_per_prediction=None, peak_memory_mb=None, accuracy=0.9,
        per_class_accuracy={payload: 0.9, "1": 0.8}, confusion=None, eval_samples=100, robustness=None)
    report = build_model_report(
        title="Model gate", model=payload, format="torchscript", collection=payload, measurement=m,
        gates=evaluate_gates(m, GateThresholds(max_latency_ms=20)), baseline=None,
        environment=Environment(torch="2.5.1", python="3.11.7", cpu="cpu", threads=2, platform="linux"))
    run = LineageRun(id="3kq9x2ab", name=payload, project=payload, url=f"https://wandb.ai/{payload}")
    used = [UsedArtifact(name=payload, type="dataset", digest=payload, metadata={"md5": payload})]
    lineage = judge(Lineage(run=run, config={"data_md5": payload, "data_version": payload}, used=used),
                    {"data_md5": payload}, eval_data="data", repository_hash="50a0ef8ac56e1060bcb378c1118f0feb.dir")
    report = report.model_copy(update={"lineage": lineage})
    version = ModelVersion(name=payload, version="v3", aliases=["staging"], collection=payload, digest=payload,
                           metadata={"note": payload})
    result = Finished(passed=report.passed, report_json=report.model_dump_json(),
                      render=lambda links, note: render_model(report, links, note=note),
                      headline=model_outcome(report),
                      check_summary=check_summary(model_outcome(report), report.gates, {}), gated=True)
    _post(tmp_path, fake_github, pr.number, result, "Model gate", "model-gate")
    bodies = _posted(fake_github, tmp_path, pr.number)
    bodies["model card"] = render_card(report, version, payload, "production")
    bodies["approval PR body"] = render_model(report, {})  # the PR body is this report and fixed words
    return bodies


def fork_surface(payload: str, tmp_path: Path, fake_github: FakeGitHub) -> dict[str, str]:
    from mlgate.cli import main

    pr = fake_github.add_pull(fork=FORK, head_sha=HEAD_SHA)
    report = _data_report(payload, title=payload)
    report_json = json.loads(report.model_dump_json())
    report_json["gates"][0]["detail"] = payload
    workspace = tmp_path / "ws"
    folder = workspace / "fork-report"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report_json))
    (folder / "report.md").write_text(render_markdown(report, {}) + "\n" + payload + "\n")  # the fork writes it all
    (folder / "publish.json").write_text(json.dumps({
        "mode": "data-stats", "title": "Data report", "marker": "<!-- mlgate:data-stats:Data report -->",
        "pr_number": pr.number, "head_sha": HEAD_SHA, "mlgate_version": "1.0.0"}))
    files = tmp_path / "files"
    files.mkdir()
    (files / "event.json").write_text(json.dumps({"action": "completed", "workflow_run": {
        "id": 42, "head_sha": HEAD_SHA, "head_branch": "feature", "event": "pull_request", "pull_requests": [],
        "head_repository": {"full_name": FORK, "owner": {"login": "someone"}}}}))
    env = {**fake_github.env(), "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_run",
           "GITHUB_EVENT_PATH": str(files / "event.json"), "GITHUB_WORKSPACE": str(workspace),
           "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
           "INPUT_MODE": "publish", "INPUT_REPORT-DIR": "fork-report", "INPUT_GITHUB-TOKEN": fake_github.token,
           "PATH": os.environ["PATH"]}
    code = main([], env)
    bodies = _posted(fake_github, tmp_path, pr.number)
    if code not in (0, 1):
        bodies["exit code"] = f"exit {code}"  # refused: nothing posted is safe, but a crash is not
    return bodies


SURFACES = {"fork": fork_surface, "data": data_surface, "wandb": wandb_surface}


def outcome(payload: str, tmp_path: Path, fake_github: FakeGitHub, surface: str) -> list[str]:
    folder = tmp_path / surface
    folder.mkdir()
    bodies = SURFACES[surface](payload, folder, fake_github)
    server = fake_github.server_url
    problems = [f"{where}: {problem}" for where, body in bodies.items() if where != "exit code"
                for problem in unsafe(body, allowed_url=(f"{server}/",))]
    problems += _plain_problems(fake_github)
    if "exit code" in bodies and bodies["exit code"] not in ("exit 2",):
        problems.append(bodies["exit code"])
    return problems


@pytest.mark.reliability("input", "hostile string {shown} ({kind}) as class, split, file name, data path, "
                         "title, in a fork's report.json/report.md, as W&B names, run, config, digest",
                         "inert where posted (comment, check run, summary, PR body, model card; cmark-gfm)")
@pytest.mark.parametrize(("kind", "payload", "shown"), [
    pytest.param(kind, payload, code(repr(payload if len(payload) < 60 else payload[:20] + "…")), id=name)
    for kind, name, payload in PAYLOADS])
def test_hostile_string__inert_everywhere_it_is_posted(kind: str, payload: str, shown: str,
                                                       request: pytest.FixtureRequest, tmp_path: Path,
                                                       fake_github: FakeGitHub) -> None:
    found: dict[str, list[str]] = {}
    for surface in SURFACES:
        found[surface] = outcome(payload, tmp_path, fake_github, surface)
        fake_github.repo.check_runs.clear()
    record = os.environ.get("MLGATE_HOSTILE_JSON")
    if record:
        with open(record, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": request.node.callspec.id, "kind": kind, "problems": found}) + "\n")
    assert found == {surface: [] for surface in SURFACES}
    assert fake_github.violations == []
