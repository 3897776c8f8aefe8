"""The model's input shape: ``input-shape`` squared with the eval data, then with the model itself,
before anything is timed (``mlgate.model.measure.inputs``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mlgate.model.loading import LoadedModel, load_model
from mlgate.model.measure.inputs import (
    InputShapeError,
    ModelInput,
    default_preprocess,
    feeds,
    fit_model,
    model_error_reason,
    resolve_input_shape,
)
from tests.fixtures.model_zoo import SmallCNN
from tests.fixtures.models import torchscript_bytes

DATA = "data, split test"


# --- input-shape against one eval item (pure) -----------------------------------------------------


@pytest.mark.parametrize(("given", "item", "expected"), [
    (None, [28, 28], [1, 28, 28]),  # grayscale items gain their channel
    (None, [3, 32, 32], [3, 32, 32]),
    ([1, 28, 28], [28, 28], [1, 28, 28]),  # the per-sample shape
    ([28, 28], [28, 28], [28, 28]),
    ([784], [28, 28], [784]),  # flattened: the values keep their order
    ([1, 28, 28], [1, 28, 28], [1, 28, 28]),
    ([7], None, [7]),  # nothing to check against yet: the model decides
])
def test_resolve_input_shape__per_sample_shapes_that_fit_are_used_as_given(
    given: list[int] | None, item: list[int] | None, expected: list[int]
) -> None:
    assert resolve_input_shape(given, item, data=DATA) == ModelInput(expected)


@pytest.mark.parametrize("item", [[28, 28], [1, 28, 28]])
def test_resolve_input_shape__leading_batch_of_one_is_dropped_with_a_notice(item: list[int]) -> None:
    resolved = resolve_input_shape([1, 1, 28, 28], item, data=DATA)

    assert resolved.shape == [1, 28, 28]
    assert resolved.notice is not None
    assert "`input-shape` 1,1,28,28 starts with a batch dimension of 1" in resolved.notice
    assert "Write `input-shape: 1,28,28`" in resolved.notice


def test_resolve_input_shape__mismatch_names_given_and_eval_item_with_the_fixing_yaml() -> None:
    with pytest.raises(InputShapeError) as info:
        resolve_input_shape([3, 32, 32], [28, 28], data=DATA)

    assert info.value.message == (
        "`input-shape` is 3,32,32, but one item of `eval-data` (data, split test) is 28×28, "
        "which mlgate would feed the model as 1,28,28."
    )
    assert info.value.hint.endswith("with:\n    input-shape: 1,28,28")


def test_resolve_input_shape__channels_last_items_are_named_as_such() -> None:
    with pytest.raises(InputShapeError, match="channels-last"):
        resolve_input_shape([3, 32, 32], [32, 32, 3], data=DATA)


def test_resolve_input_shape__a_batch_prefix_that_still_does_not_fit_is_not_dropped() -> None:
    with pytest.raises(InputShapeError, match=r"`input-shape` is 1,3,28,28"):
        resolve_input_shape([1, 3, 28, 28], [28, 28], data=DATA)


def test_resolve_input_shape__without_eval_data_or_shape_asks_for_one() -> None:
    with pytest.raises(InputShapeError) as info:
        resolve_input_shape(None, None)
    assert "input-shape: 1,28,28" in info.value.hint and "eval-data:" in info.value.hint


@pytest.mark.parametrize(("item", "shape", "fits"), [
    ([28, 28], [1, 28, 28], True),
    ([1, 28, 28], [28, 28], True),
    ([28, 28], [784], True),
    ([32, 32, 3], [3, 32, 32], False),  # a transpose moves values: never done silently
    ([28, 28], [1, 32, 32], False),
])
def test_feeds__only_reshapes_that_keep_every_value_in_place(item: list[int], shape: list[int], fits: bool) -> None:
    assert feeds(item, shape) is fits


def test_default_preprocess__reshapes_items_to_the_resolved_shape() -> None:
    images = torch.arange(2 * 4 * 4, dtype=torch.uint8).reshape(2, 4, 4)

    flat = default_preprocess(images, [16])

    assert flat.shape == (2, 16)
    assert torch.equal(flat, images.reshape(2, 16).float() / 255)  # same values, same order
    assert default_preprocess(images, [1, 4, 4]).shape == (2, 1, 4, 4)


# --- the model's own answer, before timing ------------------------------------------------------------


def loaded(module: nn.Module, path: Path) -> LoadedModel:
    path.write_bytes(torchscript_bytes(module.eval()))
    return load_model(path)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    torch.manual_seed(0)
    return loaded(SmallCNN(width=4), tmp_path_factory.mktemp("cnn") / "model.pt")


def test_fit_model__shape_the_model_takes_is_kept(cnn: LoadedModel) -> None:
    chosen = ModelInput([1, 28, 28])
    assert fit_model(cnn, chosen, given=[1, 28, 28], eval_images=None) is chosen
    assert fit_model(cnn, chosen, given=None, eval_images=torch.rand(5, 28, 28)) is chosen


def test_fit_model__without_eval_data_a_batch_prefix_the_model_refuses_is_dropped_with_a_notice(
    cnn: LoadedModel,
) -> None:
    fitted = fit_model(cnn, ModelInput([1, 1, 28, 28]), given=[1, 1, 28, 28], eval_images=None)

    assert fitted.shape == [1, 28, 28]
    assert fitted.notice is not None and "Write `input-shape: 1,28,28`" in fitted.notice


def test_fit_model__refused_shape_quotes_the_models_reason_not_its_traceback(cnn: LoadedModel) -> None:
    with pytest.raises(InputShapeError) as info:
        fit_model(cnn, ModelInput([3, 28, 28]), given=[3, 28, 28], eval_images=None)

    message = info.value.message
    assert message.startswith("The torchscript model 'model.pt' does not take `input-shape` 3,28,28: "
                              "fed a batch of one, shape (1, 3, 28, 28), it fails with: ")
    assert "expected input[1, 3, 28, 28] to have 1 channels, but got 3 channels instead" in message
    assert "Traceback" not in str(info.value) and "__torch__" not in str(info.value)
    assert "It does take 1,28,28 per item." in message  # a nearby shape it takes...
    assert info.value.hint == "with:\n  input-shape: 1,28,28"  # ...is the fix


def test_fit_model__eval_items_the_model_refuses_say_what_it_takes(cnn: LoadedModel) -> None:
    with pytest.raises(InputShapeError) as info:
        fit_model(cnn, ModelInput([784]), given=[784], eval_images=torch.rand(5, 28, 28))

    assert "does not take one item of `eval-data` as 784: fed a batch of one, shape (1, 784)" in info.value.message
    assert "It does take 1,28,28 per item." in info.value.message
    assert info.value.hint == "with:\n  input-shape: 1,28,28"  # 28×28 items fit 1,28,28


def test_fit_model__nothing_nearby_fits_asks_for_the_models_input_shape(cnn: LoadedModel) -> None:
    with pytest.raises(InputShapeError) as info:
        fit_model(cnn, ModelInput([5, 9]), given=[5, 9], eval_images=None)
    assert "It does take" not in info.value.message
    assert "`input-shape`" in info.value.hint


def test_fit_model__an_output_that_is_not_one_row_per_item_is_a_refusal(tmp_path: Path) -> None:
    class Unbatched(nn.Module):  # treats the batch as channels: (1, 4, 4) -> (4,)
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(0)

    model = loaded(Unbatched(), tmp_path / "unbatched.pt")
    with pytest.raises(InputShapeError, match=r"returned shape \(16,\), not one output per item"):
        fit_model(model, ModelInput([4, 4]), given=[4, 4], eval_images=None)


def test_model_error_reason__torchscript_error_is_its_last_line(cnn: LoadedModel) -> None:
    with pytest.raises(RuntimeError) as info:
        cnn.module(torch.zeros(1, 1, 1, 28, 28))
    assert "Traceback of TorchScript" in str(info.value)  # what users used to get

    assert model_error_reason(info.value) == (
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [1, 1, 1, 28, 28]"
    )


def test_model_error_reason__plain_error_is_its_first_line_capped() -> None:
    assert model_error_reason(ValueError("bad input\nmore")) == "bad input"
    assert model_error_reason(KeyError()) == "KeyError"
    long = model_error_reason(RuntimeError("x" * 1000))
    assert len(long) == 300 and long.endswith("…")

