from __future__ import annotations

import pytest

from mlgate.errors import InvalidInput
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
def test_boolean_input__accepts_only_true_or_false(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(fail_on_leakage=value))
    message = str(info.value)
    assert "`fail-on-leakage`" in message
    assert repr(value) in message
    assert "true or false" in message
    assert "fail-on-leakage: true" in message  # an example that works


def test_bad_choice__names_input_value_and_allowed_values() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(comment="sometimes"))
    message = str(info.value)
    assert "`comment`" in message and "'sometimes'" in message
    for allowed in ("`update`", "`new`", "`off`"):
        assert allowed in message


def test_bad_number__fails_before_any_work_with_the_constraint() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(max_imbalance="0.5"))
    assert "`max-imbalance`" in str(info.value)
    assert "greater than or equal to 1" in str(info.value)


def test_unknown_mode__lists_modes() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "train"})
    assert "data-stats, model-gate, promote" in str(info.value)


def test_input_of_another_mode__is_named_with_this_modes_inputs() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(predictions="250"))
    assert "`predictions` is not used by `mode: data-stats`" in str(info.value)


def test_input_of_another_mode_at_its_action_default__is_ignored_as_the_runner_passes_every_default() -> None:
    settings = load_settings(make_inputs(predictions="100", **{"batch-sizes": "1,32", "on-pass": "none"}))
    assert isinstance(settings, DataStatsSettings)


def test_missing_required_input__is_named() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "data-stats"})
    assert "`data` is required" in str(info.value)


def test_secret_value__never_appears_in_the_error() -> None:
    secret = "ghp_SUPERSECRET123"
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(github_token=secret, comment="bad"))
    assert secret not in str(info.value)
    settings = load_settings(make_inputs(github_token=secret))
    assert secret not in repr(settings) and secret not in settings.model_dump_json()


def test_dataset_class__must_be_an_import_path() -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(make_inputs(dataset_class="os.system('x')"))
    assert "package.module:ClassName" in str(info.value)
    assert load_settings(make_inputs(dataset_class="pkg.data:Mnist")).dataset_class == "pkg.data:Mnist"


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
def test_input_shape__refuses_anything_but_positive_dimensions_with_an_example(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"mode": "model-gate", "input-shape": value})
    assert f"Input `input-shape` is {value!r}: must be positive whole numbers" in str(info.value)
    assert "input-shape: 1,28,28" in str(info.value)
