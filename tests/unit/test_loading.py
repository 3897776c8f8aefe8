"""load_model: every format gives the original model's outputs; unsafe or mismatched files fail clearly."""

from __future__ import annotations

import inspect
import shutil
import sys
from pathlib import Path

import pytest
import torch

from mlgate.model.loading import LoadedModel, ModelLoadError, UnsafePickleRefused, load_model
from tests.fixtures import model_zoo
from tests.fixtures.models import MODEL_CLASS, MODEL_KWARGS, make_images, save_all_formats, trained_cnn

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMATS = ["torchscript", "export", "state_dict", "lightning", "pickle"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_all_formats(trained_cnn(), tmp_path_factory.mktemp("formats"))


def _load(path: Path, **overrides: object) -> LoadedModel:
    options: dict[str, object] = {
        "model_class": MODEL_CLASS,
        "model_kwargs": MODEL_KWARGS,
        "import_root": REPO_ROOT,
    }
    options.update(overrides)
    return load_model(path, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_model__every_format_reproduces_the_original_outputs(saved: dict[str, Path], fmt: str) -> None:
    original = trained_cnn()
    loaded = _load(saved[fmt], trust_pickle=fmt == "pickle")

    images, _ = make_images(16, seed=5)
    x = images.float().div(255).unsqueeze(1)
    with torch.inference_mode():
        expected, actual = original(x), loaded.module(x)
    assert loaded.format == fmt
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    assert loaded.params == sum(p.numel() for p in original.parameters())
    assert loaded.size_bytes == saved[fmt].stat().st_size
    assert loaded.path == saved[fmt]


@pytest.mark.parametrize("fmt", ["torchscript", "state_dict", "lightning", "pickle"])
def test_load_model__returns_module_in_eval_mode(saved: dict[str, Path], fmt: str) -> None:
    module = _load(saved[fmt], trust_pickle=True).module
    assert isinstance(module, torch.nn.Module)
    assert not module.training


@pytest.mark.reliability(
    "data", "full-model pickle without `trust-pickle`",
    "exit 2: refused; names the pickled class, suggests a `state_dict` and shows `trust-pickle: true`"
)
def test_load_model__refuses_full_pickle_without_trust(saved: dict[str, Path]) -> None:
    with pytest.raises(UnsafePickleRefused) as info:
        _load(saved["pickle"])
    text = str(info.value)
    assert "trust-pickle: true" in text
    assert "tests.fixtures.model_zoo.SmallCNN" in text
    assert "state_dict" in text


@pytest.mark.reliability(
    "data", "pickle whose `__reduce__` writes a file",
    "refused; the payload never runs (no file written)"
)
def test_load_model__refused_pickle_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return open, (str(marker), "w")

    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": Payload()}, path)

    with pytest.raises(UnsafePickleRefused):
        load_model(path, model_class=MODEL_CLASS)
    assert not marker.exists()


@pytest.mark.reliability(
    "data", "state_dict without `model-class`",
    "exit 2: asks for `model-class`; shows the file's weight names"
)
def test_load_model__state_dict_without_model_class_asks_for_it(saved: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="model-class") as info:
        load_model(saved["state_dict"])
    assert "features.0.weight" in str(info.value)


@pytest.mark.parametrize(
    ("model_class", "expected"),
    [
        ("tests.fixtures.no_such_module:SmallCNN", "cannot import module 'tests.fixtures.no_such_module'"),
        ("tests.fixtures.model_zoo:BigCNN", "'BigCNN' does not exist"),
        ("tests.fixtures.model_zoo:NotAModel", "'NotAModel' is not an nn.Module subclass"),
        ("tests.fixtures.model_zoo.SmallCNN", "not of the form `package.module:ClassName`"),
    ],
)
@pytest.mark.reliability("input", "`model-class: {model_class}`", "exit 2: the message says {expected}")
def test_load_model__wrong_model_class_says_what_is_wrong(
    saved: dict[str, Path], model_class: str, expected: str
) -> None:
    with pytest.raises(ModelLoadError) as info:
        _load(saved["state_dict"], model_class=model_class)
    assert expected in str(info.value)


@pytest.mark.reliability(
    "input", "`model-class` naming a class the module lacks",
    "exit 2: the fix lists the module's classes"
)
def test_load_model__missing_class_lists_the_modules_classes(saved: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError) as info:
        _load(saved["state_dict"], model_class="tests.fixtures.model_zoo:BigCNN")
    assert "SmallCNN" in info.value.hint


@pytest.mark.reliability(
    "input", "`model-kwargs` that build a different shape",
    "exit 2: lists each mismatched weight with file and model shapes"
)
def test_load_model__wrong_kwargs_list_the_mismatched_shapes(saved: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError) as info:
        _load(saved["state_dict"], model_kwargs={"width": 4})
    text = str(info.value)
    assert "shape mismatch" in text
    assert "features.0.weight: file (8, 1, 3, 3) vs model (4, 1, 3, 3)" in text


@pytest.mark.reliability(
    "data", "state_dict with a missing and an unexpected key",
    "exit 2: names the missing and the unexpected keys"
)
def test_load_model__missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = trained_cnn().state_dict()
    state["extra.weight"] = state.pop("head.bias")
    path = tmp_path / "broken.pth"
    torch.save(state, path)

    with pytest.raises(ModelLoadError) as info:
        _load(path)
    text = str(info.value)
    assert "missing in file (1): head.bias" in text
    assert "unexpected in file (1): extra.weight" in text


def test_load_model__strips_data_parallel_prefix_from_tutorial_checkpoint(tmp_path: Path) -> None:
    original = trained_cnn()
    path = tmp_path / "checkpoint.pt"
    state = {f"module.{k}": v for k, v in original.state_dict().items()}
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {}}, path)

    loaded = _load(path)

    x = torch.rand(2, 1, 28, 28)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(x), original(x), rtol=0, atol=0)


def test_load_model__imports_model_class_from_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "repo"
    (checkout / "netpkg").mkdir(parents=True)
    (checkout / "netpkg" / "__init__.py").write_text("")
    source = "import torch\nfrom torch import nn\n\n\n" + inspect.getsource(model_zoo.SmallCNN)
    (checkout / "netpkg" / "checkout_arch.py").write_text(source)
    path = tmp_path / "weights.pth"
    torch.save(trained_cnn().state_dict(), path)
    path_before = list(sys.path)

    try:
        loaded = load_model(
            path, model_class="netpkg.checkout_arch:SmallCNN", model_kwargs={"width": 8}, import_root=checkout
        )
    finally:
        sys.modules.pop("netpkg.checkout_arch", None)
        sys.modules.pop("netpkg", None)

    assert loaded.format == "state_dict"
    assert sys.path == path_before


def test_load_model__directory_with_one_model_file_loads_it(saved: dict[str, Path], tmp_path: Path) -> None:
    download = tmp_path / "artifact"
    download.mkdir()
    shutil.copy(saved["export"], download / "model.pt2")
    (download / "README.md").write_text("card")

    loaded = load_model(download)

    assert loaded.format == "export"
    assert loaded.path == download / "model.pt2"


@pytest.mark.reliability("data", "model folder with two model files", "exit 2: lists both files")
def test_load_model__directory_with_several_model_files_lists_them(saved: dict[str, Path], tmp_path: Path) -> None:
    download = tmp_path / "artifact"
    download.mkdir()
    shutil.copy(saved["export"], download / "a.pt2")
    shutil.copy(saved["state_dict"], download / "b.pth")

    with pytest.raises(ModelLoadError, match=r"2 model files: a\.pt2, b\.pth"):
        load_model(download)


@pytest.mark.reliability(
    "data", "model folder without a model file",
    "exit 2: says no model file and lists what is there"
)
def test_load_model__directory_without_model_file_lists_contents(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"No model file .* notes\.txt"):
        load_model(tmp_path)


@pytest.mark.reliability("input", "`model` path that does not exist", "exit 2: says it does not exist")
def test_load_model__missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope.pt")


@pytest.mark.reliability("data", "`model.pt` that is a text file", "exit 2: says it cannot read the model file")
def test_load_model__non_torch_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_text("not a model")
    with pytest.raises(ModelLoadError, match="Cannot read model file"):
        load_model(path)
