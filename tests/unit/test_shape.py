"""The package's shape holds: no import cycle (not even through a function-local import)."""

from __future__ import annotations

from pathlib import Path

from tests.shape import import_cycles, import_graph, local_imports, settings_flow, settings_reach


def test_package__no_import_cycle_even_through_function_local_imports() -> None:
    assert import_cycles() == []


def test_import_cycles__found_through_a_function_local_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    (package / "d.py").write_text("import pkg.c\n")

    assert import_cycles(package) == [["pkg.a", "pkg.sub.b"]]
    assert import_graph(package)["pkg.c"] == set()  # a TYPE_CHECKING import never runs
    assert import_graph(package)["pkg.d"] == {"pkg.c"}


def test_model_modes__unpack_their_settings_in_the_mode_function_alone() -> None:
    # every step below run_model_gate / run_promote takes the values it uses; the settings object itself
    # goes only to the publishing rim every mode shares (Publication.for_run -> RunContext.report_folder)
    shared_rim = {("mlgate.publish", "for_run"), ("mlgate.context", "report_folder")}
    assert settings_flow("model-gate") == {("mlgate.model.mode", "run_model_gate"), *shared_rim}
    assert settings_flow("promote") == {("mlgate.model.promote", "run_promote"), *shared_rim}


def test_data_stats__unpacks_its_settings_in_the_mode_function_alone() -> None:
    # every step below run_data_stats (the gates, the DVC pull given a DvcInputs copy) takes the values it
    # uses; the settings object itself goes only to the publishing rim the model modes share
    shared_rim = {("mlgate.publish", "for_run"), ("mlgate.context", "report_folder")}
    assert settings_flow("data-stats") == {("mlgate.data.mode", "run_data_stats"), *shared_rim}


def test_settings_flow__follows_the_object_through_calls_but_not_values_taken_from_it(tmp_path: Path) -> None:
    package = tmp_path / "mlgate"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "__init__.py").write_text("")
    (package / "model" / "mode.py").write_text(
        "from mlgate.model.steps import measure, report\n"
        "def run_model_gate(settings, ctx, clients):\n"
        "    measure(settings.threads)\n"  # a value taken from it: not followed
        "    report(title='t', options=settings)\n")
    (package / "model" / "steps.py").write_text(
        "def measure(threads):\n    pass\n"
        "def report(title, options):\n    _footer(options)\n"
        "def _footer(s):\n    pass\n")

    assert settings_flow("model-gate", package) == {("mlgate.model.mode", "run_model_gate"),
                                                    ("mlgate.model.steps", "report"), ("mlgate.model.steps", "_footer")}
    assert settings_reach("model-gate", package) == ["mlgate.model.mode", "mlgate.model.steps"]


def test_model_package__imports_inside_functions_only_to_save_start_up_time_and_says_so() -> None:
    uncommented = [f"{item.module}:{item.line} {item.text}" for item in local_imports()
                   if item.module.startswith("mlgate.model") and not item.commented]
    assert uncommented == []


def test_package__imports_inside_functions_only_to_save_start_up_time_and_says_so() -> None:
    uncommented = [f"{item.module}:{item.line} {item.text}" for item in local_imports() if not item.commented]
    assert uncommented == []


def test_local_imports__an_uncommented_one_is_found_and_a_comment_above_its_run_counts(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "import os\n"
        "def bare():\n    import json\n    return json\n"
        "def above():\n    # local: slow\n    import csv\n    import gzip\n    return csv, gzip\n"
        "def same_line():\n    import zlib  # local: slow\n    return zlib\n")

    found = {item.text: item.commented for item in local_imports(package)}

    assert found == {"import json": False, "import csv": True, "import gzip": True, "import zlib  # local: slow": True}
