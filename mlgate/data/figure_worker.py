"""Render figures in a second process, started before this one imports torch.

On a 2-core runner, importing matplotlib and drawing the figures (about a second) then overlaps
with importing torch and computing the statistics, instead of following them. The worker renders
with the same functions of :mod:`mlgate.data.figures`, so the PNG bytes are identical; if it cannot
start or fails, the caller renders in-process.

Protocol (private): the parent writes one pickled ``{name: (function, args, kwargs)}`` to the
worker's stdin and reads one pickled ``{name: png bytes}`` (or ``("error", text)``) from its stdout.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Job = tuple[str, tuple[Any, ...], dict[str, Any]]
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class FigureWorker:
    def __init__(self, process: subprocess.Popen[bytes] | None) -> None:
        self._process = process

    @classmethod
    def start(cls) -> FigureWorker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            process = subprocess.Popen([sys.executable, "-m", "mlgate.data.figure_worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=env)
        except OSError:
            process = None
        return cls(process)

    def render(self, jobs: Mapping[str, Job]) -> dict[str, bytes]:
        """PNG bytes per job name; renders in this process when the worker is unavailable."""
        rendered = self._render_remote(jobs) if self._process is not None else None
        if rendered is None:
            rendered = render_jobs(jobs)
        return rendered

    def _render_remote(self, jobs: Mapping[str, Job]) -> dict[str, bytes] | None:
        process, self._process = self._process, None
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(pickle.dumps(dict(jobs)))
            process.stdin.close()
            answer = pickle.load(process.stdout)  # our own child's output: trusted
            process.wait(timeout=60)
        except (OSError, EOFError, pickle.UnpicklingError, subprocess.TimeoutExpired):
            _stop(process)
            return None
        finally:
            process.stdout.close()
        if isinstance(answer, tuple):  # ("error", text): render here, so the real exception surfaces
            return None
        return dict(answer)

    def close(self) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            with contextlib.suppress(OSError):  # a broken pipe to a killed worker
                pipe.close()


def render_jobs(jobs: Mapping[str, Job]) -> dict[str, bytes]:
    from mlgate.data import figures

    return {name: getattr(figures, function)(*args, **kwargs) for name, (function, args, kwargs) in jobs.items()}


def _serve() -> None:
    # warm up while the parent imports torch: matplotlib, the Agg canvas, fonts and text layout
    # (a first figure costs about three times a later one)
    from mlgate.data import figures

    figures.label_distribution({"warm-up": {"0": 1}})
    try:
        jobs = pickle.load(sys.stdin.buffer)  # from our own parent: trusted
    except EOFError:
        return  # the parent did not need figures after all
    try:
        answer: object = render_jobs(jobs)
    except Exception as exc:  # reported back; the parent re-renders and raises it properly
        answer = ("error", repr(exc))
    sys.stdout.buffer.write(pickle.dumps(answer))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
