"""The machine and versions a measurement was taken on, for the report's "How this was measured"."""

from __future__ import annotations

import os
import platform

import torch

from mlgate.model.measure.values import Environment


def environment(threads: int) -> Environment:
    return Environment(
        torch=torch.__version__,
        python=platform.python_version(),
        cpu=_cpu_name(),
        threads=threads,
        platform=platform.platform(),
    )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"
