"""Lineage verdict and the ``require-data-lineage`` gate (pure: a Lineage and hashes in, a verdict out)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mlgate.model.lineage import judge, lineage_gate, normalise, short
from mlgate.model.registry import Lineage, LineageRun, UsedArtifact
from mlgate.model.report import ModelReport, lineage_section
from tests.github_markdown import render, unsafe

# a DVC folder hash is the md5 of the folder's listing, written with a ".dir" suffix
REPO = hashlib.md5(b"data/processed listing v2").hexdigest() + ".dir"
OLD = hashlib.md5(b"data/processed listing v1").hexdigest() + ".dir"
RUN = LineageRun(id="3kq9x2ab", name="brisk-sun-12", project="acme/mnist-train",
                 url="https://wandb.ai/acme/mnist-train/runs/3kq9x2ab")


def lineage(config: dict[str, Any] | None = None, used: list[UsedArtifact] | None = None,
            run: LineageRun | None = RUN) -> Lineage:
    return Lineage(run=run, config=config or {}, used=used or [])


def dataset(name: str = "acme/mnist-train/mnist-data:v3", type: str = "dataset", **metadata: Any) -> UsedArtifact:
    return UsedArtifact(name=name, type=type, digest="0" * 32, metadata=metadata)


def test_config_hash_with_dir_suffix__matches_the_repository_hash_without_it() -> None:
    result = judge(lineage({"data_md5": REPO.removesuffix(".dir").upper(), "lr": 0.1}), {},
                   eval_data="data/processed", repository_hash=REPO)

    assert result.verdict == "matches"
    assert [(h.value, h.source) for h in result.hashes] == [(REPO.removesuffix(".dir"), "run config `data_md5`")]
    assert result.reason == (f"trained on data version {REPO.removesuffix('.dir').upper()} (run config `data_md5`), "
                             f"the repository's `data/processed`")


def test_dataset_artifact_md5__read_only_from_data_artifacts() -> None:
    used = [dataset(md5=OLD), dataset("acme/zoo/resnet:v1", type="model", md5=REPO)]

    result = judge(lineage(used=used), {}, eval_data="data/processed", repository_hash=REPO)

    assert result.verdict == "differs"  # the model artifact's md5 is not a data version
    assert [d.name for d in result.datasets] == ["acme/mnist-train/mnist-data:v3"]
    assert result.datasets[0].hashes == {"md5": OLD}
    assert result.hashes[0].source == "dataset acme/mnist-train/mnist-data:v3 metadata `md5`"


def test_model_metadata__data_md5_read_but_md5_not() -> None:
    result = judge(lineage(), {"md5": REPO, "dvc_md5": REPO}, eval_data="data", repository_hash=REPO)
    assert result.verdict == "matches"
    assert [h.source for h in result.hashes] == ["model metadata `dvc_md5`"]

    assert judge(lineage(), {"md5": REPO}, eval_data="data", repository_hash=REPO).verdict == "unknown"


def test_any_matching_hash__matches_and_every_hash_is_listed() -> None:
    result = judge(lineage({"data_hash": OLD}, [dataset(md5=REPO)]), {}, eval_data="d", repository_hash=REPO)

    assert result.verdict == "matches"
    assert len(result.hashes) == 2


def test_value_that_is_not_a_hash__ignored_and_named() -> None:
    result = judge(lineage({"data_version": "v3"}), {}, eval_data="d", repository_hash=REPO)

    assert result.verdict == "unknown"
    assert result.ignored == ["run config `data_version` = 'v3' (not a hash)"]
    assert "logged no data hash" in result.reason


def test_untracked_eval_data__cannot_compare() -> None:
    result = judge(lineage({"data_md5": REPO}), {}, eval_data="data", repository_hash=None,
                   no_repository_hash="eval-data is not tracked by DVC")

    assert (result.verdict, result.reason) == ("unknown", "cannot compare: eval-data is not tracked by DVC")


def test_no_run__unknown_unless_the_model_metadata_names_the_data() -> None:
    assert "no W&B run logged this model version" in judge(lineage(run=None), {}, eval_data="d",
                                                           repository_hash=REPO).reason
    assert judge(lineage(run=None), {"data_md5": REPO}, eval_data="d", repository_hash=REPO).verdict == "matches"


def test_gate__off_by_default_and_passes_on_a_match() -> None:
    matched = judge(lineage({"data_md5": REPO}), {}, eval_data="data", repository_hash=REPO)

    assert lineage_gate(matched, required=False) == []
    [gate] = lineage_gate(matched, required=True)
    assert (gate.name, gate.value, gate.threshold, gate.passed) == ("require-data-lineage", True, True, True)


def test_gate__fails_on_a_different_hash_naming_both_and_the_fix() -> None:
    differs = judge(lineage({"dvc_md5": OLD}), {}, eval_data="data/processed", repository_hash=REPO)

    [gate] = lineage_gate(differs, required=True)

    assert (gate.value, gate.passed) == (False, False)
    assert OLD in gate.detail and REPO in gate.detail
    assert "retrain on the repository's data" in gate.detail


@pytest.mark.parametrize("result", [
    judge(Lineage(run=RUN, config={}, used=[]), {}, eval_data="data", repository_hash=REPO),
    judge(Lineage(run=RUN, config={"data_md5": REPO}, used=[]), {}, eval_data="data", repository_hash=None),
    None,
])
def test_gate__fails_when_unknown_and_says_how_to_log_the_data_version(result: Any) -> None:
    [gate] = lineage_gate(result, required=True)

    assert (gate.value, gate.passed) == (None, False)
    assert "wandb.config['data_md5']" in gate.detail and "run.use_artifact" in gate.detail


def test_normalise_and_short() -> None:
    assert normalise(" ABCDEF0123456789.dir ") == "abcdef0123456789"
    assert short("abcdef0123456789abcdef0123456789.dir") == "abcdef01….dir"
    assert short("abc123") == "abc123"


def test_section__headline_run_link_and_datasets() -> None:
    result = judge(lineage({"data_md5": REPO}, [dataset(md5=REPO)]), {}, eval_data="data/processed",
                   repository_hash=REPO)

    text = lineage_section(ModelReport.model_construct(lineage=result))

    assert text.startswith("### Lineage\n\n✅ **Trained on data version `")
    assert "(matches the repository's `data/processed`)" in text
    # the W&B run is named and its address shown, never linked (a registry's URL is not this server's)
    assert f"- run: brisk-sun-12 (`acme/mnist-train/3kq9x2ab`, `{RUN.url}`)" in text
    assert f"`acme/mnist-train/mnist-data:v3` (dataset, md5 `{short(REPO)}`)" in text


def test_section__a_free_text_run_name_is_inert_text() -> None:
    run = RUN.model_copy(update={"name": "x](https://evil.example) `\n## Passed @octocat"})
    result = judge(Lineage(run=run, config={}, used=[]), {}, eval_data="data", repository_hash=REPO)

    text = lineage_section(ModelReport.model_construct(lineage=result))

    assert "\n## Passed" not in text
    assert unsafe(text, allowed_url=("https://github.com/",)) == []
    assert "x](https://evil.example) ` ## Passed @octocat" in render(text).replace("\u2060", "")
