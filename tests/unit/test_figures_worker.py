from __future__ import annotations

import dataclasses
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mlgate.figures.worker import (
    AccuracyDelta,
    ConfusionMatrix,
    FigureJob,
    FigureWorker,
    LabelDistribution,
    LossCurve,
    PixelHistogram,
    SampleGrid,
    _load_jobs,
    render_jobs,
    serve,
)


def jobs() -> dict[str, FigureJob]:
    rng = np.random.default_rng(0)
    displays = {label: [rng.random((28, 28, 3), dtype=np.float32) for _ in range(3)] for label in range(4)}
    return {
        "label_distribution": LabelDistribution({"train": {"0": 5, "1": 7}, "test": {"0": 1, "1": 2}}),
        "sample_grid": SampleGrid(displays, ["a", "b", "c", "d"], per_class=3),
    }


def test_worker__renders_the_same_png_bytes_as_this_process() -> None:
    worker = FigureWorker.start()
    try:
        remote = worker.render(jobs())
    finally:
        worker.close()
    assert list(remote) == ["label_distribution", "sample_grid"]
    assert remote == render_jobs(jobs())


def test_worker_that_died__falls_back_to_rendering_here() -> None:
    worker = FigureWorker.start()
    assert worker._process is not None
    worker._process.kill()
    worker._process.wait()
    assert worker.render(jobs()) == render_jobs(jobs())


def test_no_worker__renders_here() -> None:
    assert FigureWorker(None).render(jobs())["sample_grid"].startswith(b"\x89PNG")


def test_jobs__of_every_kind_cross_the_process_boundary_unchanged() -> None:
    every_kind: dict[str, FigureJob] = {
        **jobs(),
        "compared": LabelDistribution({"train": {"0": 5}}, base_counts={"train": {"0": 4}}, base_name="main"),
        "pixel_histogram": PixelHistogram({"train": ([1, 2], [0.0, 0.5, 1.0])}, items={"train": 3},
                                          base={"train": ([2, 1], [0.0, 0.5, 1.0])}, base_name="main"),
        "loss": LossCurve([np.float32(2.5), np.float64(1.5), 1.0], title="baseline", step_every=10),  # numpy too
        "confusion": ConfusionMatrix([[3, 1], [0, 4]], ["cat", "dog"], model="m:v1", split="test"),
        "delta": AccuracyDelta({"0": 0.9}, {"0": 0.8}, candidate_name="m:v2", production_name="m:v1", split="test",
                               eval_samples=10, overall=(0.9, 0.8)),
    }
    sent = pickle.dumps(every_kind)

    received = _load_jobs(io.BytesIO(sent))

    assert [type(job) for job in received.values()] == [type(job) for job in every_kind.values()]
    for name, job in every_kind.items():
        np.testing.assert_equal(dataclasses.asdict(received[name]), dataclasses.asdict(job))
    assert all(png.startswith(b"\x89PNG") for png in render_jobs(received).values())  # every field reaches its figure


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a hostile stream would carry: a call made while unpickling
        return (os.system, (f"touch {self.marker}",))


def test_worker__refuses_a_stream_that_names_any_other_function_without_calling_it(tmp_path) -> None:
    marker = tmp_path / "ran"
    stream = pickle.dumps({"label_distribution": LabelDistribution({"train": {"0": _RunsCode(marker)}})})
    answer = io.BytesIO()

    serve(io.BytesIO(stream), answer)

    assert not marker.exists()
    status, text = pickle.loads(answer.getvalue())
    assert status == "error"
    assert "system" in text


def test_worker__refuses_anything_but_a_mapping_of_names_to_jobs() -> None:
    with pytest.raises(pickle.UnpicklingError, match="figure job"):
        _load_jobs(io.BytesIO(pickle.dumps({"label_distribution": ("label_distribution", (), {})})))


def test_worker__draws_what_was_sent_early_and_late_alike() -> None:
    early, late = dict(list(jobs().items())[:1]), dict(list(jobs().items())[1:])
    worker = FigureWorker.start()
    try:
        worker.send(early)  # drawn while the caller goes on
        drawn = worker.render(late)
    finally:
        worker.close()
    assert drawn == render_jobs(jobs())


def test_worker_that_dies_after_the_first_request__draws_the_rest_here() -> None:
    early, late = dict(list(jobs().items())[:1]), dict(list(jobs().items())[1:])
    worker = FigureWorker.start()
    worker.send(early)
    assert worker._process is not None
    worker._process.kill()
    worker._process.wait()
    assert worker.render(late) == render_jobs(jobs())
