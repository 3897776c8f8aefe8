"""The promotion manifest: what an approval pull request proposes and `mode: promote` applies.

A manifest pins a version (``vN`` and its digest), never a moving alias, so what a reviewer approved
is exactly what gets linked after the merge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.errors import MlgateError

if TYPE_CHECKING:
    from mlgate.model.registry import ModelVersion
    from mlgate.model.report import ModelReport

MANIFEST_DIR = ".mlgate/promotions"


class PromotionError(MlgateError):
    """Raised when a promotion cannot be carried out or a manifest is missing, malformed, or failed."""

    title = "Promotion refused"


def manifest_path(collection: str) -> str:
    return f"{MANIFEST_DIR}/{re.sub(r'[^A-Za-z0-9._-]', '_', collection.rsplit('/', 1)[-1])}.json"


def promotion_manifest(report: ModelReport, version: ModelVersion, collection: str, alias: str,
                       compared_with: str | None = None) -> dict[str, Any]:
    """What `mode: promote` applies after the merge: a pinned version (`vN`), never a moving alias.

    ``compared_with`` is the version that held ``alias`` when the candidate was gated (None: none did);
    `mode: promote` refuses to link when the alias has moved since, so two approved pull requests
    cannot both end up holding it.
    """
    return {
        "artifact": version.name, "version": version.version, "digest": version.digest,
        "collection": collection, "alias": alias, "compared_with": compared_with, "passed": report.passed,
        "metrics": {"latency_ms": report.latency_ms.model_dump(), "total_seconds": report.total_seconds,
                    "size_mb": report.size_mb, "params": report.params, "accuracy": report.accuracy},
        "gates": [g.model_dump() for g in report.gates],
    }


def pushed_manifests(event: Mapping[str, Any]) -> Iterator[Path]:
    """Manifests added or modified by the commits of a push event, each once."""
    seen: set[str] = set()
    for commit in event.get("commits") or []:
        for path in [*(commit.get("added") or []), *(commit.get("modified") or [])]:
            if path.startswith(MANIFEST_DIR + "/") and path.endswith(".json") and path not in seen:
                seen.add(path)
                yield Path(path)


def read_manifest(path: Path) -> dict[str, Any]:
    hint = ("A promotion manifest is written by `mode: model-gate` with `on-pass: pull-request`; "
            "merge that pull request unedited, or rerun the gate to open a fresh one.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromotionError(f"Cannot read promotion manifest {path}: {exc}", hint=hint) from exc
    if not isinstance(manifest, dict):
        raise PromotionError(f"Promotion manifest {path} is not a JSON object.", hint=hint)
    wrong = [key for key in ("artifact", "collection", "alias") if not isinstance(manifest.get(key), str)]
    if not isinstance(manifest.get("compared_with", ""), str | None):
        wrong.append("compared_with")
    if wrong or "passed" not in manifest:
        raise PromotionError(f"Promotion manifest {path} lacks {', '.join(wrong or ['passed'])} "
                             "(each must be a string; `passed` a boolean).", hint=hint)
    if manifest["passed"] is not True:
        raise PromotionError(f"Promotion manifest {path} records failed gates; refusing to promote.", hint=hint)
    return dict(manifest)
