"""Inputs of ``mode: model-gate`` and ``mode: promote`` (registered with mlgate.settings on import)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from mlgate.settings import CommonSettings, ImportPath, StrictBool, example, register_mode

ARTIFACT_PATH = re.compile(r"^[\w.-]+(/[\w.-]+){1,2}(:[\w.-]+)?$")


class RegistrySettings(CommonSettings):
    """What both model modes need to reach the W&B registry."""

    wandb_api_key: SecretStr | None = Field(
        None, description="W&B API key (needed for W&B artifacts).",
        json_schema_extra=example("${{ secrets.WANDB_API_KEY }}"),
    )
    wandb_base_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$", description="W&B server for dedicated or self-hosted W&B.",
        json_schema_extra=example("https://wandb.example.com"),
    )
    registry: str | None = Field(
        None, description="Registry collection to promote into: `wandb-registry-model/<collection>` "
        "or `entity/model-registry/<name>`; default from the dispatch payload.",
        json_schema_extra=example("wandb-registry-model/mnist"),
    )
    promote_alias: str = Field("production", pattern=r"^[\w.-]+$",
                               description="Alias that marks the production model.")

    @field_validator("registry")
    @classmethod
    def _registry_path(cls, value: str | None) -> str | None:
        if value is not None and not ARTIFACT_PATH.fullmatch(value):
            raise ValueError("must be `wandb-registry-model/<collection>` or `entity/model-registry/<name>`")
        return value


class ModelGateSettings(RegistrySettings):
    """Inputs of `mode: model-gate`."""

    mode: Literal["model-gate"] = "model-gate"  # narrowed per mode
    model: str | None = Field(
        None, description="W&B artifact (`entity/project/name:v3`, `wandb-registry-model/coll:staging`) "
        "or a model file in the workspace; default from the `repository_dispatch` payload.",
        json_schema_extra=example("wandb-registry-model/mnist:staging"),
    )
    model_class: ImportPath | None = Field(
        None, description="`module:Class` of the network, for a state_dict or Lightning checkpoint.",
        json_schema_extra=example("mypkg.models:MyCNN"),
    )
    model_kwargs: str = Field("{}", description="JSON object of constructor arguments for `model-class`.",
                              json_schema_extra=example('{"hidden": 128}'))
    trust_pickle: StrictBool = Field(False, description="Allow a fully pickled model (runs code from the file).")
    eval_data: Path | None = Field(None, description="Evaluation data, any layout data-stats reads.",
                                   json_schema_extra=example("data/processed"))
    eval_split: str = Field("test", pattern=r"^[\w.-]+$", description="Split of `eval-data` to evaluate on.")
    layout: Literal["auto", "course", "imagefolder", "npz", "dataset-class"] = Field(
        "auto", description="Dataset layout; `auto` detects it."
    )
    dataset_class: ImportPath | None = Field(None, description="A `torch.utils.data.Dataset` as `module:Class`.",
                                      json_schema_extra=example("mypkg.data:MnistDataset"))
    input_shape: str | None = Field(
        None, pattern=r"^\d+(,\d+)*$", description="Shape of one input without batch, e.g. `1,28,28`; "
        "default from the eval data.", json_schema_extra=example("1,28,28"),
    )
    predictions: int = Field(100, ge=1, le=1_000_000, description="Single predictions timed for latency.")
    batch_sizes: str = Field("1,32", pattern=r"^\d+(,\d+)*$", description="Batch sizes for throughput.")
    threads: int = Field(1, ge=1, le=256, description="torch threads used while measuring.")
    max_eval_samples: int = Field(10_000, ge=1, description="Evaluate on at most this many items.")
    robustness_eps: float | None = Field(None, gt=0, description="Also measure accuracy under noise and FGSM.",
                                         json_schema_extra=example("0.1"))
    max_latency_ms: float | None = Field(None, gt=0, description="Gate: p95 latency of one prediction (ms).",
                                         json_schema_extra=example("5"))
    max_total_seconds: float | None = Field(None, gt=0, description="Gate: seconds for all `predictions`.",
                                            json_schema_extra=example("1"))
    max_size_mb: float | None = Field(None, gt=0, description="Gate: model file size (MB).",
                                      json_schema_extra=example("50"))
    max_params: int | None = Field(None, gt=0, description="Gate: parameter count.",
                                   json_schema_extra=example("1000000"))
    min_accuracy: float | None = Field(None, ge=0, le=1, description="Gate: accuracy on `eval-data`.",
                                       json_schema_extra=example("0.95"))
    max_latency_regression: float | None = Field(
        None, ge=0, description="Gate: p95 may be this much slower than production (0.10 = 10 %).",
        json_schema_extra=example("0.10"),
    )
    max_accuracy_drop: float | None = Field(
        None, ge=0, le=1, description="Gate: accuracy may be this much lower than production.",
        json_schema_extra=example("0.01"),
    )
    on_pass: Literal["promote", "pull-request", "none"] = Field(
        "none", description="When every gate passes: `promote` now, open a `pull-request` to approve, or `none`."
    )
    on_fail_alias: str | None = Field(None, pattern=r"^[\w.-]+$", description="Alias added to a failing model.",
                                      json_schema_extra=example("gate-failed"))

    @field_validator("model_kwargs")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"is not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
        return value

    @property
    def model_kwargs_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.model_kwargs))

    @property
    def batch_size_list(self) -> list[int]:
        return [int(size) for size in self.batch_sizes.split(",")]

    @property
    def input_shape_list(self) -> list[int] | None:
        return [int(dim) for dim in self.input_shape.split(",")] if self.input_shape else None


class PromoteSettings(RegistrySettings):
    """Inputs of `mode: promote` (after a promotion pull request is merged)."""

    mode: Literal["promote"] = "promote"  # narrowed per mode
    manifest: Path | None = Field(
        None, description="Promotion manifest to apply; default: those changed by the pushed commit.",
        json_schema_extra=example(".mlgate/promotions/mnist.json"),
    )


register_mode("model-gate", ModelGateSettings)
register_mode("promote", PromoteSettings)
