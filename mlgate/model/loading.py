"""Load a model file without running the user's code unless they said they trust it.

Supported formats, told apart by the file's contents rather than its name:

- TorchScript archive (``torch.jit.save``): needs no Python class.
- ``torch.export`` program (``.pt2``, ``torch.export.save``): needs no Python class.
- ``state_dict`` or Lightning checkpoint (a dict with a ``state_dict`` key): the architecture comes
  from ``model_class="pkg.module:Class"``, imported from the checked-out repository (see
  :mod:`mlgate.user_code`).
- A whole pickled ``nn.Module`` (``torch.save(model)``): unpickling it runs arbitrary code, so it is
  refused unless ``trust_pickle`` is set.

Everything else goes through ``torch.load(weights_only=True)``, which cannot execute code.
"""

from __future__ import annotations

import inspect
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlgate.data.layouts.base import is_outside
from mlgate.errors import MlgateError
from mlgate.user_code import ImportRoot, import_path_parts

MODEL_SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt", ".bin", ".torchscript", ".jit")
"""File endings considered model files when a directory (e.g. a W&B artifact download) is given."""

MAX_UNPACKED_BYTES = 16 * 2**30
"""A model archive may unpack to at most this much (a hosted runner has 16 GB of memory)."""
MAX_COMPRESSION_RATIO = 100
"""A compressed entry of a model archive may shrink at most this much; PyTorch stores entries uncompressed."""

_MAX_LISTED = 8
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class ModelLoadError(MlgateError):
    """Raised when a model file cannot be found, recognised or turned into a runnable model."""

    title = "Cannot load model"


class UnsafePickleRefused(ModelLoadError):
    """Raised when the file holds pickled Python objects and ``trust_pickle`` was not set."""

    title = "Refused to unpickle model"


@dataclass
class LoadedModel:
    """A model ready to run: ``module`` is in eval mode and maps a batch tensor to logits."""

    module: Callable[[torch.Tensor], torch.Tensor]
    format: str  # "torchscript" | "export" | "state_dict" | "lightning" | "pickle"
    path: Path
    size_bytes: int
    params: int


def load_model(
    path: Path,
    *,
    model_class: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    trust_pickle: bool = False,
    import_root: Path | None = None,
) -> LoadedModel:
    """Load ``path`` (a file, or a directory holding exactly one model file) onto the CPU."""
    file = _resolve_file(Path(path))
    kind = _sniff(file)
    if kind == "torchscript":
        module, fmt = _load_torchscript(file), "torchscript"
    elif kind == "export":
        module, fmt = _load_export(file), "export"
    else:
        module, fmt = _load_pickled(file, model_class, model_kwargs or {}, trust_pickle, import_root)
    return LoadedModel(
        module=module,
        format=fmt,
        path=file,
        size_bytes=file.stat().st_size,
        params=sum(p.numel() for p in module.parameters()),
    )


def _resolve_file(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.exists():
        raise ModelLoadError(f"Model path {str(path)!r} does not exist.")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    # a file that is a symlink out of the folder is never opened (a DVC symlink cache stays allowed)
    outside = [p for p in found if p.is_symlink() and is_outside(p, path)]
    candidates = [p for p in found if p not in outside]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        present = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p not in outside)
        not_followed = (f" Not followed (symlinks to outside the folder): "
                        f"{_listing([str(p.relative_to(path)) for p in outside])}." if outside else "")
        raise ModelLoadError(
            f"No model file in directory {str(path)!r}; it holds: {_listing(present) or 'nothing'}.{not_followed}",
            hint=f"mlgate looks for files ending in {', '.join(MODEL_SUFFIXES)}.",
        )
    names = [str(p.relative_to(path)) for p in candidates]
    raise ModelLoadError(
        f"Directory {str(path)!r} holds {len(candidates)} model files: {_listing(names)}.",
        hint="Log a single model file per artifact version, or point mlgate at the file itself.",
    )


def _sniff(file: Path) -> str:
    """'torchscript', 'export' or 'torch.save' (zip or legacy pickle) from the archive's entries."""
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"Cannot read model file {str(file)!r}: {exc.strerror or exc}") from exc
    if size == 0:
        raise ModelLoadError(
            f"Model file {str(file)!r} is empty (0 bytes).",
            hint="The upload or download that produced it was probably cut short; save the model again.",
        )
    if not zipfile.is_zipfile(file):
        return "torch.save"
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(f"Model file {str(file)!r} is not a readable archive: {exc}") from exc
    _check_unpacked_size(file, size, entries)
    names = [entry.filename for entry in entries]
    # every entry sits under one top-level folder whose name is the file's stem at save time
    inner = {name.split("/", 1)[1] for name in names if "/" in name}
    if "constants.pkl" in inner and any(name.startswith("code/") for name in inner):
        return "torchscript"
    if "archive_format" in inner or any(name.startswith("models/") for name in inner):
        return "export"
    if "data.pkl" in inner:
        return "torch.save"
    raise ModelLoadError(
        f"Model file {str(file)!r} is a zip archive but not one PyTorch wrote (entries: {_listing(sorted(names))}).",
        hint="Save with torch.save(model.state_dict()), torch.export.save or torch.jit.save.",
    )


def _check_unpacked_size(file: Path, size: int, entries: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive that would unpack to more than :data:`MAX_UNPACKED_BYTES`, or whose entries
    compress more than :data:`MAX_COMPRESSION_RATIO` to one (PyTorch stores its entries uncompressed)."""
    unpacked = sum(entry.file_size for entry in entries)
    squeezed = next(
        (e for e in entries if e.compress_type != zipfile.ZIP_STORED
         and e.file_size > MAX_COMPRESSION_RATIO * max(e.compress_size, 1)),
        None,
    )
    if unpacked > MAX_UNPACKED_BYTES or squeezed is not None:
        what = (f"entry {squeezed.filename!r} unpacks {squeezed.compress_size:,} bytes to {squeezed.file_size:,}"
                if squeezed is not None else f"its entries unpack to {unpacked:,} bytes")
        raise ModelLoadError(
            f"Model file {str(file)!r} ({size:,} bytes) looks like a zip bomb: {what} "
            f"(limits: {MAX_UNPACKED_BYTES:,} bytes in all, {MAX_COMPRESSION_RATIO}:1 per entry).",
            hint="Save the model with torch.save, torch.export.save or torch.jit.save; "
            "do not re-compress the archive.",
        )


def _load_torchscript(file: Path) -> nn.Module:
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated upstream, but existing TorchScript files must still load
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(file), map_location="cpu")
    except Exception as exc:  # TorchScript raises bare RuntimeErrors for corrupt or foreign files
        raise ModelLoadError(f"Cannot load TorchScript model {str(file)!r}: {exc}") from exc
    module.eval()
    return module


def _load_export(file: Path) -> nn.Module:
    try:
        program = torch.export.load(str(file))
        # eval() is not supported on exported programs: train/eval behaviour was fixed at export time
        return program.module()
    except Exception as exc:
        raise ModelLoadError(
            f"Cannot load torch.export program {str(file)!r}: {exc}",
            hint="The file must come from torch.export.save with a compatible torch version "
            f"(this is torch {torch.__version__}).",
        ) from exc


def _load_pickled(
    file: Path,
    model_class: str | None,
    model_kwargs: dict[str, Any],
    trust_pickle: bool,
    import_root: Path | None,
) -> tuple[nn.Module, str]:
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            if _UNSAFE_GLOBAL.search(str(exc)):
                raise _refusal(file, exc) from exc
            raise ModelLoadError(
                f"Cannot read model file {str(file)!r} with torch.load: {_unpickler_reason(exc)}",
                hint="The file is corrupt or was not written by torch.save / torch.jit.save / torch.export.save.",
            ) from exc
        with ImportRoot(import_root):  # unpickling imports the model's classes from the checkout
            try:
                obj = torch.load(file, map_location="cpu", weights_only=False)
            except Exception as exc2:
                raise ModelLoadError(
                    f"Cannot unpickle {str(file)!r} even with trust-pickle: {exc2}",
                    hint="A pickled module needs its class importable from the repository root; "
                    "saving a state_dict or a torch.export program avoids that.",
                ) from exc2
    except Exception as exc:
        raise ModelLoadError(f"Cannot read model file {str(file)!r} with torch.load: {exc}") from exc

    if isinstance(obj, nn.Module):
        obj.eval()
        return obj, "pickle"
    state, fmt = _find_state_dict(file, obj)
    if model_class is None:
        raise ModelLoadError(
            f"{str(file)!r} holds only weights (a {fmt}), not an architecture; "
            f"its keys start with {_listing(list(state)[:4])}.",
            hint="Name the class that builds the network, e.g. `model-class: mypkg.models:Net` "
            "(with `model-kwargs` for its constructor), or save a torch.export program instead.",
        )
    module = _instantiate(model_class, model_kwargs, import_root)
    _load_weights(module, state, file, model_class)
    module.eval()
    return module, fmt


def _unpickler_reason(exc: Exception) -> str:
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", str(exc), re.DOTALL)
    return found.group(1) if found else str(exc).splitlines()[0]


def _refusal(file: Path, exc: Exception) -> UnsafePickleRefused:
    found = _UNSAFE_GLOBAL.search(str(exc))
    what = f" (it references {found.group(1)})" if found else ""
    return UnsafePickleRefused(
        f"{str(file)!r} contains pickled Python objects{what}, not just tensors. Loading a full "
        "pickled nn.Module means executing code from the file.",
        hint="Set `trust-pickle: true` only for models you trust, or save the model as a state_dict "
        "(torch.save(model.state_dict(), ...) with `model-class`), TorchScript or torch.export (.pt2).",
    )


def _find_state_dict(file: Path, obj: object) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(obj, Mapping):
        if isinstance(obj.get("state_dict"), Mapping):
            return dict(obj["state_dict"]), "lightning"
        if isinstance(obj.get("model_state_dict"), Mapping):  # the PyTorch tutorials' checkpoint shape
            return dict(obj["model_state_dict"]), "state_dict"
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj), "state_dict"
        keys = _listing([str(k) for k in obj][:_MAX_LISTED])
        raise ModelLoadError(
            f"{str(file)!r} holds a dict that is neither a state_dict nor a checkpoint (keys: {keys}).",
            hint="Expected tensors keyed by parameter name, or a checkpoint with a `state_dict` key.",
        )
    raise ModelLoadError(f"{str(file)!r} holds a {type(obj).__name__}, not a model or a state_dict.")


def _instantiate(spec: str, kwargs: dict[str, Any], import_root: Path | None) -> nn.Module:
    module_name, class_name = import_path_parts(
        spec, ModelLoadError, what="model-class", form="`package.module:ClassName`",
        example="`model-class: models.cnn:SmallCNN` for class SmallCNN in models/cnn.py.")
    checkout = ImportRoot(import_root)
    where = f" under {str(import_root)!r}" if import_root else ""
    try:
        module = checkout.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"model-class {spec!r}: cannot import module {module_name!r}{where}: {exc}",
            hint="The module path is relative to the repository root, with dots for folders.",
        ) from exc
    except Exception as exc:  # importing user code can raise anything
        raise ModelLoadError(f"model-class {spec!r}: importing {module_name!r} failed: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        found = sorted(
            name
            for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, nn.Module) and value.__module__ == module.__name__
        )
        problem = "is not an nn.Module subclass" if cls is not None else "does not exist"
        raise ModelLoadError(
            f"model-class {spec!r}: {class_name!r} {problem} in {module_name!r}.",
            hint=f"nn.Module classes defined there: {_listing(found) or 'none'}.",
        )
    try:
        with checkout:  # the constructor is user code too
            return cls(**kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"model-class {spec!r}: {class_name}(**{kwargs!r}) failed: {exc}",
            hint="Pass the constructor arguments the weights were trained with as `model-kwargs` (JSON).",
        ) from exc


def _load_weights(module: nn.Module, state: dict[str, torch.Tensor], file: Path, spec: str) -> None:
    expected = module.state_dict()
    prefix = _best_prefix(list(state), list(expected))
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    missing = [k for k in expected if k not in weights]
    # outside a stripped prefix (a Lightning module's loss, metrics, ...) extra keys are not ours
    unexpected = [k for k in weights if k not in expected]
    mismatched = [
        f"{k}: file {tuple(weights[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in weights and weights[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [
            f"{label} ({len(keys)}): {_listing(keys)}"
            for label, keys in (
                ("missing in file", missing),
                ("unexpected in file", unexpected),
                ("shape mismatch", mismatched),
            )
            if keys
        ]
        stripped = f" after stripping prefix {prefix!r}" if prefix else ""
        raise ModelLoadError(
            f"Weights in {str(file)!r} do not fit model-class {spec!r}{stripped}: " + "; ".join(parts) + ".",
            hint="Check that model-class and model-kwargs match the training code that saved the weights.",
        )
    module.load_state_dict(weights, strict=True)


def _best_prefix(keys: list[str], expected: list[str]) -> str:
    """The prefix (``""``, ``"model."``, ``"module."``, ...) whose removal matches most expected keys."""
    wanted = set(expected)
    candidates = {""}
    for key in keys:
        for name in wanted:
            if key.endswith("." + name):
                candidates.add(key[: -len(name)])

    def score(prefix: str) -> tuple[int, int]:
        hits = sum(1 for k in keys if k.startswith(prefix) and k[len(prefix) :] in wanted)
        return hits, -len(prefix)

    return max(sorted(candidates), key=score)


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", … ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")
