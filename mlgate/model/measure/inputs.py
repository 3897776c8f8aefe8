"""What the model is fed: the per-sample input shape, checked against the eval data and the model
before anything is timed, and evaluation images turned into model input.

``input-shape`` is one sample without the batch dimension (``1,28,28``). Two steps settle it:

1. :func:`resolve_input_shape` (pure) squares ``input-shape`` with one eval item: the same shape, a
   grayscale item that gains its channel, or a reshape that keeps the values in order (dropping
   or adding dimensions of 1, flattening) all fit; a leading batch dimension of 1 (``1,1,28,28``)
   is dropped with a notice when the rest fits; anything else is an :class:`InputShapeError`
   that says what was given, what the data holds and the YAML that fixes it.
2. :func:`fit_model` feeds the model one sample of that shape. When the model refuses it, the
   error quotes the model's own reason (never its TorchScript traceback) and, where a nearby shape
   works, names it; without eval data a leading 1 the model does not take is dropped with a notice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mlgate.model.loading import LoadedModel
from mlgate.model.measure.values import BenchmarkError

Preprocess = Callable[[Tensor], Tensor]
"""A user's replacement for :func:`default_preprocess`: a batch of eval images in, model input out."""

_MAX_REASON = 300  # characters of the model's own error message quoted in ours


class InputShapeError(BenchmarkError):
    """Raised when ``input-shape``, the eval data and the model disagree on the shape of one input."""

    title = "Model input shape does not fit"


@dataclass(frozen=True)
class ModelInput:
    """The per-sample shape the model is fed, and a notice when it is not what the user wrote."""

    shape: list[int]
    notice: str | None = None


def resolve_input_shape(given: Sequence[int] | None, item: Sequence[int] | None, *, data: str = "") -> ModelInput:
    """Square ``input-shape`` (``given``) with the shape of one eval item (``item``).

    ``data`` names the eval data in messages (``examples/data, split test``). Raises
    :class:`InputShapeError` when neither is known or they cannot be made to fit.
    """
    if item is None:
        if given is None:
            raise InputShapeError(
                "Without `eval-data` mlgate cannot tell the model's input shape.",
                hint="with:\n  input-shape: 1,28,28   # one input without the batch dimension, or\n"
                "  eval-data: data/processed",
            )
        return ModelInput(list(given))
    item = list(item)
    natural = infer_input_shape_of(item)
    if given is None:
        return ModelInput(natural)
    given = list(given)
    if given in (natural, item):
        return ModelInput(given)
    rest = given[1:]
    if given[0] == 1 and rest in (natural, item):
        return ModelInput(rest, notice=(
            f"`input-shape` {_dims(given)} starts with a batch dimension of 1; one item of `eval-data` "
            f"({data}) is {_dims(item, '×')}, so mlgate feeds the model {_dims(rest)} per item. "
            f"Write `input-shape: {_dims(rest)}` to silence this notice."
        ))
    if feeds(item, given):
        return ModelInput(given)
    raise InputShapeError(
        f"`input-shape` is {_dims(given)}, but one item of `eval-data` ({data}) is {_dims(item, '×')}, "
        f"which mlgate would feed the model as {_dims(natural)}.{_layout_note(item, given)}",
        hint="Set `input-shape` to one item's shape without the batch dimension, or leave it out "
        f"(mlgate reads it from the eval data):\n  with:\n    input-shape: {_dims(natural)}",
    )


def fit_model(model: LoadedModel, chosen: ModelInput, *, given: Sequence[int] | None,
              eval_images: Tensor | None, what: str = "model") -> ModelInput:
    """Feed ``model`` one input of ``chosen.shape`` (the first of ``eval_images`` as the model gets
    it; zeros without eval data) and return the shape to measure with.

    Without eval data and a ``given`` shape whose leading 1 the model refuses but whose rest it
    takes, the rest is used, with a notice. Raises :class:`InputShapeError` with the model's own
    reason (and a shape it does take, when a nearby one works) otherwise.
    """
    item = list(eval_images.shape[1:]) if eval_images is not None else None
    x = default_preprocess(eval_images[:1], chosen.shape) if eval_images is not None else \
        torch.zeros([1, *chosen.shape])
    failure = _refusal(model, x)
    if failure is None:
        return chosen
    if item is None and given is not None and len(given) > 1 and given[0] == 1:
        rest = list(given[1:])
        if _refusal(model, torch.zeros([1, *rest])) is None:
            return ModelInput(rest, notice=(
                f"`input-shape` {_dims(given)} starts with a batch dimension of 1 that the {what} does not "
                f"take; mlgate feeds it {_dims(rest)} per item. Write `input-shape: {_dims(rest)}` to "
                "silence this notice."
            ))
    fed = (f"one item of `eval-data` as {_dims(chosen.shape)}" if item is not None
           else f"`input-shape` {_dims(chosen.shape)}")
    nearby = _nearby(chosen.shape, given) + ([] if item is None else _nearby(infer_input_shape_of(item), item))
    taken = next((shape for shape in dict.fromkeys(map(tuple, nearby)) if list(shape) != chosen.shape
                  and _refusal(model, torch.zeros([1, *shape])) is None), None)
    raise InputShapeError(
        f"The {model.format} {what} {model.path.name!r} does not take {fed}: fed a batch of one, "
        f"shape {tuple(x.shape)}, it fails with: {failure.rstrip('.')}."
        + (f" It does take {_dims(taken)} per item." if taken else ""),
        hint=_fit_hint(item, taken),
    )


def _fit_hint(item: Sequence[int] | None, taken: Sequence[int] | None) -> str:
    if taken is not None and (item is None or feeds(item, taken)):
        return f"with:\n  input-shape: {_dims(taken)}"
    if taken is not None:
        return (f"The eval items would have to be {_dims(taken)}: return them in that shape from a "
                "`dataset-class`, or evaluate on data this model was made for.")
    if item is not None:
        return ("Check that `eval-data` is the kind of data this model was made for, or return the "
                "items in the model's input shape from a `dataset-class`.")
    return ("Set `input-shape` to one input of the model without the batch dimension (e.g. `1,28,28` "
            "for 28×28 grayscale images), or give `eval-data` and leave `input-shape` out.")


def model_error_reason(exc: BaseException) -> str:
    """The model's complaint in one line: a TorchScript error ends with it, after a traceback of the
    scripted code (never quoted); other errors start with it."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[-1] if "Traceback of TorchScript" in text else lines[0]
    line = re.sub(r"^[\w.]+(?:Error|Exception): ", "", line)
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def default_preprocess(images: Tensor, input_shape: Sequence[int]) -> Tensor:
    """uint8 pixels -> float in [0, 1]; floats unchanged; items reshaped to ``input_shape`` when
    :func:`feeds` says the values keep their order: (N, H, W) -> (N, 1, H, W), or flattened."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images
    if not x.is_floating_point():
        x = x.float()
    item = list(x.shape[1:])
    if item != list(input_shape) and feeds(item, input_shape):
        x = x.reshape(len(x), *input_shape)
    return x


def feeds(item: Sequence[int], shape: Sequence[int]) -> bool:
    """An item of shape ``item`` can be given to the model as ``shape`` without moving any value:
    the same dimensions apart from dimensions of 1, or ``shape`` is the item flattened."""
    item, shape = list(item), list(shape)
    squeezed = [d for d in item if d != 1] == [d for d in shape if d != 1]
    return squeezed or (len(shape) == 1 and shape[0] == math.prod(item))


def infer_input_shape(eval_batch_images: Tensor) -> list[int]:
    """Per-sample input shape from one batch: (N, H, W) images get a single channel -> [1, H, W]."""
    return infer_input_shape_of(list(eval_batch_images.shape[1:]))


def infer_input_shape_of(item: Sequence[int]) -> list[int]:
    """The model input for one item of shape ``item``: an (H, W) image gets a single channel."""
    return [1, *item] if len(item) == 2 else list(item)


def _refusal(model: LoadedModel, x: Tensor) -> str | None:
    """None when ``model`` maps the batch ``x`` to one output per item; else why not."""
    try:
        with torch.inference_mode():
            out = model.module(x)
    except Exception as exc:  # any failure of user code is an answer here, reported below
        return model_error_reason(exc)
    if isinstance(out, Tensor) and (out.dim() == 0 or out.shape[0] != x.shape[0]):
        return f"it returned shape {tuple(out.shape)}, not one output per item of the batch"
    return None


def _nearby(shape: Sequence[int], given: Sequence[int] | None) -> list[list[int]]:
    """Shapes a user plausibly meant instead of ``shape``: ``given`` itself, or either without a
    leading 1, with a channel, with one or three channels, squeezed, flattened."""
    candidates = []
    for source in (list(shape), list(given) if given else None):
        if not source:
            continue
        candidates.append(source)
        if len(source) > 1 and source[0] == 1:
            candidates.append(source[1:])
        candidates.append([1, *source])
        if len(source) >= 2:
            candidates += [[1, *source[-2:]], [3, *source[-2:]]]
        candidates += [[d for d in source if d != 1], [math.prod(source)]]
    return [candidate for candidate in candidates if candidate]


def _layout_note(item: Sequence[int], given: Sequence[int]) -> str:
    if len(item) == 3 and sorted(item) == sorted(given) and item[-1] in (1, 3, 4) and given[0] == item[-1]:
        return (" The items look channels-last (height, width, channels) while the model takes channels "
                "first: return them as channels × height × width from a `dataset-class`.")
    return ""


def _dims(shape: Sequence[int] | None, sep: str = ",") -> str:
    return sep.join(str(d) for d in shape or [])
