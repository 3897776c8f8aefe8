from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlgate.context import RunContext
from mlgate.errors import CannotWrite, InvalidInput
from mlgate.settings import DataStatsSettings, DvcInputs, ModelGateSettings, inputs_from_env, load_settings


def make_inputs(**overrides: str) -> dict[str, str]:
    inputs = {"mode": "data-stats", "data": "data/processed"}
    inputs.update({name.replace("_", "-"): value for name, value in overrides.items()})
    return inputs


def test_inputs_from_env__reads_hyphen_and_underscore_forms_and_ignores_empty() -> None:
    env = {"INPUT_MODE": "data-stats", "INPUT_MIN-SAMPLES": "10", "INPUT_FAIL_ON_LEAKAGE": "true",
           "INPUT_TITLE": "", "HOME": "/root"}
    assert inputs_from_env(env) == {"mode": "data-stats", "min-samples": "10", "fail-on-leakage": "true"}


def test_load_settings__builds_typed_data_stats_settings() -> None:
    settings = load_settings(make_inputs(min_samples="1000", fail_on_leakage="TRUE", max_imbalance="2.5"))
    assert isinstance(settings, DataStatsSettings)
    assert settings.min_samples == 1000
    assert settings.fail_on_leakage is True
    assert settings.max_imbalance == 2.5
    assert settings.report_title == "Data report"


@pytest.mark.parametrize("value", ["yes", "1", "on", "ture"])
@pytest.mark.reliability(
    "input", "`fail-on-leakage: {value}`",
    "exit 2: names `fail-on-leakage` and the value, says true or false, shows `fail-on-leakage: true`"
)
def test_boolean_input__accepts_only_true_or_false(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(fail_on_leakage=value))
    message = str(info.value)
    assert "`fail-on-leakage`" in message
    assert repr(value) in message
    assert "true or false" in message
    assert "fail-on-leakage: true" in message  # an example that works


@pytest.mark.reliability(
    "input", "`comment: sometimes`",
    "exit 2: names `comment` and the value, lists `update`, `new`, `off`"
)
def test_bad_choice__names_input_value_and_allowed_values() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(comment="sometimes"))
    message = str(info.value)
    assert "`comment`" in message and "'sometimes'" in message
    for allowed in ("`update`", "`new`", "`off`"):
        assert allowed in message


@pytest.mark.parametrize("value", ["999", "0", "many"])
def test_word_or_number_input__the_message_names_both_and_not_the_word_alone(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(workers=value))
    message = str(info.value)
    assert "`workers`" in message and "`auto` or a whole number from 1 to 256" in message
    assert "Allowed: one of `auto`." not in message  # `auto` is not the only value allowed


@pytest.mark.reliability(
    "input", "`max-imbalance: 0.5`",
    "exit 2 before any work: names `max-imbalance` and says it must be ≥ 1"
)
def test_bad_number__fails_before_any_work_with_the_constraint() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(max_imbalance="0.5"))
    assert "`max-imbalance`" in str(info.value)
    assert "greater than or equal to 1" in str(info.value)


@pytest.mark.reliability("input", "`mode: train`", "exit 2: lists the modes data-stats, model-gate, promote")
def test_unknown_mode__lists_modes() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "train"})
    assert "data-stats, model-gate, promote" in str(info.value)


@pytest.mark.reliability(
    "input", "`predictions: 250` with `mode: data-stats`",
    "exit 2: says `predictions` is not used by `mode: data-stats`"
)
def test_input_of_another_mode__is_named_with_this_modes_inputs() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(predictions="250"))
    assert "`predictions` is not used by `mode: data-stats`" in str(info.value)


def test_input_of_another_mode_at_its_action_default__is_ignored_as_the_runner_passes_every_default() -> None:
    settings = load_settings(make_inputs(predictions="100", **{"batch-sizes": "1,32", "on-pass": "none"}))
    assert isinstance(settings, DataStatsSettings)


@pytest.mark.reliability("input", "`mode: data-stats` without `data`", "exit 2: says `data` is required")
def test_missing_required_input__is_named() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "data-stats"})
    assert "`data` is required" in str(info.value)


@pytest.mark.reliability(
    "secret", "an invalid input next to `github-token`",
    "the token is not in the error, nor in the settings' repr or JSON"
)
def test_secret_value__never_appears_in_the_error() -> None:
    secret = "ghp_SUPERSECRET123"
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(github_token=secret, comment="bad"))
    assert secret not in str(info.value)
    settings = load_settings(make_inputs(github_token=secret))
    assert secret not in repr(settings) and secret not in settings.model_dump_json()


@pytest.mark.reliability(
    "input", "`dataset-class: os.system('x')`",
    "exit 2: asks for `package.module:ClassName`"
)
def test_dataset_class__must_be_an_import_path() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(dataset_class="os.system('x')"))
    assert "package.module:ClassName" in str(info.value)
    assert load_settings(make_inputs(dataset_class="pkg.data:Mnist")).dataset_class == "pkg.data:Mnist"


@pytest.mark.reliability("input", "`model-kwargs: [1, 2]` (JSON, not an object)", "exit 2: names `model-kwargs`")
def test_model_gate_settings__parse_lists_and_json() -> None:
    settings = load_settings({"mode": "model-gate", "batch-sizes": "1,8,64", "model-kwargs": '{"hidden": 8}',
                              "input-shape": "1,28,28"})
    assert settings.batch_size_list == [1, 8, 64]  # type: ignore[attr-defined]
    assert settings.model_kwargs_dict == {"hidden": 8}  # type: ignore[attr-defined]
    assert settings.input_shape_list == [1, 28, 28]  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="`model-kwargs`"):
        load_settings({"mode": "model-gate", "model-kwargs": "[1, 2]"})


# --- inputs shared by the modes that read data kept in DVC ---------------------------------------------


def test_dvc_inputs__declared_once_and_inherited_by_data_stats_and_model_gate() -> None:
    shared = set(DvcInputs.model_fields)
    assert shared == {"dvc_pull", "gcp_credentials", "dvc_timeout"}
    for mode in (DataStatsSettings, ModelGateSettings):
        assert issubclass(mode, DvcInputs)
        assert shared <= set(mode.model_fields)
        assert not shared & set(vars(mode).get("__annotations__", {}))  # not redeclared
        assert {name: mode.model_fields[name].default for name in shared} == {
            "dvc_pull": "auto", "gcp_credentials": None, "dvc_timeout": 1800}


@pytest.mark.reliability(
    "secret", "`gcp-credentials` read into the settings",
    "the key is not in the settings' repr or JSON"
)
def test_model_gate__accepts_gcp_credentials_dvc_pull_and_dvc_timeout() -> None:
    key = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nSECRETKEYMATERIAL"}'
    settings = load_settings({"mode": "model-gate", "eval-data": "data/processed", "gcp-credentials": key,
                              "dvc-pull": "true", "dvc-timeout": "600"})
    assert isinstance(settings, ModelGateSettings)
    assert settings.gcp_credentials is not None and settings.gcp_credentials.get_secret_value() == key
    assert settings.dvc_pull == "true" and settings.dvc_timeout == 600
    assert "SECRETKEYMATERIAL" not in repr(settings) and "SECRETKEYMATERIAL" not in settings.model_dump_json()


@pytest.mark.parametrize("mode", ["data-stats", "model-gate"])
@pytest.mark.parametrize("value", ["0", "21601", "-5", "1.5", "soon"])
@pytest.mark.reliability(
    "input", "`dvc-timeout: {value}` with `mode: {mode}`",
    "exit 2: names `dvc-timeout` and the value, shows `dvc-timeout: 3600`"
)
def test_dvc_timeout__whole_seconds_from_1_to_21600(mode: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": mode, "data": "d", "dvc-timeout": value} if mode == "data-stats"
                      else {"mode": mode, "dvc-timeout": value})
    assert f"Input `dvc-timeout` is {value!r}" in str(info.value)
    assert "dvc-timeout: 3600" in str(info.value)  # an example that works


@pytest.mark.parametrize("value", ["1", "21600"])
def test_dvc_timeout__bounds_themselves_are_allowed(value: str) -> None:
    assert load_settings({"mode": "model-gate", "dvc-timeout": value}).dvc_timeout == int(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "shape"), [
    ("1,28,28", [1, 28, 28]),  # one sample
    ("1,1,28,28", [1, 1, 28, 28]),  # with a batch dimension: the mode decides with the eval data
    ("(1, 28, 28)", [1, 28, 28]),  # as Python prints a shape
    ("[3,32,32]", [3, 32, 32]),
    ("1x28x28", [1, 28, 28]),
    ("(784,)", [784]),
])
def test_input_shape__accepts_a_shape_however_it_is_written(value: str, shape: list[int]) -> None:
    settings = load_settings({"mode": "model-gate", "input-shape": value})
    assert settings.input_shape_list == shape  # type: ignore[attr-defined]
    assert settings.input_shape == ",".join(map(str, shape))  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["1,0,28", "1,,28", "1 28 28", "a,b", "-1,28", "1.5,2"])
@pytest.mark.reliability(
    "input", "`input-shape: {value}`",
    "exit 2: says `input-shape` must be positive whole numbers, shows `input-shape: 1,28,28`"
)
def test_input_shape__refuses_anything_but_positive_dimensions_with_an_example(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "model-gate", "input-shape": value})
    assert f"Input `input-shape` is {value!r}: must be positive whole numbers" in str(info.value)
    assert "input-shape: 1,28,28" in str(info.value)


# --- every path input stays inside the workspace (syntax here; symlinks in mlgate.context) -------------


def _mode_inputs(name: str, value: str) -> dict[str, str]:
    mode = {"eval-data": "model-gate", "model": "model-gate", "manifest": "promote"}.get(name, "data-stats")
    inputs = {"mode": mode, name: value}
    if mode == "data-stats" and name != "data":
        inputs["data"] = "data/processed"
    return inputs


@pytest.mark.parametrize(("name", "value"), [
    pytest.param(name, value, marks=pytest.mark.reliability(
        "input", f"`{name}: {value}`", f"exit 2 before any work: names `{name}`, says no `..`, shows an example"))
    for name, value in [("data", "../x"), ("baseline-data", "../../x"), ("eval-data", "data/../../x"),
                        ("out", "../escaped"), ("cache-dir", "../cache"), ("model", "../models/model.pt"),
                        ("manifest", "../promotions/m.json")]
])
def test_path_input_with_dotdot__is_refused_with_an_example(name: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(_mode_inputs(name, value))
    message = str(info.value)
    assert f"Input `{name}` is {value!r}: must stay inside the workspace (no `..`)" in message
    assert f"\n    {name}: " in message  # an example that works


@pytest.mark.parametrize(("name", "value"), [
    pytest.param("out", "report\n::set-output name=passed::true", marks=pytest.mark.reliability(
        "input", "`out` with a newline and `::set-output`",
        "exit 2: names `out`, says no line breaks; the value is quoted with `\\n`, not broken across lines")),
    pytest.param("data", "data\r\n::error::x", marks=pytest.mark.reliability(
        "input", "`data` with `\\r\\n::error::`", "exit 2: names `data`, says no line breaks")),
    pytest.param("title", "Data\n::error::forged", marks=pytest.mark.reliability(
        "input", "`title` with a newline and `::error::`", "exit 2: names `title`, says one line")),
])
def test_line_breaks_in_paths_and_titles__are_refused(name: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(_mode_inputs(name, value))
    message = str(info.value)
    assert f"Input `{name}` is {value!r}" in message
    assert "line" in message.split(":", 2)[-1]
    assert "\n::" not in message  # the value is quoted, its line break escaped


def test_title__at_most_200_characters() -> None:
    assert load_settings(make_inputs(title="t" * 200)).title == "t" * 200
    with pytest.raises(InvalidInput, match="Input `title`"):
        load_settings(make_inputs(title="t" * 201))


@pytest.mark.reliability(
    "input", "`data:` a 100,000-character value",
    "exit 2: the message quotes its first 100 characters and says how long it is")
def test_long_value__is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(data="x" * 100_000))
    message = str(info.value)
    assert "(100,000 characters)" in message and "at most 4,095 bytes" in message
    assert len(message) < 1000


@pytest.mark.parametrize("value", ["data/processed", "/github/workspace/data", "./data", "data set/v1"])
def test_ordinary_paths__are_accepted(value: str) -> None:
    settings = load_settings({"mode": "data-stats", "data": "d", "baseline-data": value, "out": value})
    assert isinstance(settings, DataStatsSettings) and settings.baseline_data == Path(value)


# --- numbers are bounded: memory and time stay finite on a 2-core, 7 GB runner --------------------------


@pytest.mark.parametrize(("inputs", "says"), [
    pytest.param({"batch-sizes": "0"}, "each size must be 1 to 4096", marks=pytest.mark.reliability(
        "input", "`batch-sizes: 0`", "exit 2 before any work (was ZeroDivisionError): each size must be 1 to 4096")),
    pytest.param({"batch-sizes": "1,100000"}, "each size must be 1 to 4096", marks=pytest.mark.reliability(
        "input", "`batch-sizes: 1,100000`", "exit 2 before any work: each size must be 1 to 4096")),
    pytest.param({"batch-sizes": "1,2,3,4,5,6,7,8,9"}, "lists 9 sizes; at most 8", marks=pytest.mark.reliability(
        "input", "`batch-sizes:` nine sizes", "exit 2: says at most 8 sizes")),
    pytest.param({"batch-sizes": "1,-2"}, "whole numbers", marks=pytest.mark.reliability(
        "input", "`batch-sizes: 1,-2`", "exit 2: asks for whole numbers separated by commas")),
    pytest.param({"batch-sizes": "4096", "input-shape": "3,224,224"}, "616,562,688 values; at most 268,435,456",
                 marks=pytest.mark.reliability(
                     "input", "`batch-sizes: 4096` with `input-shape: 3,224,224` (2.5 GB per batch)",
                     "exit 2 before any work: says how many values the batch holds and the 1 GiB limit")),
    pytest.param({"input-shape": "3,4096,4096"}, "50,331,648 values per item; at most 16,777,216",
                 marks=pytest.mark.reliability(
                     "input", "`input-shape: 3,4096,4096`", "exit 2: says values per item and the 16,777,216 limit")),
    pytest.param({"input-shape": "1,1,1,1,1,1,1,1,1"}, "9 dimensions; at most 8", marks=pytest.mark.reliability(
        "input", "`input-shape:` nine dimensions", "exit 2: says at most 8 dimensions")),
    pytest.param({"predictions": "1000000"}, "less than or equal to 100000", marks=pytest.mark.reliability(
        "input", "`predictions: 1000000`", "exit 2 before any work (ran for minutes): at most 100,000")),
    pytest.param({"max-eval-samples": "2000000"}, "less than or equal to 1000000", marks=pytest.mark.reliability(
        "input", "`max-eval-samples: 2000000`", "exit 2 before any work: at most 1,000,000")),
    pytest.param({"threads": "1000"}, "less than or equal to 256", marks=pytest.mark.reliability(
        "input", "`threads: 1000`", "exit 2: at most 256")),
])
def test_model_gate_numbers__are_bounded(inputs: dict[str, str], says: str) -> None:
    name = next(iter(inputs)) if len(inputs) == 1 else "batch-sizes"
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "model-gate", **inputs})
    message = str(info.value)
    assert f"Input `{name}` is {inputs[name]!r}" in message
    assert says in message
    assert f"\n    {name}: " in message  # an example that works


@pytest.mark.parametrize(("name", "value", "says"), [
    pytest.param("samples-per-class", "100", "less than or equal to 16", marks=pytest.mark.reliability(
        "input", "`samples-per-class: 100`", "exit 2: at most 16")),
    pytest.param("baseline-time-budget", "7200", "less than or equal to 3600", marks=pytest.mark.reliability(
        "input", "`baseline-time-budget: 7200`", "exit 2: at most 3600 seconds")),
])
def test_data_stats_numbers__are_bounded(name: str, value: str, says: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(**{name: value}))
    assert f"Input `{name}` is {value!r}" in str(info.value) and says in str(info.value)


def test_bounds__at_the_limits_are_accepted_and_sizes_are_normalised() -> None:
    settings = load_settings({"mode": "model-gate", "batch-sizes": "1, 4096", "input-shape": "1,256,256",
                              "predictions": "100000", "max-eval-samples": "1000000"})
    assert isinstance(settings, ModelGateSettings)
    assert settings.batch_size_list == [1, 4096] and settings.batch_sizes == "1,4096"
    assert load_settings({"mode": "model-gate", "input-shape": "1,4096,4096"}).input_shape == "1,4096,4096"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "bound"), [
    ("predictions", "100,000"), ("batch-sizes", "4096"), ("input-shape", "16,777,216"),
    ("max-eval-samples", "1,000,000"), ("threads", "256"), ("samples-per-class", "16"),
    ("baseline-time-budget", "3600"), ("dvc-timeout", "21600"),
])
def test_bounds__are_documented_in_each_inputs_description(name: str, bound: str) -> None:
    from mlgate.action_metadata import input_docs

    [doc] = [doc for doc in input_docs() if doc.name == name]
    assert bound in doc.description


# --- two spellings of one input ------------------------------------------------------------------------


@pytest.mark.reliability(
    "input", "`INPUT_MIN-SAMPLES: 10` and `INPUT_MIN_SAMPLES: 20`",
    "exit 2: names `min-samples`, both variables and both values; says to set it once under `with:`")
def test_inputs_from_env__two_spellings_with_different_values_are_an_error() -> None:
    with pytest.raises(InvalidInput) as info:
        inputs_from_env({"INPUT_MODE": "data-stats", "INPUT_MIN-SAMPLES": "10", "INPUT_MIN_SAMPLES": "20"})
    message = str(info.value)
    assert "Input `min-samples` is set twice with different values ('10' and '20')" in message
    assert "INPUT_MIN-SAMPLES" in message and "INPUT_MIN_SAMPLES" in message
    assert "    min-samples: 1000" in message  # an example that works


@pytest.mark.reliability(
    "secret", "`INPUT_WANDB-API-KEY` and `INPUT_WANDB_API_KEY` set to different keys",
    "exit 2: names both variables; neither key appears in the message")
def test_inputs_from_env__conflicting_secret_spellings_hide_both_values() -> None:
    with pytest.raises(InvalidInput) as info:
        inputs_from_env({"INPUT_WANDB-API-KEY": "key-number-one", "INPUT_WANDB_API_KEY": "key-number-two"})
    message = str(info.value)
    assert "INPUT_WANDB-API-KEY" in message and "INPUT_WANDB_API_KEY" in message
    assert "key-number-one" not in message and "key-number-two" not in message


def test_inputs_from_env__two_spellings_with_one_value_or_one_empty_are_fine() -> None:
    env = {"INPUT_MIN-SAMPLES": "10", "INPUT_MIN_SAMPLES": " 10 ", "INPUT_FAIL-ON-LEAKAGE": "",
           "INPUT_FAIL_ON_LEAKAGE": "true"}
    assert inputs_from_env(env) == {"min-samples": "10", "fail-on-leakage": "true"}


# --- the run context: symlinks followed, the report apart from the data -----------------------------------


def _ctx(workspace: Path, in_actions: bool = True) -> RunContext:
    return RunContext(in_actions=in_actions, workspace=workspace)


def test_in_workspace__follows_symlinks_and_keeps_the_users_path(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "data" / "real").mkdir(parents=True)
    (workspace / "alias").symlink_to(workspace / "data" / "real")
    ctx = _ctx(workspace)
    assert ctx.in_workspace(Path("alias"), "data") == workspace / "alias"
    assert ctx.in_workspace(Path("not/yet/pulled"), "data") == workspace / "not/yet/pulled"
    assert ctx.in_workspace(workspace / "data", "data") == workspace / "data"
    assert ctx.in_workspace(Path("."), "data") == workspace / "."
    (workspace / "out").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="through a symbolic link"):
        ctx.in_workspace(Path("out/anything"), "data")
    # off Actions the person at the terminal owns the machine: any path goes
    assert _ctx(workspace, in_actions=False).in_workspace(Path("/etc"), "data") == Path("/etc")


@pytest.mark.reliability(
    "input", "`data:` a symlink loop in the checkout (`a -> b -> a`)",
    "exit 2: names `data`, says it cannot be resolved; no traceback")
def test_in_workspace__a_symlink_loop_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InvalidInput) as info:
        _ctx(tmp_path).in_workspace(Path("a/data"), "data")
    assert "Input `data` is 'a/data'" in str(info.value)


def test_output_folder__off_actions_still_keeps_the_report_apart_from_the_data(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / "data"
    data.mkdir(parents=True)
    ctx = _ctx(tmp_path / "ws", in_actions=False)
    with pytest.raises(InvalidInput, match="is inside `data`"):
        ctx.output_folder(data / "report", {"data": data})
    assert ctx.output_folder(Path("report"), {"data": data, "eval-data": None}) == tmp_path / "ws" / "report"
    assert not (tmp_path / "ws").exists()  # checked, not created


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
@pytest.mark.reliability(
    "environment", "`out` in a read-only folder",
    "exit 2 before any work: says which folder is not writable")
def test_output_folder__a_read_only_parent_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "ws" / "locked"
    locked.mkdir(parents=True)
    locked.chmod(0o555)
    try:
        with pytest.raises(CannotWrite, match="is not writable"):
            _ctx(tmp_path / "ws").output_folder(Path("locked/report"), {})
    finally:
        locked.chmod(0o755)
