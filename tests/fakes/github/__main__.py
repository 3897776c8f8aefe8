"""``python -m tests.fakes.github``: serve a seeded fake GitHub until interrupted."""

from __future__ import annotations

from tests.fakes.github.server import main

main()
