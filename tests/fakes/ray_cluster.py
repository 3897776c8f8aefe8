"""A real local multi-node Ray cluster in its own process, driven over stdin: a test starts it, reaches it
as a runner reaches a KubeRay head (``ray://127.0.0.1:PORT``), and kills a node or the head mid-run.

Not a fake: the head and every node are Ray's own (``ray.cluster_utils.Cluster``: a GCS, a raylet and an
object store per node, the Ray Client server on the head). It runs in a process of its own so that Ray's
start-up (its log files, its threads) stays out of the test process.

    python -m tests.fakes.ray_cluster PORT NODES

prints ``{"address": "ray://127.0.0.1:PORT", "gcs": "HOST:PORT"}`` once the head and ``NODES`` more nodes are
up (each node's environment: the test's, plus what ``env`` adds, e.g. the node's own cloud identity), then
answers one line per command: ``add NAME`` (a node more), ``kill NAME`` (that node's processes
killed at once, as when a machine dies), ``kill-head``; end of input shuts the cluster down.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20}
"""Each node as small as a 2-core machine allows: one CPU, a 100 MB object store."""


def serve(port: int, nodes: int, commands: IO[str], out: IO[str]) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        **NODE, "ray_client_server_port": port, "include_dashboard": False})
    named: dict[str, Any] = {}
    try:
        for _ in range(nodes):
            cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        _wait_for_port(port)  # the head starts its Ray Client server on its own time; a busy machine takes long
        print(json.dumps({"address": f"ray://127.0.0.1:{port}", "gcs": cluster.address}), file=out, flush=True)
        for line in commands:
            verb, _, name = line.strip().partition(" ")
            if verb == "add":
                named[name] = cluster.add_node(**NODE)
                cluster.wait_for_nodes()
            elif verb == "kill":
                cluster.remove_node(named.pop(name), allow_graceful=False)
            elif verb == "kill-head":
                cluster.remove_node(cluster.head_node, allow_graceful=False)
            print("ok", file=out, flush=True)
    finally:
        cluster.shutdown()


def _wait_for_port(port: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class RayCluster:
    """The cluster process, from a test: :attr:`address` to connect to, :meth:`send` a command."""

    def __init__(self, port: int, nodes: int = 1, *, pythonpath: Path, env: Mapping[str, str] | None = None) -> None:
        # its own session folder: Ray's default, /tmp/ray, is shared by every cluster on the machine, and a
        # second test run's driver could find this cluster's address there
        self.temp = tempfile.mkdtemp(prefix="ray-")
        env = {**os.environ, **(env or {}), "RAY_TMPDIR": self.temp,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.ray_cluster", str(port), str(nodes)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                        cwd=pythonpath, start_new_session=True)
        assert self.process.stdout is not None
        started = self.process.stdout.readline()
        if not started:
            raise RuntimeError(f"the Ray cluster did not start (exit {self.process.wait()})")
        info = json.loads(started)
        self.address: str = info["address"]
        self.gcs: str = info["gcs"]

    def send(self, command: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer == "ok", (command, answer)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            # what a killed head left running (its Ray Client server for a connection holds port 23000 on)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            shutil.rmtree(self.temp, ignore_errors=True)


def running(port: int, nodes: int, pythonpath: Path, env: Mapping[str, str] | None = None) -> Iterator[RayCluster]:
    """The cluster for a ``with``/``yield from``; ``env`` is added to every node's environment (the nodes'
    own identity: ``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST``), never the driver's."""
    cluster = RayCluster(port, nodes, pythonpath=pythonpath, env=env)
    try:
        yield cluster
    finally:
        cluster.close()


if __name__ == "__main__":
    answers = os.fdopen(os.dup(1), "w")  # the protocol; whatever Ray prints goes to stderr
    os.dup2(2, 1)
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.stdin, answers)
