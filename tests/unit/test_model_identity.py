"""Which two model versions are one: the registry's version id decides, the digest only checks."""

from __future__ import annotations

import pytest

from mlgate.errors import ExitCode
from mlgate.model.registry import InconsistentVersion, ModelVersion, same_version


def version(name: str, id: str | None, digest: str | None) -> ModelVersion:
    return ModelVersion(name=name, version=name.rsplit(":", 1)[1], aliases=[], collection="mnist-cnn",
                        digest=digest, metadata={}, id=id)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param(("acme/p/m:v1", "QTox", ""), ("acme/p/m:v2", "QToy", ""), False, id="empty digests, two ids"),
        pytest.param(("acme/p/m:v1", "QTox", None), ("acme/p/m:v2", "QToy", None), False, id="no digests, two ids"),
        pytest.param(("acme/p/m:v1", "QTox", "d1"), ("acme/p/m:v2", "QToy", "d1"), False,
                     id="byte-identical re-log, two ids"),
        pytest.param(("acme/p/m:v1", "QTox", "d1"), ("acme/p/m:v1", "QTox", "d1"), True, id="one id, one digest"),
        pytest.param(("acme/p/m:v1", "QTox", ""), ("acme/p/m:v1", "QTox", "d1"), True,
                     id="one id, a digest missing on one side"),
        pytest.param(("acme/p/m:v1", None, ""), ("acme/p/m:v1", "QTox", ""), True, id="an id unknown: by name"),
        pytest.param(("acme/p/m:v1", None, ""), ("acme/p/m:v2", None, ""), False,
                     id="ids unknown, empty digests: by name"),
    ],
)
def test_same_version__by_version_id_never_by_digest_alone(
    a: tuple[str, str | None, str | None], b: tuple[str, str | None, str | None], same: bool
) -> None:
    assert same_version(version(*a), version(*b)) is same
    assert same_version(version(*b), version(*a)) is same


def test_same_version__none_is_no_version() -> None:
    assert same_version(version("acme/p/m:v1", "QTox", ""), None) is False


def test_same_version__one_id_with_two_digests_is_an_inconsistent_answer() -> None:
    with pytest.raises(InconsistentVersion, match=r"acme/p/m:v1 .*d1 and d2") as raised:
        same_version(version("acme/p/m:v1", "QTox", "d1"), version("acme/p/m:v1", "QTox", "d2"))
    assert raised.value.exit_code == ExitCode.SERVICE
