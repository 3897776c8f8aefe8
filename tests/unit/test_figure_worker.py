from __future__ import annotations

import numpy as np

from mlgate.data.figure_worker import FigureWorker, Job, render_jobs


def jobs() -> dict[str, Job]:
    rng = np.random.default_rng(0)
    displays = {label: [rng.random((28, 28, 3), dtype=np.float32) for _ in range(3)] for label in range(4)}
    return {
        "label_distribution": ("label_distribution", ({"train": {"0": 5, "1": 7}, "test": {"0": 1, "1": 2}},), {}),
        "sample_grid": ("sample_grid_of_displays", (displays, ["a", "b", "c", "d"]), {"per_class": 3}),
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
