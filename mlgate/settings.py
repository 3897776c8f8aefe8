"""Every input of every mode, validated up front.

One pydantic model per mode, all in this module; inputs several modes share are declared once, in a
base model they inherit (``CommonSettings``, ``DatasetInputs``, ``DvcInputs``, ``RegistrySettings``).
Field names are the snake_case form of the action's kebab-case inputs (``min-samples`` ->
``min_samples``); the same models back the CLI flags, action.yml and the README table
(``mlgate.action_metadata``). Settings are built from a plain mapping of input name to string (the
runner's ``INPUT_*`` variables, or parsed CLI flags), and a bad value fails before any work with a
message that names the input, the value, what is allowed and an example.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo

from mlgate.errors import InvalidInput
from mlgate.model.artifact_paths import COLLECTION_PATH
from mlgate.user_code import IMPORT_PATH


def _strict_bool(value: object) -> object:
    """Accept booleans and the strings true/false in any case, nothing else ("yes", "1" are errors)."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError("must be true or false")
    return value


StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]


def _import_path(value: str) -> str:
    if not IMPORT_PATH.fullmatch(value):
        raise ValueError("must be an import path `package.module:ClassName`")
    return value


ImportPath = Annotated[str, AfterValidator(_import_path)]
"""``package.module:ClassName`` of user code imported from the checked-out repository."""


MAX_SHAPE_DIMS = 8
MAX_ITEM_ELEMENTS = 2**24
"""Values in one model input (16,777,216: 64 MiB of float32, e.g. 3×2048×2048)."""
MAX_BATCH_SIZE = 4096
MAX_BATCH_SIZES = 8
MAX_BATCH_ELEMENTS = 2**28
"""Values in the largest timed batch (1 GiB of float32): what a 7 GB runner holds with the model."""
MAX_PREDICTIONS = 100_000
MAX_EVAL_SAMPLES = 1_000_000


def _shape(value: object) -> object:
    """``1,28,28``; also as Python prints it, ``(1, 28, 28)`` or ``[1, 28, 28]``, or ``1x28x28``."""
    if not isinstance(value, str):
        return value
    dims = [dim.strip() for dim in re.sub("[x×]", ",", value.strip().strip("()[]")).split(",")]
    if dims[-1] == "" and len(dims) > 1:  # (1,) as Python prints a 1-tuple
        dims.pop()
    if not all(dim.isdigit() and int(dim) > 0 for dim in dims):
        raise ValueError("must be positive whole numbers separated by commas, e.g. `1,28,28`")
    if len(dims) > MAX_SHAPE_DIMS:
        raise ValueError(f"has {len(dims)} dimensions; at most {MAX_SHAPE_DIMS}")
    elements = math.prod(int(dim) for dim in dims)
    if elements > MAX_ITEM_ELEMENTS:
        raise ValueError(f"holds {elements:,} values per item; at most {MAX_ITEM_ELEMENTS:,} "
                         f"({MAX_ITEM_ELEMENTS * 4 // 2**20} MiB of float32)")
    return ",".join(str(int(dim)) for dim in dims)


Shape = Annotated[str, BeforeValidator(_shape)]
"""A tensor shape as comma-separated dimensions, normalised to ``1,28,28``."""


PATH_MAX_BYTES = 4095
"""The longest path the OS opens (Linux ``PATH_MAX`` is 4096 bytes with the terminating NUL)."""
NAME_MAX_BYTES = 255
"""The longest name of one folder or file (Linux ``NAME_MAX``)."""
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")


def _path_text(value: str) -> str:
    """Cheap checks any path input passes before the workspace is known: no line breaks or control
    characters, no ``..``, and a length the OS can open. Whether it stays inside the workspace after
    following symlinks is :meth:`mlgate.context.RunContext.in_workspace`'s check."""
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain line breaks or control characters")
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > PATH_MAX_BYTES:
        raise ValueError(f"is {size:,} bytes long; a path may be at most {PATH_MAX_BYTES:,} bytes")
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in value.split("/")), default=0)
    if longest > NAME_MAX_BYTES:
        raise ValueError(f"has a folder or file name of {longest:,} bytes; a name may be at most {NAME_MAX_BYTES}")
    if ".." in Path(value).parts:
        raise ValueError("must stay inside the workspace (no `..`)")
    return value


def _workspace_path(value: object) -> object:
    return _path_text(value) if isinstance(value, str) else value


WorkspacePath = Annotated[Path, BeforeValidator(_workspace_path)]
"""A path input: relative to the workspace (the checkout); in Actions it must stay inside it."""


def example(value: str) -> Any:
    return {"example": value}


class CommonSettings(BaseModel):
    """Inputs every mode understands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: str = Field(description="What to do: `data-stats`, `model-gate`, `promote` or `publish`.")
    github_token: SecretStr | None = Field(
        None, description="Token for comments, figures and pull requests.",
        json_schema_extra=example("${{ github.token }}"),
    )
    title: str = Field(
        "", max_length=200,
        description="Report title; also tells sticky comments of several steps apart. One line, at most 200 "
        "characters.", json_schema_extra=example("MNIST data"),
    )
    comment: Literal["update", "new", "off"] = Field(
        "update", description="Pull-request comment: `update` one sticky comment, post a `new` one, or `off`."
    )
    host_figures: StrictBool = Field(
        True, description="Commit figures to an orphan branch of this repository and link them in the comment."
    )
    check_run: StrictBool = Field(
        True, description="Also post the verdict as a check run on the commit (needs `checks: write`; "
        "skipped with a notice without it).",
    )
    assets_branch: str = Field(
        "mlgate-assets", pattern=r"^[A-Za-z0-9._/-]+$",
        description="Branch that holds hosted figures and cached statistics.",
    )
    out: WorkspacePath = Field(
        Path("mlgate-report"), description="Folder for report.md, report.json and the figures, inside the "
        "workspace; never a data folder (`data`, `eval-data`, `baseline-data`, `cache-dir`) or one around it.",
        json_schema_extra=example("mlgate-report"),
    )

    default_title: ClassVar[str] = "mlgate"

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if _CONTROL_CHARACTERS.search(value):
            raise ValueError("must be one line, without control characters")
        return value

    @property
    def report_title(self) -> str:
        return self.title or self.default_title


Layout = Literal["auto", "course", "imagefolder", "npz", "dataset-class"]


class DatasetInputs(BaseModel):
    """How to read a dataset: data-stats reads ``data``, model-gate reads ``eval-data`` the same way."""

    layout: Layout = Field("auto", description="Dataset layout; `auto` detects it.")
    dataset_class: ImportPath | None = Field(
        None, description="A `torch.utils.data.Dataset` to load the data with, as `module:Class`.",
        json_schema_extra=example("mypkg.data:MnistDataset"),
    )


MAX_WORKERS = 256


def _workers(value: object) -> object:
    if value == "auto":
        return value
    try:
        count = int(str(value).strip())
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS or isinstance(value, (bool, float)):
        raise ValueError(f"must be `auto` or a whole number from 1 to {MAX_WORKERS}, e.g. `workers: 4`")
    return count


Workers = Annotated[Literal["auto"] | int, BeforeValidator(_workers)]
"""``auto`` (the cores this process may use) or a number of worker processes."""


def _ray_address(value: str) -> str:
    value = value.strip()
    if value == "auto" or re.fullmatch(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", value):
        return value
    raise ValueError("must be `ray://HOST:PORT` (the head's Ray Client port, usually 10001), `HOST:PORT` (the head's "
                     "GCS port, when this runner is a node of the cluster), or `auto` (the RAY_ADDRESS variable), "
                     "e.g. `ray-address: ray://raycluster-mlgate-head-svc:10001`")


RayAddress = Annotated[str, AfterValidator(_ray_address)]
"""Where the Ray cluster's head answers: ``ray://HOST:PORT``, ``HOST:PORT`` or ``auto``."""

DVC_TIMEOUT_MAX = 21_600
"""Six hours, the longest a job on a GitHub-hosted runner may run."""


class DvcInputs(BaseModel):
    """How to get data kept in DVC: data-stats pulls ``data``, model-gate pulls ``eval-data``."""

    dvc_pull: Literal["auto", "true", "false", "stream"] = Field(
        "auto", description="Run `dvc pull` for the data first (`data`, `eval-data`); `auto` pulls when "
        "DVC tracks it; `stream` (data-stats, ImageFolder) reads the files straight from the DVC remote, "
        "never writing them to disk (model-gate pulls).",
    )
    gcp_credentials: SecretStr | None = Field(
        None, description="Google service-account key or workload-identity (`external_account`) file (JSON) for a "
        "`gs://` DVC remote; empty: the file an earlier `google-github-actions/auth` step exported, if any.",
        json_schema_extra=example("${{ secrets.GCP_SA_KEY }}"),
    )
    dvc_timeout: int = Field(
        1800, ge=1, le=DVC_TIMEOUT_MAX,
        description=f"Seconds one DVC download (`dvc pull`, the base branch's data) may take before it is "
        f"stopped; at most {DVC_TIMEOUT_MAX}.", json_schema_extra=example("3600"),
    )


class DataStatsSettings(DatasetInputs, DvcInputs, CommonSettings):
    """Inputs of `mode: data-stats`."""

    default_title: ClassVar[str] = "Data report"
    mode: Literal["data-stats"] = "data-stats"  # narrowed per mode
    data: WorkspacePath = Field(description="Dataset folder, relative to the repository root (inside the "
                                "workspace).", json_schema_extra=example("data/processed"))
    compare_base: StrictBool = Field(True, description="On a pull request, compare with the base branch's data.")
    baseline_data: WorkspacePath | None = Field(
        None, description="A local copy of the dataset to compare against (instead of the base branch), "
        "inside the workspace.",
        json_schema_extra=example("old-data/processed"),
    )
    cache_dir: WorkspacePath = Field(
        Path(".mlgate-cache"),
        description="Folder for statistics cached by DVC content hash and for the shard states that let a "
        "changed dataset be re-read in part (keep it with `actions/cache`), inside the workspace.",
        json_schema_extra=example(".mlgate-cache"),
    )
    min_samples: int | None = Field(None, ge=0, description="Gate: fewest items any split may have.",
                                    json_schema_extra=example("1000"))
    max_imbalance: float | None = Field(
        None, ge=1, description="Gate: largest allowed ratio of the biggest to the smallest class in any split.",
        json_schema_extra=example("3"),
    )
    fail_on_leakage: StrictBool = Field(False, description="Gate: fail when test items also occur in train.")
    fail_on_duplicates: StrictBool = Field(False, description="Gate: fail on exact duplicates within a split.")
    fail_on_nonfinite: StrictBool = Field(False, description="Gate: fail on NaN or Inf values.")
    baseline_train: StrictBool = Field(
        False, description="Train a small model on train and evaluate on test: does it learn at all?"
    )
    baseline_time_budget: float = Field(60.0, gt=0, le=3600,
                                        description="Seconds the sanity baseline and the search for likely label "
                                        "errors may take together (the baseline up to three quarters); at most 3600.",
                                        json_schema_extra=example("120"))
    samples_per_class: int = Field(4, ge=1, le=16, description="Images per class in the sample grid; 1 to 16.",
                                   json_schema_extra=example("8"))
    workers: Workers = Field(
        "auto", description=f"Processes that read and measure the data: `auto` = the cores this job may use; "
        f"or 1 to {MAX_WORKERS}.", json_schema_extra=example("4"),
    )
    engine: Literal["local", "ray"] = Field(
        "local", description="Where the shards are read and measured: `local` (this runner, `workers` processes) or "
        "`ray` (as Ray tasks on the cluster at `ray-address`, reading the data with the cluster's own identity).",
    )
    ray_address: RayAddress | None = Field(
        None, validate_default=True, description="The Ray cluster for `engine: ray`: `ray://HOST:10001` (the "
        "head's Ray Client port), or `auto` for the `RAY_ADDRESS` variable.", json_schema_extra=example("ray://raycluster-mlgate-head-svc:10001"),
    )
    max_label_drift: float | None = Field(
        None, ge=0, le=1, description="Gate: largest total variation distance between the base and head label "
        "distributions of any split (0 to 1; 0.05 = 5 % of items would have to change class).",
        json_schema_extra=example("0.05"),
    )
    max_pixel_drift: float | None = Field(
        None, ge=0, le=1, description="Gate: largest Kolmogorov-Smirnov statistic between the base and head "
        "pixel-intensity distributions of any split (0 to 1).", json_schema_extra=example("0.1"),
    )
    fail_on_near_leakage: StrictBool = Field(
        False, description="Gate: fail when test items are near-duplicates of train items (re-encoded, shifted by "
        "a pixel, brightened).",
    )
    near_duplicate_distance: float = Field(
        0.08, ge=0, le=1, description="Largest pixel distance (0 to 1) at which two images count as near copies, "
        "one scale for every kind of image: half the RMS difference of their 32×32 grey thumbnails, brightness and "
        "contrast normalised, at the best alignment (moves up to a pixel; for framed pictures such as photographs "
        "and faces also both blurred by 1.25 px, moves up to 1.5 px and zooms 0.94-1.06); 0 is the same picture, "
        "about 0.7 unrelated ones. Copies of MNIST digits measure at most 0.06, the closest distinct digits about "
        "0.097.",
        json_schema_extra=example("0.08"),
    )

    @field_validator("data")
    @classmethod
    def _absolute_exists(cls, value: Path) -> Path:
        if value.is_absolute() and not value.exists():
            raise ValueError("folder does not exist")
        return value

    @field_validator("layout", "dataset_class")
    @classmethod
    def _stream_reads_imagefolder(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("dvc_pull") == "stream" and value not in (None, "auto", "imagefolder"):
            raise ValueError("`dvc-pull: stream` reads ImageFolder data only; set `dvc-pull: true` to pull "
                             "the data instead")
        return value

    @field_validator("ray_address")
    @classmethod
    def _ray_needs_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("engine") == "ray":
            raise ValueError("`engine: ray` needs the cluster's address: `ray://HOST:10001` (the head's Ray Client "
                             "port) or `auto` (the RAY_ADDRESS variable)")
        return value


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
        if value is not None and not COLLECTION_PATH.fullmatch(value):
            raise ValueError("must be `wandb-registry-model/<collection>` or `entity/model-registry/<name>`")
        return value


class ModelGateSettings(DatasetInputs, DvcInputs, RegistrySettings):
    """Inputs of `mode: model-gate`."""

    default_title: ClassVar[str] = "Model gate"
    mode: Literal["model-gate"] = "model-gate"  # narrowed per mode
    model: Annotated[str, AfterValidator(_path_text)] | None = Field(
        None, description="W&B artifact (`entity/project/name:v3`, `wandb-registry-model/coll:staging`) "
        "or a model file inside the workspace; default from the `repository_dispatch` payload.",
        json_schema_extra=example("wandb-registry-model/mnist:staging"),
    )
    model_class: ImportPath | None = Field(
        None, description="`module:Class` of the network, for a state_dict or Lightning checkpoint.",
        json_schema_extra=example("mypkg.models:MyCNN"),
    )
    model_kwargs: str = Field("{}", description="JSON object of constructor arguments for `model-class`.",
                              json_schema_extra=example('{"hidden": 128}'))
    trust_pickle: StrictBool = Field(False, description="Allow a fully pickled model (runs code from the file).")
    eval_data: WorkspacePath | None = Field(
        None, description="Evaluation data inside the workspace, any layout data-stats reads.",
        json_schema_extra=example("data/processed"),
    )
    eval_split: str = Field("test", pattern=r"^[\w.-]+$", description="Split of `eval-data` to evaluate on.")
    input_shape: Shape | None = Field(
        None, description="Shape of one model input without the "
        "batch dimension, e.g. `1,28,28` (`1,1,28,28` works too when the eval data agrees); default from the "
        f"eval data. At most {MAX_SHAPE_DIMS} dimensions and {MAX_ITEM_ELEMENTS:,} values.",
        json_schema_extra=example("1,28,28"),
    )
    predictions: int = Field(100, ge=1, le=MAX_PREDICTIONS,
                             description=f"Single predictions timed for latency; at most {MAX_PREDICTIONS:,}.",
                             json_schema_extra=example("1000"))
    batch_sizes: str = Field(
        "1,32", description=f"Batch sizes for throughput: at most {MAX_BATCH_SIZES}, each 1 to {MAX_BATCH_SIZE}, "
        f"and the largest batch at most {MAX_BATCH_ELEMENTS:,} values (batch size × input values).",
        json_schema_extra=example("1,32,256"),
    )
    threads: int = Field(1, ge=1, le=256, description="torch threads used while measuring; 1 to 256.",
                         json_schema_extra=example("2"))
    max_eval_samples: int = Field(10_000, ge=1, le=MAX_EVAL_SAMPLES,
                                  description=f"Evaluate on at most this many items; at most {MAX_EVAL_SAMPLES:,}.",
                                  json_schema_extra=example("10000"))
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
    gate_significance: float | None = Field(
        None, gt=0, lt=0.5, description="Relative gates (`max-accuracy-drop`, `max-latency-regression`) fail only "
        "when the regression exceeds the threshold at this significance level (0.05 = 95 % confidence).",
        json_schema_extra=example("0.05"),
    )
    require_data_lineage: StrictBool = Field(
        False, description="Gate: the run that logged the model must have used the data version `eval-data` "
        "has in this repository (DVC hash).",
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

    @field_validator("batch_sizes", mode="before")
    @classmethod
    def _batch_sizes(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        sizes = [size.strip() for size in value.split(",")]
        if not all(size.isdigit() for size in sizes):
            raise ValueError("must be whole numbers separated by commas, e.g. `1,32`")
        numbers = [int(size) for size in sizes]
        if len(numbers) > MAX_BATCH_SIZES:
            raise ValueError(f"lists {len(numbers)} sizes; at most {MAX_BATCH_SIZES}")
        if not all(1 <= size <= MAX_BATCH_SIZE for size in numbers):
            raise ValueError(f"each size must be 1 to {MAX_BATCH_SIZE}")
        shape = info.data.get("input_shape")
        if shape:
            values = max(numbers) * math.prod(int(dim) for dim in shape.split(","))
            if values > MAX_BATCH_ELEMENTS:
                raise ValueError(
                    f"with `input-shape: {shape}` a batch of {max(numbers):,} holds {values:,} values; "
                    f"at most {MAX_BATCH_ELEMENTS:,} ({MAX_BATCH_ELEMENTS * 4 // 2**30} GiB of float32)")
        return ",".join(map(str, numbers))

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

    default_title: ClassVar[str] = "Promotion"
    mode: Literal["promote"] = "promote"  # narrowed per mode
    manifest: WorkspacePath | None = Field(
        None, description="Promotion manifest inside the workspace to apply; default: those changed by the "
        "pushed commit.",
        json_schema_extra=example(".mlgate/promotions/mnist.json"),
    )


class PublishSettings(CommonSettings):
    """Inputs of `mode: publish` (a trusted `workflow_run` posting the report of a fork's run)."""

    default_title: ClassVar[str] = ""  # the bundle's title unless `title` is set
    mode: Literal["publish"] = "publish"  # narrowed per mode
    report_dir: WorkspacePath = Field(
        description="Report folder a fork's run uploaded (downloaded with actions/download-artifact); "
        "only read, checked and posted.",
        json_schema_extra=example("fork-report"),
    )


SETTINGS_BY_MODE: dict[str, type[CommonSettings]] = {
    "data-stats": DataStatsSettings,
    "model-gate": ModelGateSettings,
    "promote": PromoteSettings,
    "publish": PublishSettings,
}
MODES: tuple[str, ...] = tuple(SETTINGS_BY_MODE)


def input_name(field: str) -> str:
    return field.replace("_", "-")


def inputs_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The action's inputs as the runner passes them: ``INPUT_DATA-PATH`` or ``INPUT_DATA_PATH``.

    Empty strings count as unset, so an action.yml default of ``""`` never overrides a model default.
    Two spellings of one input (``INPUT_MIN-SAMPLES`` and ``INPUT_MIN_SAMPLES``) may both be set
    only to the same value; different values raise :class:`InvalidInput` naming both variables.
    """
    inputs: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith("INPUT_") or value.strip() == "":
            continue
        name = key[len("INPUT_"):].lower().replace("_", "-")
        if name in inputs and inputs[name] != value.strip():
            first = spelled[name]
            secret = _is_secret(name.replace("-", "_"))
            shown = "" if secret else f" ({inputs[name]!r} and {value.strip()!r})"
            raise InvalidInput(
                f"Input `{name}` is set twice with different values{shown}: as {first} and as {key}. "
                "The runner passes `with:` inputs as INPUT_<NAME>; an `env:` entry of the other spelling "
                "conflicts with it.",
                hint=f"Give `{name}` one value: set it under `with:` and remove the other spelling from "
                f"`env:`.\nExample:\n  with:\n    {name}: {input_example(name) or '...'}",
            )
        inputs[name] = value.strip()
        spelled.setdefault(name, key)
    return inputs


def input_example(name: str) -> str | None:
    """The example value documented for input ``name`` (kebab-case), from whichever mode declares it."""
    for model in SETTINGS_BY_MODE.values():
        info = model.model_fields.get(name.replace("-", "_"))
        extra = info.json_schema_extra if info is not None else None
        if isinstance(extra, dict) and "example" in extra:
            return str(extra["example"])
    return None


def _is_secret(field: str) -> bool:
    return "credentials" in field or "token" in field or "key" in field


def load_settings(inputs: Mapping[str, str]) -> CommonSettings:
    """Validate ``inputs`` (kebab-case name -> string) into the settings model of their mode."""
    mode = inputs.get("mode", "")
    if mode not in MODES:
        raise InvalidInput(
            f"Input `mode` is {mode!r}; allowed: {', '.join(MODES)}.",
            hint="Example:\n  with:\n    mode: data-stats\n    data: data/processed",
        )
    model = SETTINGS_BY_MODE[mode]
    fields = {
        name.replace("-", "_"): value for name, value in inputs.items()
        if name.replace("-", "_") in model.model_fields or value != action_defaults().get(name)
    }
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(_explain(exc, model, inputs), hint=_hint(exc, model, mode)) from None


TOKEN_DEFAULT = "${{ github.token }}"
"""What the runner substitutes for ``github-token`` when the workflow does not set it."""


def default_text(info: FieldInfo) -> str | None:
    """A field's default written as an input value (``true``, ``60``, ``mlgate-report``); None when unset."""
    if info.is_required() or info.default is None or info.default == "":
        return None
    value = info.default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


@functools.cache
def action_defaults() -> dict[str, str]:
    """Input name -> the default value the runner passes for it when the workflow leaves it out.

    action.yml has one ``inputs:`` block for every mode, so the runner passes every input's default,
    also those of other modes (the first mode that declares an input gives its default, as in
    :func:`mlgate.action_metadata.input_docs`)."""
    defaults: dict[str, str] = {}
    for mode in MODES:
        for field, info in SETTINGS_BY_MODE[mode].model_fields.items():
            name = input_name(field)
            default = TOKEN_DEFAULT if name == "github-token" else default_text(info)
            if name != "mode" and default is not None:
                defaults.setdefault(name, default)
    return defaults


def _allowed(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    if info is None:
        return "not an input of this mode"
    schema = model.model_json_schema()["properties"].get(field, {})
    options = schema.get("anyOf", [])
    named = ["enum" in option or "const" in option for option in options]
    if any(named) and not all(named):
        return ""  # a word or a number (`workers`): the validator's own message says which
    choices = schema.get("enum") or [
        option["enum"][0] if "enum" in option else option.get("const") for option in options
    ]
    if choices:
        return "one of " + ", ".join(f"`{c}`" for c in choices if c is not None)
    return info.description or ""


def _explain(exc: ValidationError, model: type[BaseModel], inputs: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = input_name(field)
        if error["type"] == "extra_forbidden":
            lines.append(
                f"Input `{name}` is not used by `mode: {inputs.get('mode')}`; remove it "
                f"or check its spelling. Inputs of this mode: "
                + ", ".join(f"`{input_name(f)}`" for f in model.model_fields)
            )
            continue
        if error["type"] == "missing":
            lines.append(f"Input `{name}` is required for `mode: {inputs.get('mode')}`.")
            continue
        shown = "(hidden)" if _is_secret(field) else _shown(inputs.get(name, ""))
        allowed = _allowed(model, field).rstrip(".")
        lines.append(f"Input `{name}` is {shown}: {error['msg'].removeprefix('Value error, ')}."
                     + (f" Allowed: {allowed}." if allowed else ""))
    return "\n".join(lines)


def _shown(value: str, limit: int = 120) -> str:
    """A value as the error quotes it: whole when short, else its start and its length."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit - 20]!r}… ({len(value):,} characters)"


def _hint(exc: ValidationError, model: type[BaseModel], mode: str) -> str:
    examples = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        info = model.model_fields.get(field)
        extra = info.json_schema_extra if info is not None else None
        if isinstance(extra, dict) and "example" in extra:
            examples.append(f"    {input_name(field)}: {extra['example']}")
        elif info is not None and info.annotation is not None and "bool" in str(info.annotation):
            examples.append(f"    {input_name(field)}: true")
    if not examples:
        return ""
    return "Example:\n  with:\n    mode: " + mode + "\n" + "\n".join(examples)
