from __future__ import annotations

import pytest

from mlgate.errors import InvalidInput
from mlgate.settings import DataStatsSettings, inputs_from_env, load_settings


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
