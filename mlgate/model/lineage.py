"""Model lineage: which data the candidate was trained on, against the data version in this repository.

W&B knows which run logged the candidate and which artifacts that run used
(:meth:`~mlgate.model.registry.ModelRegistry.lineage`); the training script may also have written the
DVC hash of its data into the run config or into artifact metadata. These keys are read, in this order
(a value counts when it is a hex digest of 8 to 128 characters, DVC's ``.dir`` suffix allowed):

- the run config (``wandb.config``): :data:`CONFIG_KEYS`;
- the candidate model artifact's metadata: :data:`MODEL_METADATA_KEYS` (not ``md5``: on a model
  artifact that is as likely the model file's own hash);
- the metadata of each artifact the run used whose type names data (``dataset``, ``data``, ``raw-data``,
  ...): :data:`DATASET_METADATA_KEYS`.

Hashes are compared after normalising (lower case, DVC's ``.dir`` suffix dropped) with DVC's hash of
the output covering ``eval-data`` (:meth:`~mlgate.data.dvc.DvcRunner.content_hash`): the verdict is
``matches`` when any logged hash equals it, ``differs`` when none does, ``unknown`` when either side
is missing. :func:`lineage_gate` turns the verdict into the ``require-data-lineage`` gate.

:func:`read_lineage` is the I/O rim (W&B and the DVC files); :func:`judge` and :func:`lineage_gate` are
pure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from mlgate.model.registry import Lineage, LineageRun, ModelRegistry, ModelVersion, RegistryError, RegistryUnavailable
from mlgate.report_blocks import Gate

if TYPE_CHECKING:
    from mlgate.data.dvc import DvcRunner

CONFIG_KEYS = ("data_md5", "dvc_md5", "data_hash", "data_version")
MODEL_METADATA_KEYS = ("data_md5", "dvc_md5", "data_hash")
DATASET_METADATA_KEYS = ("md5", "dvc_md5", "data_md5", "data_hash")
GATE = "require-data-lineage"
_HASH = re.compile(r"[0-9a-f]{8,128}")
_FIX = (
    "log the data version in the training script: `wandb.config['data_md5'] = <md5 of the data folder from its "
    ".dvc file>`, or `run.use_artifact(...)` of a dataset artifact whose metadata holds `md5`"
)

Verdict = Literal["matches", "differs", "unknown"]


class DataHash(BaseModel):
    """One data hash the training run logged, and where it was read."""

    value: str
    """Normalised: lower case, without DVC's ``.dir`` suffix."""
    logged: str
    """As logged."""
    source: str
    """``run config `data_md5```, ``model metadata `dvc_md5```, ``dataset team/mnist/data:v3 metadata `md5```."""


class DatasetUsed(BaseModel):
    """A data artifact the run used (``run.use_artifact``)."""

    name: str
    type: str
    digest: str | None
    """W&B's manifest digest (not comparable with DVC's hash)."""
    hashes: dict[str, str]
    """The hash keys found in its metadata, as logged."""


class DataLineage(BaseModel):
    """``lineage`` in report.json: the run that logged the candidate, its data, and the verdict."""

    run: LineageRun | None
    datasets: list[DatasetUsed]
    hashes: list[DataHash]
    ignored: list[str]
    """Values under a hash key that are not a hash (e.g. ``data_version: "v3"``), named with their source."""
    eval_data: str | None
    repository_hash: str | None
    """DVC's hash of ``eval-data`` in the checked-out repository, as DVC writes it."""
    verdict: Verdict
    reason: str
    """One sentence: what was compared, or why nothing could be."""


def normalise(value: str) -> str:
    """A hash for comparison: trimmed, lower case, DVC's ``.dir`` suffix (folders) dropped."""
    text = value.strip().lower()
    return text.removesuffix(".dir")


def short(value: str) -> str:
    """A hash for a sentence: the first 8 characters (DVC's ``.dir`` kept visible)."""
    suffix = ".dir" if value.endswith(".dir") else ""
    core = value.removesuffix(".dir")
    return value if len(core) <= 12 else f"{core[:8]}…{suffix}"


def is_data_type(artifact_type: str) -> bool:
    """Artifact types that hold data: ``dataset``, ``data``, ``raw-data``, ``training_data`` ..."""
    return "data" in artifact_type.lower()


def _collect(values: dict[str, Any], keys: tuple[str, ...], where: str,
             hashes: list[DataHash], ignored: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in keys:
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, str) and _HASH.fullmatch(normalise(value)):
            found[key] = value
            hashes.append(DataHash(value=normalise(value), logged=value, source=f"{where} `{key}`"))
        else:
            ignored.append(f"{where} `{key}` = {str(value)[:40]!r} (not a hash)")
    return found


def judge(lineage: Lineage | None, model_metadata: dict[str, Any], *, eval_data: str | None,
          repository_hash: str | None, no_repository_hash: str = "", no_lineage: str = "") -> DataLineage:
    """Read the data hashes out of ``lineage`` and compare them with ``repository_hash``.

    ``no_repository_hash`` says why there is no repository hash (``eval-data`` not tracked by DVC);
    ``no_lineage`` why there is no lineage at all (a model file, W&B refused).
    """
    hashes: list[DataHash] = []
    ignored: list[str] = []
    datasets: list[DatasetUsed] = []
    run = lineage.run if lineage else None
    if lineage is not None and run is not None:
        _collect(lineage.config, CONFIG_KEYS, "run config", hashes, ignored)
    _collect(model_metadata, MODEL_METADATA_KEYS, "model metadata", hashes, ignored)
    for used in lineage.used if lineage else []:
        if not is_data_type(used.type):
            continue
        found = _collect(used.metadata, DATASET_METADATA_KEYS, f"dataset {used.name} metadata", hashes, ignored)
        datasets.append(DatasetUsed(name=used.name, type=used.type, digest=used.digest, hashes=found))
    repo = normalise(repository_hash) if repository_hash else None
    verdict: Verdict
    if lineage is None:
        verdict, reason = "unknown", no_lineage or "no lineage was read"
    elif not hashes:
        verdict = "unknown"
        read = (f"read: run config {_keys(CONFIG_KEYS)}; model metadata {_keys(MODEL_METADATA_KEYS)}; "
                f"metadata {_keys(DATASET_METADATA_KEYS)} of the datasets the run used")
        reason = (f"run {run.project}/{run.id} logged no data hash ({read})" if run else
                  f"no W&B run logged this model version (uploaded without a run, or the run was deleted) and "
                  f"its metadata holds no data hash ({read})")
    elif repo is None:
        verdict = "unknown"
        reason = f"cannot compare: {no_repository_hash or 'eval-data is not tracked by DVC'}"
    elif any(h.value == repo for h in hashes):
        verdict = "matches"
        match = next(h for h in hashes if h.value == repo)
        reason = f"trained on data version {match.logged} ({match.source}), the repository's `{eval_data}`"
    else:
        verdict = "differs"
        logged = ", ".join(f"{h.logged} ({h.source})" for h in hashes)
        reason = f"trained on data version {logged}; the repository's `{eval_data}` is {repository_hash} (DVC)"
    return DataLineage(run=run, datasets=datasets, hashes=hashes, ignored=ignored, eval_data=eval_data,
                       repository_hash=repository_hash, verdict=verdict, reason=reason)


def _keys(keys: tuple[str, ...]) -> str:
    return "/".join(f"`{k}`" for k in keys)


def lineage_gate(lineage: DataLineage | None, required: bool) -> list[Gate]:
    """The ``require-data-lineage`` gate (none when not required): passes only when the verdict is
    ``matches``; the detail names both hashes and how to fix it."""
    if not required:
        return []
    if lineage is None:
        return [Gate(name=GATE, value=None, threshold=True, passed=False,
                     detail=f"no lineage: the model is not a W&B artifact; {_FIX}")]
    value = {"matches": True, "differs": False, "unknown": None}[lineage.verdict]
    if lineage.verdict == "matches":
        return [Gate(name=GATE, value=True, threshold=True, passed=True, detail=lineage.reason)]
    if lineage.verdict == "differs":
        fix = "retrain on the repository's data, or point `eval-data` at the data version the model was trained on"
        return [Gate(name=GATE, value=value, threshold=True, passed=False, detail=f"{lineage.reason}: {fix}")]
    return [Gate(name=GATE, value=value, threshold=True, passed=False, detail=f"{lineage.reason}; {_FIX}")]


def read_lineage(registry: ModelRegistry | None, model: ModelVersion | None, dvc: DvcRunner,
                 eval_data: Path | None, workspace: Path, *, required: bool) -> DataLineage | None:
    """The candidate's lineage judged against ``eval-data``'s DVC hash; None for a model file that no
    gate asks about. W&B failing is a note (the lineage is ``unknown``), unless the gate needs it and
    W&B is unreachable: then :class:`RegistryUnavailable` (exit 3), as for every other W&B call."""
    if model is None or registry is None:
        if not required:
            return None
        return judge(None, {}, eval_data=None, repository_hash=None,
                     no_lineage="the model is a file in the workspace: no W&B run to read")
    try:
        lineage: Lineage | None = registry.lineage(model.name)
        failed = ""
    except RegistryUnavailable:
        if required:
            raise
        lineage, failed = None, "W&B did not answer the lineage queries"
    except RegistryError as exc:
        lineage, failed = None, f"W&B refused the lineage queries: {exc.message}"
    from mlgate.data.dvc import repo_relative  # start-up: DVC's module (and yaml) only when lineage is read

    repo_hash, why = _repository_hash(dvc, eval_data)
    rel = repo_relative(eval_data, workspace) if eval_data is not None else None
    return judge(lineage, model.metadata, eval_data=rel, repository_hash=repo_hash, no_repository_hash=why,
                 no_lineage=failed)


def _repository_hash(dvc: DvcRunner, eval_data: Path | None) -> tuple[str | None, str]:
    """DVC's hash of the output covering ``eval-data`` in the runner's repository, or None and why."""
    from mlgate.data.dvc import DvcError, repo_relative  # start-up: DVC's module (and yaml) only when lineage is read

    if eval_data is None:
        return None, "no `eval-data` given, so there is no repository data version to compare with"
    rel = repo_relative(eval_data, dvc.repo)
    if rel is None:
        return None, f"eval-data {eval_data} is outside the repository"
    if not dvc.is_dvc_repo():
        return None, "eval-data is not tracked by DVC (the repository has no .dvc folder)"
    try:
        value = dvc.content_hash(rel)
    except DvcError as exc:
        return None, f"DVC could not give the hash of `{rel}`: {exc.message}"
    return (value, "") if value else (None, f"eval-data `{rel}` is not tracked by DVC")
