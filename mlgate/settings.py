"""Every input of every mode, validated up front.

One pydantic model per mode. Field names are the snake_case form of the action's kebab-case inputs
(``min-samples`` -> ``min_samples``); the same models back the CLI flags, so the action and
``python -m mlgate`` share one definition. Settings are built from a plain mapping of input name to
string (the runner's ``INPUT_*`` variables, or parsed CLI flags), and a bad value fails before any
work with a message that names the input, the value, what is allowed and an example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from mlgate.errors import InvalidInput

Mode = Literal["data-stats", "model-gate", "promote"]
MODES: tuple[str, ...] = ("data-stats", "model-gate", "promote")


def _strict_bool(value: object) -> object:
    """Accept booleans and the strings true/false in any case, nothing else ("yes", "1" are errors)."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError("must be true or false")
    return value


StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _import_path(value: str) -> str:
    if not IMPORT_PATH.fullmatch(value):
        raise ValueError("must be an import path `package.module:ClassName`")
    return value


ImportPath = Annotated[str, AfterValidator(_import_path)]
"""``package.module:ClassName`` of user code imported from the checked-out repository."""


def example(value: str) -> Any:
    return {"example": value}


class CommonSettings(BaseModel):
    """Inputs every mode understands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Field(description="What to do: `data-stats`, `model-gate` or `promote`.")
    github_token: SecretStr | None = Field(
        None, description="Token for comments, figures and pull requests.",
        json_schema_extra=example("${{ github.token }}"),
    )
    title: str = Field(
        "", description="Report title; also tells sticky comments of several steps apart.",
        json_schema_extra=example("MNIST data"),
    )
    comment: Literal["update", "new", "off"] = Field(
        "update", description="Pull-request comment: `update` one sticky comment, post a `new` one, or `off`."
    )
    host_figures: StrictBool = Field(
        True, description="Commit figures to an orphan branch of this repository and link them in the comment."
    )
    assets_branch: str = Field(
        "mlgate-assets", pattern=r"^[A-Za-z0-9._/-]+$",
        description="Branch that holds hosted figures and cached statistics.",
    )
    out: Path = Field(
        Path("mlgate-report"), description="Folder for report.md, report.json and the figures.",
        json_schema_extra=example("mlgate-report"),
    )

    @property
    def report_title(self) -> str:
        return self.title or {"data-stats": "Data report", "model-gate": "Model gate"}.get(self.mode, "mlgate")


class DataStatsSettings(CommonSettings):
    """Inputs of `mode: data-stats`."""

    mode: Literal["data-stats"] = "data-stats"  # narrowed per mode
    data: Path = Field(description="Dataset folder, relative to the repository root.",
                       json_schema_extra=example("data/processed"))
    layout: Literal["auto", "course", "imagefolder", "npz", "dataset-class"] = Field(
        "auto", description="Dataset layout; `auto` detects it."
    )
    dataset_class: ImportPath | None = Field(
        None, description="A `torch.utils.data.Dataset` to load the data with, as `module:Class`.",
        json_schema_extra=example("mypkg.data:MnistDataset"),
    )
    dvc_pull: Literal["auto", "true", "false"] = Field(
        "auto", description="Run `dvc pull` for `data` first; `auto` pulls when the repository uses DVC."
    )
    gcp_credentials: SecretStr | None = Field(
        None, description="Google service-account key (JSON) for a `gs://` DVC remote.",
        json_schema_extra=example("${{ secrets.GCP_SA_KEY }}"),
    )
    compare_base: StrictBool = Field(True, description="On a pull request, compare with the base branch's data.")
    baseline_data: Path | None = Field(
        None, description="A local copy of the dataset to compare against (instead of the base branch).",
        json_schema_extra=example("old-data/processed"),
    )
    cache_dir: Path = Field(
        Path(".mlgate-cache"), description="Folder for statistics cached by DVC content hash."
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
                                        description="Seconds the sanity baseline may train.")
    samples_per_class: int = Field(4, ge=1, le=16, description="Images per class in the sample grid.")

    @field_validator("data")
    @classmethod
    def _inside_repo(cls, value: Path) -> Path:
        if value.is_absolute() and not value.exists():
            raise ValueError("folder does not exist")
        if ".." in value.parts:
            raise ValueError("must stay inside the repository (no `..`)")
        return value


SETTINGS_BY_MODE: dict[str, type[CommonSettings]] = {
    "data-stats": DataStatsSettings,
}


def register_mode(mode: str, model: type[CommonSettings]) -> None:
    SETTINGS_BY_MODE[mode] = model


def input_name(field: str) -> str:
    return field.replace("_", "-")


def inputs_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The action's inputs as the runner passes them: ``INPUT_DATA-PATH`` or ``INPUT_DATA_PATH``.

    Empty strings count as unset, so an action.yml default of ``""`` never overrides a model default.
    """
    inputs: dict[str, str] = {}
    for key, value in env.items():
        if key.startswith("INPUT_") and value.strip() != "":
            inputs[key[len("INPUT_"):].lower().replace("_", "-")] = value.strip()
    return inputs


def load_settings(inputs: Mapping[str, str]) -> CommonSettings:
    """Validate ``inputs`` (kebab-case name -> string) into the settings model of their mode."""
    mode = inputs.get("mode", "")
    if mode not in MODES:
        raise InvalidInput(
            f"Input `mode` is {mode!r}; allowed: {', '.join(MODES)}.",
            hint="Example:\n  with:\n    mode: data-stats\n    data: data/processed",
        )
    if mode not in SETTINGS_BY_MODE:
        import_mode(mode)
    model = SETTINGS_BY_MODE[mode]
    fields = {
        name.replace("-", "_"): value for name, value in inputs.items()
        if name.replace("-", "_") in model.model_fields or value != _action_defaults().get(name)
    }
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(_explain(exc, model, inputs), hint=_hint(exc, model, mode)) from None


def _action_defaults() -> dict[str, str]:
    """The runner passes every input's action.yml default, also those of other modes: ignore those."""
    from mlgate.action_metadata import action_defaults

    return action_defaults()


def import_mode(mode: str) -> None:
    """Modes register their settings on import; data-stats needs no model-gate code at start-up."""
    if mode in ("model-gate", "promote"):
        import mlgate.model.settings  # noqa: F401  # registers ModelGateSettings and PromoteSettings


def _allowed(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    if info is None:
        return "not an input of this mode"
    schema = model.model_json_schema()["properties"].get(field, {})
    choices = schema.get("enum") or [
        option["enum"][0] if "enum" in option else option.get("const")
        for option in schema.get("anyOf", [])
        if "enum" in option or "const" in option
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
        secret = "credentials" in field or "token" in field or "key" in field
        shown = "(hidden)" if secret else repr(inputs.get(name, ""))
        lines.append(
            f"Input `{name}` is {shown}: {error['msg'].removeprefix('Value error, ')}. "
            f"Allowed: {_allowed(model, field)}."
        )
    return "\n".join(lines)


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
