"""``engine: ray`` without a cluster: its inputs, the address it resolves, Ray's version refusal read
into a message that names both versions and the fix. (The engine itself runs against a real
multi-node cluster in tests/integration/test_ray_engine.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlgate.errors import ExitCode, InvalidInput
from mlgate.settings import DataStatsSettings, load_settings


def _inputs(**overrides: str) -> dict[str, str]:
    return {"mode": "data-stats", "data": "data/processed", **{k.replace("_", "-"): v for k, v in overrides.items()}}


def test_engine__defaults_to_local_without_an_address() -> None:
    settings = load_settings(_inputs())
    assert isinstance(settings, DataStatsSettings)
    assert (settings.engine, settings.ray_address) == ("local", None)


@pytest.mark.parametrize("address", ["ray://raycluster-mlgate-head-svc.ray.svc:10001", "10.0.0.5:6379", "auto",
                                     "ray://[::1]:10001"])
def test_ray_address__takes_a_client_address_a_gcs_address_or_auto(address: str) -> None:
    settings = load_settings(_inputs(engine="ray", ray_address=address))
    assert isinstance(settings, DataStatsSettings) and settings.ray_address == address


def test_engine_ray__without_ray_address__names_the_input_and_an_example() -> None:
    with pytest.raises(InvalidInput) as raised:
        load_settings(_inputs(engine="ray"))
    assert "`ray-address`" in raised.value.message and "ray://HOST:10001" in raised.value.message
    assert "ray-address: ray://" in raised.value.hint


@pytest.mark.parametrize("address", ["http://head:8265", "head", "ray://head", "ray://head:port"])
def test_ray_address__anything_else__names_what_is_allowed(address: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_settings(_inputs(engine="ray", ray_address=address))
    assert "`ray-address`" in raised.value.message and "`auto`" in raised.value.message


def test_engine__other_values_are_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        load_settings(_inputs(engine="spark"))
    assert "`local`, `ray`" in raised.value.message


def test_resolve__auto_reads_ray_address_and_fails_exit_3_when_it_is_unset() -> None:
    from mlgate.data.ray_engine import ClusterUnreachable, resolve

    assert resolve("auto", {"RAY_ADDRESS": "ray://head:10001"}) == "ray://head:10001"
    assert resolve("ray://other:10001", {"RAY_ADDRESS": "ray://head:10001"}) == "ray://other:10001"
    with pytest.raises(ClusterUnreachable) as raised:
        resolve("auto", {})
    assert raised.value.exit_code == ExitCode.SERVICE and "RAY_ADDRESS" in raised.value.message


def test_version_mismatch__rays_refusal__names_both_versions_and_the_fix() -> None:
    """The text is Ray's own (ray._private.utils.check_version_info), produced here by Ray itself."""
    pytest.importorskip("ray")
    from ray._private.utils import check_version_info

    from mlgate.data.ray_engine import local_versions, version_mismatch

    ours = local_versions()
    with pytest.raises(RuntimeError) as refused:
        check_version_info({"ray_version": "2.41.0", "python_version": "3.10.12"}, "Ray Client",
                           python_version_match_level="minor")
    error = version_mismatch("ray://head:10001", str(refused.value))
    assert error is not None and error.exit_code == ExitCode.ERROR
    assert "Ray 2.41.0 on Python 3.10.12" in error.message and str(ours) in error.message
    assert "ray://head:10001" in error.message
    assert f"rayVersion: '{ours.ray}'" in error.hint
    assert version_mismatch("ray://head:10001", "Failed to connect to GCS") is None


def test_version_mismatch__another_python_minor_on_the_cluster__names_both_pythons_and_the_fix() -> None:
    """Ray equal, Python 3.9 on the cluster: Ray's own refusal (check_version_info, as Ray Client calls it)."""
    pytest.importorskip("ray")
    from ray._private.utils import check_version_info

    from mlgate.data.ray_engine import local_versions, version_mismatch

    ours = local_versions()
    with pytest.raises(RuntimeError) as refused:
        check_version_info({"ray_version": ours.ray, "python_version": "3.9.18"}, "Ray Client",
                           python_version_match_level="minor")
    error = version_mismatch("ray://head:10001", str(refused.value))
    assert error is not None and error.exit_code == ExitCode.ERROR
    assert f"Ray {ours.ray} on Python 3.9.18" in error.message and f"on Python {ours.python}" in error.message
    assert "the Python minor versions differ." in error.message and "the Ray versions" not in error.message
    minor = ".".join(ours.python.split(".")[:2])
    assert f"Python {minor}" in error.hint and "mlgate image" in error.hint


def test_default_path__does_not_import_ray() -> None:
    probe = "import sys, mlgate.cli, mlgate.data.mode, mlgate.data.stats; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"
