"""Promotion: what a gated model earns (``on-pass``, ``on-fail-alias``) and ``mode: promote``.

:func:`check_action` refuses an action that could never be carried out before anything is measured;
after the report is final, :func:`plan_action` decides what it earns (pure) and :func:`carry_out`, the one
place a model gate's promotion writes, does it; :func:`run_promote` applies a merged approval pull request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from mlgate import workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.errors import ExitCode
from mlgate.markdown import code, inert
from mlgate.model.manifest import PromotionError, manifest_path, promotion_manifest, pushed_manifests, read_manifest
from mlgate.model.registry import ModelRegistry, ModelVersion, RegistryLogin
from mlgate.model.target import ModelTarget
from mlgate.publish import Finished, Publication, finish
from mlgate.report_blocks import COMMENT_LIMIT, NO_GATES, fit, footer, plain_text
from mlgate.settings import PromoteSettings

if TYPE_CHECKING:
    from mlgate.model.report import Action, ModelReport

SCHEMA_VERSION = "2"


class PromotionRaced(PromotionError):
    """Raised by :func:`carry_out` when the promotion alias moved to another version while the candidate
    was being gated, e.g. by a second gate run promoting another staged model at the same time.

    Exit 2, not 3: W&B answered fine, but the verdict compared the candidate with a version that is
    no longer production, so it must not be applied; only a new gate run, measured against the new
    holder, can decide. Nothing was linked.
    """

    title = "Production moved while gating"
    exit_code = ExitCode.ERROR


class DigestMismatch(PromotionError):
    """Raised by :func:`run_promote` when the registry's digest of a manifest's artifact is not the one the
    manifest pinned: the version's files changed after the gate measured them. Nothing is linked."""

    title = "Artifact changed since it was gated"
    exit_code = ExitCode.ERROR


class Promotion(BaseModel):
    artifact: str
    collection: str
    alias: str
    manifest: str
    linked: bool
    """False when the alias already pointed at this version (a rerun)."""
    digest: str | None = None
    """The artifact's digest in the registry when it was linked."""
    digest_verified: bool = False
    """True when it equals the digest the manifest pinned at gate time; False for a manifest without one."""


class PromoteReport(BaseModel):
    """report.json of `mode: promote` (schemas/promote-report.schema.json)."""

    schema_version: str = SCHEMA_VERSION
    title: str
    passed: bool = True
    promotions: list[Promotion]


def run_promote(settings: PromoteSettings, ctx: RunContext, clients: Clients) -> ExitCode:
    """Link what each changed manifest names; a rerun finds the alias in place and does nothing."""
    publication = Publication.for_run(settings, ctx, clients)  # `out` is checked before anything is linked
    manifests = {rel: ctx.in_workspace(rel, "manifest")  # every one checked before the first is applied
                 for rel in ([settings.manifest] if settings.manifest else pushed_manifests(ctx.event))}
    promotions: list[Promotion] = []
    if manifests:
        registry = clients.registry(RegistryLogin(settings.wandb_api_key, settings.wandb_base_url), clients.env)
        read = {rel: read_manifest(path) for rel, path in manifests.items()}
        # every artifact checked against the digest its gate measured before the first is linked
        digests = {rel: _verify_digest(registry, rel, manifest) for rel, manifest in read.items()}
        for rel, manifest in read.items():
            if "compared_with" in manifest:  # the approval was for replacing that version: is it still there?
                _check_holder(registry, manifest["collection"], manifest["alias"], manifest["artifact"],
                              manifest["compared_with"])
            linked = registry.link(manifest["artifact"], manifest["collection"], manifest["alias"])
            promotions.append(Promotion(artifact=manifest["artifact"], collection=manifest["collection"],
                                        alias=manifest["alias"], manifest=rel.as_posix(), linked=linked,
                                        digest=digests[rel], digest_verified=bool(manifest.get("digest"))))
    report = PromoteReport(title=settings.report_title, promotions=promotions)
    markdown = render_markdown(report)
    return finish(Finished(
        passed=True, report_json=report.model_dump_json(indent=2), render=lambda links, note: markdown,
        outputs={"model": "\n".join(p.artifact for p in promotions)}, comment="off", headline=promote_outcome(report),
        gated=bool(promotions),  # a check run concludes `neutral` when nothing was to be promoted
    ), publication, ctx)


def _verify_digest(registry: ModelRegistry, rel: Path, manifest: Mapping[str, Any]) -> str | None:
    """The registry's digest of the manifest's artifact, after checking it is the one the manifest pinned.

    Raises :class:`DigestMismatch` when it is not. A manifest without a digest (written before mlgate
    pinned one) is still applied, with a warning that what is linked could not be checked against what
    was gated."""
    artifact = manifest["artifact"]
    pinned = manifest.get("digest")
    current = registry.resolve(artifact).digest
    if not isinstance(pinned, str) or not pinned:
        workflow.annotate("warning", "Artifact not verified",
                          f"Promotion manifest {rel.as_posix()} pins no artifact digest (it was written by an older "
                          f"mlgate), so `{artifact}` cannot be checked against the version that was gated. "
                          "Rerun the gate to get a manifest with its digest.")
        return current
    if current != pinned:
        raise DigestMismatch(
            f"`{artifact}` has digest {current or 'none'} in the registry, but promotion manifest {rel.as_posix()} "
            f"pinned digest {pinned} when the gate measured it: the artifact's files changed since it was gated. "
            "Nothing was linked.",
            hint="Rerun the gate on the version as it is now (the model-gate workflow with `on-pass: pull-request`) "
            "and merge the pull request it opens; or restore the artifact that was approved.",
        )
    return current


def render_markdown(report: PromoteReport) -> str:
    if not report.promotions:
        return f"## ➖ {inert(report.title)}\n\nNo promotion manifest changed; nothing to do.\n\n{footer()}\n"
    lines = [f"- {code(p.artifact)} " + (f"now holds {code(p.alias)} in {code(p.collection)}." if p.linked
                                     else f"already held {code(p.alias)} in {code(p.collection)}: nothing to do.")
             + (f" Digest {code(p.digest)}: the one the gate measured." if p.digest_verified
                else " Not verified: the manifest pins no digest.")
             for p in report.promotions]
    return f"## ✅ {inert(report.title)}\n\n" + "\n".join(lines) + f"\n\n{footer()}\n"


def promote_outcome(report: PromoteReport) -> str:
    """The plain-text outcome of ``mode: promote``: how many aliases moved, then one line per manifest."""
    if not report.promotions:
        return "mlgate promote: nothing to do · no promotion manifest changed"
    linked = sum(p.linked for p in report.promotions)
    lines = [f"mlgate promote: {linked} of {len(report.promotions)} promotion(s) applied"]
    lines += [plain_text(f"{p.artifact} " + (f"now holds {p.alias} in {p.collection}" if p.linked
                                             else f"already held {p.alias} in {p.collection}: nothing to do"))
              for p in report.promotions]
    return "\n".join(lines)


def _gates_verdict(report: ModelReport) -> str:
    """What passing meant: ``all 2 gates passed``, or that there was no gate to pass."""
    if not report.gates:
        return NO_GATES
    return "the gate passed" if len(report.gates) == 1 else f"all {len(report.gates)} gates passed"


@dataclasses.dataclass(frozen=True)
class PromotionPolicy:
    """What a gated model earns, from ``on-pass``, ``promote-alias`` and ``on-fail-alias``."""

    on_pass: Literal["promote", "pull-request", "none"]
    promote_alias: str
    on_fail_alias: str | None = None


def check_action(policy: PromotionPolicy, target: ModelTarget, publication: Publication) -> None:
    """Refuse an ``on-pass``/``on-fail-alias`` that could never be carried out, before measuring."""
    if policy.on_pass in ("promote", "pull-request") and (target.is_local or target.collection is None):
        raise PromotionError(
            f"`on-pass: {policy.on_pass}` needs a W&B model and a registry collection to promote into; "
            f"got model {target.model!r}" + (" (a local file)" if target.is_local else "")
            + f" and collection {target.collection!r}.",
            hint="with:\n  model: wandb-registry-model/<collection>:staging   # or the dispatch payload\n"
            "  registry: wandb-registry-model/<collection>",
        )
    if policy.on_fail_alias and target.is_local:
        raise PromotionError(
            f"`on-fail-alias: {policy.on_fail_alias}` needs a W&B model; {target.model!r} is a local file.",
            hint="Remove `on-fail-alias`, or gate a W&B artifact such as wandb-registry-model/<collection>:staging.",
        )
    if policy.on_pass == "pull-request" and publication.repo is None:
        raise PromotionError(
            f"`on-pass: pull-request` cannot open a pull request: {publication.blocked}.",
            hint="with:\n  github-token: ${{ github.token }}\n"
            "and in the workflow:\npermissions:\n  contents: write\n  pull-requests: write",
        )


@dataclasses.dataclass(frozen=True)
class PromotionPullRequest:
    """The approval pull request, everything but its body's figure links decided."""

    report: ModelReport
    version: str
    path: str
    """The promotion manifest's path in the repository (the model card goes beside it)."""
    files: dict[str, bytes]
    branch: str
    title: str
    body_end: str
    commit_message: str


@dataclasses.dataclass(frozen=True)
class PlannedAction:
    """What :func:`carry_out` does for a gated model, decided by :func:`plan_action` before anything is written.

    ``kind``: ``nothing`` (``result`` says why), ``fail-alias`` (add ``alias`` to ``artifact``),
    ``promote`` (link ``artifact`` into ``collection`` as ``alias`` if its holder is still
    ``compared_with`` or the candidate) or ``pull-request`` (open :attr:`pull_request`).
    """

    on_pass: str
    kind: Literal["nothing", "fail-alias", "promote", "pull-request"]
    result: str
    artifact: str = ""
    collection: str = ""
    alias: str = ""
    compared_with: str | None = None
    pull_request: PromotionPullRequest | None = None


def plan_action(policy: PromotionPolicy, report: ModelReport, target: ModelTarget, version: ModelVersion | None,
                *, registry: bool, compared_with: ModelVersion | None = None) -> PlannedAction:
    """What the final ``report`` earns: the promotion alias, an approval pull request, or the failure alias.

    Pure: nothing is read or written here (``registry``: whether there is one to write to); :func:`carry_out`
    does it. ``compared_with`` is the version that held the promotion alias when the candidate was measured
    (None when none did, or when the candidate itself held it).
    """
    if not report.passed:
        failed = [f"`{g.name}`" for g in report.gates if not g.passed]
        result = f"not promoted: {'gate' if len(failed) == 1 else 'gates'} {', '.join(failed)} failed."
        if policy.on_fail_alias and registry and version is not None:
            # the path the candidate came by: on a registry path the alias shows in the registry
            return PlannedAction(policy.on_pass, "fail-alias", result, artifact=target.model,
                                 alias=policy.on_fail_alias)
        return PlannedAction(policy.on_pass, "nothing", result)
    if policy.on_pass == "none":
        return PlannedAction("none", "nothing", f"{_gates_verdict(report)}; `on-pass: none`, so nothing else was done.")
    # check_action made sure of these before anything was measured
    assert version is not None and target.collection is not None and registry
    then = compared_with.name if compared_with is not None else None
    if policy.on_pass == "promote":
        return PlannedAction("promote", "promote", _gates_verdict(report), artifact=version.name,
                             collection=target.collection, alias=policy.promote_alias, compared_with=then)
    return PlannedAction("pull-request", "pull-request", _gates_verdict(report), pull_request=_pull_request(
        report, version, target.collection, policy.promote_alias, then))


def _pull_request(report: ModelReport, version: ModelVersion, collection: str, alias: str,
                  compared_with: str | None) -> PromotionPullRequest:
    from mlgate.model.card import card_path, render_card  # start-up: `mode: promote` renders no model report

    manifest = promotion_manifest(report, version, collection, alias, compared_with)
    path = manifest_path(collection)
    return PromotionPullRequest(
        report=report, version=version.name, path=path,
        files={path: (json.dumps(manifest, indent=2) + "\n").encode(),
               card_path(path): render_card(report, version, collection, alias).encode()},
        branch=f"mlgate/promote-{Path(path).stem}",
        title=plain_text(f"Promote {version.name} to {alias}"),
        body_end=(
            f"\n\nMerging this pull request links {code(version.name)} into {code(collection)} with the alias "
            f"{code(alias)} (the `mode: promote` workflow on the default branch does it). "
            f"The model card is in {code(card_path(path))}: metrics with intervals, lineage, gates, how measured."
        ),
        commit_message=f"mlgate: promote {version.name} to {alias}",
    )


def carry_out(planned: PlannedAction, registry: ModelRegistry | None, publication: Publication | None,
              figures: Mapping[str, bytes]) -> Action:
    """The one place a model gate's promotion writes: the failure alias, the promotion alias (after
    checking its holder), or the approval pull request (its figures hosted for its body).

    ``on-pass: promote`` reads the holder again right before linking and raises :class:`PromotionRaced`
    when it is neither the version the gate compared with nor the candidate (optimistic concurrency:
    of two staged models gated at once, the second to finish is refused instead of silently replacing
    the first). W&B offers no compare-and-swap on aliases, so a window of one request remains between
    the check and the link. A rerun after a promotion finds the candidate holding the alias and does nothing.
    """
    from mlgate.model.report import Action  # start-up: `mode: promote` renders no model report

    if planned.kind == "nothing":
        return Action(on_pass=planned.on_pass, result=planned.result)
    assert registry is not None
    if planned.kind == "fail-alias":
        registry.add_alias(planned.artifact, planned.alias)
        return Action(on_pass=planned.on_pass,
                      result=planned.result + f" Added alias `{planned.alias}` to `{planned.artifact}`.")
    if planned.kind == "promote":
        _check_holder(registry, planned.collection, planned.alias, planned.artifact, planned.compared_with)
        linked = registry.link(planned.artifact, planned.collection, planned.alias)
        held = f"`{planned.alias}` in `{planned.collection}`"
        result = (f"{planned.result}; promoted: `{planned.artifact}` now holds {held}." if linked
                  else f"{planned.result}; `{planned.artifact}` already holds {held}: nothing to do.")
        return Action(on_pass="promote", result=result)
    assert planned.pull_request is not None and publication is not None
    return _open_pull_request(planned.pull_request, planned.result, publication, figures)


def _check_holder(registry: ModelRegistry, collection: str, alias: str, candidate: str,
                  then: str | None) -> None:
    """Refuse to link unless ``alias`` is still held by ``then`` (what the gate compared with) or ``candidate``."""
    current = registry.version_with_alias(collection, alias)
    now = current.name if current is not None else None
    if now in (then, candidate):
        return
    raise PromotionRaced(
        f"`{alias}` in `{collection}` moved from {then or 'no version'} to {now or 'no version'} while "
        f"gating {candidate}; rerun the gate against the new `{alias}`. Nothing was linked.",
        hint="Another run (or a person) changed the alias after this run measured production. Rerun this "
        "workflow: the gate then compares the candidate with the version that holds it now.",
    )


def _open_pull_request(pr: PromotionPullRequest, verdict: str, publication: Publication,
                       figures: Mapping[str, bytes]) -> Action:
    # start-up: PyGithub and the model report only when a pull request is opened
    from mlgate.github.pulls import default_branch, upsert_pull_request
    from mlgate.model.card import card_path
    from mlgate.model.report import Action, render_markdown

    assert publication.repo is not None
    links, _ = publication.host_figures({f"{name}.png": png for name, png in figures.items()})
    figure_links = {name: links[f"{name}.png"] for name in figures if f"{name}.png" in links}
    body = render_markdown(pr.report, figure_links) + pr.body_end
    url = upsert_pull_request(
        publication.repo, branch=pr.branch, base=default_branch(publication.repo), title=pr.title,
        body=fit(body, COMMENT_LIMIT - 1024, "The full report is in the job summary of the gate run."),
        files=pr.files, commit_message=pr.commit_message,
    )
    return Action(on_pass="pull-request", result=f"{verdict}; approve by merging {url}",
                  pull_request_url=url, model_card=card_path(pr.path))
