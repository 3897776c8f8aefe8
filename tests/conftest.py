"""Fixtures shared by every test layer; the fakes ship as real modules under tests/fakes/."""

from __future__ import annotations

pytest_plugins = [
    "tests.fakes.github.server",
    "tests.fakes.gcs",
    "tests.fakes.gcp_wif",
    "tests.fakes.wandb_server",
    "tests.fakes.dvc_repo",
    "tests.reliability.catalogue",
]
