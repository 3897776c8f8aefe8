"""``engine: ray``: the shards reduced as Ray tasks on the user's cluster, their states merged here.

The other half of :func:`mlgate.data.shards.reduce_in_order`: :meth:`RayEngine.reduce` yields each shard
with its :class:`~mlgate.data.stats.ShardState` in shard order, so :func:`~mlgate.data.stats.compute_stats`
merges them exactly as it merges the local engine's, and the report is the same.

What crosses to the cluster is a shard's *description* (paths and row or file ranges; a streaming shard's
repository, revision and files) and the :class:`~mlgate.data.stats.ShardTask`'s plain values: never a key,
token or credential file, never this runner's environment. Each task opens its shard on the node where Ray
runs it, with that node's own identity (Workload Identity on GKE). Scheduling, moving the states back and
retrying the tasks of a node that died are Ray's (``max_retries``); nothing here re-runs a task.

Ray is imported only here, and this module only with ``engine: ray``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgate import workflow
from mlgate.data.ray_near_duplicates import attach_thumbnails, detach_thumbnails, keeps_thumbnails
from mlgate.data.shards import WholeSplit
from mlgate.errors import ExitCode, MlgateError

if TYPE_CHECKING:
    from mlgate.data.shards import Shard
    from mlgate.data.stats import ShardState, ShardTask

TASK_RETRIES = 3
"""Times Ray re-runs a shard's task whose node or worker process died (Ray's own retry, not ours)."""
IN_FLIGHT_PER_CPU = 4
"""Tasks submitted ahead per CPU of the cluster: enough that no CPU waits for the next description, few
enough that finished states wait in the cluster's object store, not in this process, until their turn."""
REACHABLE_TIMEOUT_S = 10.0
"""How long the head's port may take to accept a TCP connection before the cluster counts as unreachable."""
PROGRESS_EVERY_S = 5.0


class ClusterUnreachable(MlgateError):
    """Raised when the Ray cluster at ``ray-address`` cannot be reached, or is lost during the run (its
    head gone, a task's retries spent on dying nodes): nothing is published; rerunning may succeed."""

    title = "Ray cluster unreachable"
    exit_code = ExitCode.SERVICE


class ClusterVersionMismatch(MlgateError):
    """Raised when the cluster runs another Ray version, or another Python minor version, than this runner:
    Ray refuses to connect them, and states pickled by one Python may not load in another."""

    title = "Ray or Python version differs from the cluster's"
    exit_code = ExitCode.ERROR


class RayNotInstalled(MlgateError):
    title = "Ray is not installed"
    exit_code = ExitCode.ERROR


def _ray_pin() -> str:
    # local: ray is optional and slow to import; only the ray engine needs it
    import ray

    return str(ray.__version__)


@dataclass(frozen=True)
class Versions:
    ray: str
    python: str

    def __str__(self) -> str:
        return f"Ray {self.ray} on Python {self.python}"


def local_versions() -> Versions:
    return Versions(_ray_pin(), ".".join(map(str, sys.version_info[:3])))


_MISMATCH = re.compile(r"cluster was started with:\s*Ray: (\S+)\s*Python: (\S+)")


def version_mismatch(address: str, text: str) -> ClusterVersionMismatch | None:
    """The error for Ray's "Version mismatch" refusal (its text names the cluster's versions), else None."""
    found = _MISMATCH.search(text)
    if found is None:
        return None
    cluster, ours = Versions(found[1], found[2]), local_versions()
    python = ".".join(ours.python.split(".")[:2])
    return ClusterVersionMismatch(
        f"The Ray cluster at {address} runs {cluster}; this runner runs {ours}. Ray connects only equal Ray "
        "versions and equal Python minor versions.",
        hint=f"Run the cluster's head and workers with Ray {ours.ray} and Python {python}: the mlgate image of this "
        f"release has both (README, `engine: ray`), e.g. in the RayCluster\n"
        f"  rayVersion: '{ours.ray}'\n  image: ghcr.io/mlgate/mlgate:<this release>\n"
        f"or use the mlgate release whose Ray is {cluster.ray}.",
    )


def resolve(address: str, environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """``ray-address`` as Ray takes it: ``auto`` is the ``RAY_ADDRESS`` variable."""
    if address != "auto":
        return address
    found = (environ if environ is not None else os.environ).get("RAY_ADDRESS", "").strip()
    if not found:
        raise ClusterUnreachable(
            "`ray-address: auto` reads the cluster's address from RAY_ADDRESS, which is not set.",
            hint="Set it in the job, or name the head:\n  with:\n    engine: ray\n"
            "    ray-address: ray://raycluster-mlgate-head-svc:10001",
        ) from None
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host.strip("[]"), int(port)


def _unreachable(address: str, why: str) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"Cannot reach the Ray cluster at {address}: {why}. Nothing was measured or published.",
        hint="Check that the head is running and that this runner can reach its port (the Ray Client port, "
        "10001 by default: `ray start --head --ray-client-server-port=10001`, or the RayCluster's head "
        "service); rerun when it answers.",
    )


@contextlib.contextmanager
def connect(address: str) -> Iterator[RayEngine]:
    """A :class:`RayEngine` on the cluster at ``address`` (``ray-address``), disconnected on leaving."""
    try:
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray
        from ray._private import auto_init_hook
    except ImportError as exc:
        raise RayNotInstalled(
            "`engine: ray` needs the `ray` package in the environment that runs mlgate.",
            hint="The mlgate image has it; elsewhere: pip install -r requirements.txt (it pins ray[client]).",
        ) from exc
    # a Ray call after the connection dropped must fail, not start or join a Ray of its own on this
    # runner (Ray's auto-init, which RAY_ENABLE_AUTO_CONNECT=0 turns off only before ray is imported)
    auto_init_hook.enable_auto_connect = False
    target = resolve(address)
    shown = address if address == target else f"{target} (RAY_ADDRESS)"
    try:
        socket.create_connection(_host_port(target), timeout=REACHABLE_TIMEOUT_S).close()
    except OSError as exc:
        raise _unreachable(shown, exc.strerror or type(exc).__name__) from None
    try:
        _init(ray, target)
    except RuntimeError as exc:
        raise version_mismatch(shown, str(exc)) or _unreachable(shown, str(exc).splitlines()[0]) from exc
    except (ConnectionError, TimeoutError) as exc:
        raise _unreachable(shown, str(exc)) from exc
    try:
        engine = RayEngine(shown)
        print(f"  Ray cluster at {shown}: {engine.nodes()} nodes, {int(ray.cluster_resources().get('CPU', 0))} "
              f"CPUs, {local_versions()}", flush=True)
        yield engine
    finally:
        ray.shutdown()


CONNECT_TRIES = 3
"""Tries of ``ray.init`` when the head's Ray Client proxy answers but the server it starts for this
connection dies while starting ("Initialization failure from server"), which a busy head does now and
then; the next try gets a fresh server. An unreachable head is not retried here (Ray Client retries it)."""


def _init(ray: Any, address: str) -> None:
    for attempt in range(1, CONNECT_TRIES + 1):
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            return
        except ConnectionAbortedError:
            if attempt == CONNECT_TRIES:
                raise
            time.sleep(attempt)


def _reduce_on_node(task: ShardTask, shard: Shard, keep_thumbnails: bool) -> tuple[ShardState, str, Any]:
    """Runs on a cluster node: reads the shard there, with the node's identity, and reduces it. With
    ``keep_thumbnails``, its near-duplicate thumbnails are a return of their own, left on the cluster
    (:mod:`mlgate.data.ray_near_duplicates`)."""
    # local: ray is optional and slow to import; only the ray engine needs it
    import ray

    state = task(shard)
    thumbs = detach_thumbnails(state) if keep_thumbnails else None
    return state, ray.get_runtime_context().get_node_id(), thumbs


@dataclass
class RayEngine:
    """The shards as Ray tasks on the connected cluster (see :func:`connect`); ``address`` is for messages."""

    address: str
    nodes_used: set[str] | None = None
    """The nodes that returned a state in the last :meth:`reduce`."""

    def nodes(self) -> int:
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray

        return sum(bool(node.get("Alive")) for node in ray.nodes())

    def reduce(self, shards: list[Shard], task: ShardTask) -> Iterator[tuple[Shard, ShardState]]:
        """Each shard with its state, in shard order; the tasks run on the cluster, at most
        :data:`IN_FLIGHT_PER_CPU` per CPU ahead of the shard being merged. A dataset-class split (a
        :class:`~mlgate.data.shards.WholeSplit`, whose objects need not pickle) is reduced here, in turn."""
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray

        # state, node, thumbnails: three objects, so the thumbnails can stay on the cluster, owned here
        remote = ray.remote(_reduce_on_node).options(num_cpus=1, max_retries=TASK_RETRIES,
                                                     retry_exceptions=False, num_returns=3)
        keep = task.near_duplicates and keeps_thumbnails(sum(shard.size for shard in shards
                                                             if not isinstance(shard, WholeSplit)))
        ahead = max(2, IN_FLIGHT_PER_CPU * int(self._guard(ray.cluster_resources).get("CPU", 1)))
        todo = iter(shards)
        pending: deque[tuple[Shard, Any]] = deque()
        self.nodes_used = set()
        done, total = 0, sum(not isinstance(shard, WholeSplit) for shard in shards)
        say = workflow.progress(0)  # said every PROGRESS_EVERY_S, below
        last = time.monotonic()
        try:
            while True:
                while len(pending) < ahead and (shard := next(todo, None)) is not None:
                    pending.append((shard, None if isinstance(shard, WholeSplit) else remote.remote(task, shard, keep)))
                if not pending:
                    return
                shard, ref = pending[0]
                if ref is None:
                    pending.popleft()
                    yield shard, task(shard)
                    continue
                ready, _ = self._guard(ray.wait, ref[:2], num_returns=2, timeout=PROGRESS_EVERY_S)
                if len(ready) == 2:
                    state, node = self._guard(ray.get, ref[:2])
                    if keep:
                        attach_thumbnails(state, ref[2])
                    pending.popleft()
                    done += 1
                    self.nodes_used.add(node)
                    yield shard, state
                if time.monotonic() - last >= PROGRESS_EVERY_S:  # ray.nodes() asks the head: not every shard
                    last = time.monotonic()
                    say(f"{done:,} of {total:,} shards done on the Ray cluster ({len(self.nodes_used)} nodes so far, "
                        f"{self._guard(self.nodes)} alive)")
        finally:
            for _, ref in pending:
                if ref is not None and ray.is_initialized():
                    with contextlib.suppress(Exception):  # the run is ending; the cluster may be gone already
                        ray.cancel(ref[0])

    def _guard(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call`` with Ray's failures as mlgate's: a task's own error (a corrupt file, an unreadable
        shard) as raised on the node; the cluster lost (head gone, retries spent) as :class:`ClusterUnreachable`."""
        # local: ray is optional and slow to import; only the ray engine needs it
        import grpc
        import ray.exceptions

        try:
            if not ray.is_initialized():  # the client saw the head go and disconnected
                raise ConnectionError("the connection to the head was closed")
            return call(*args, **kwargs)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, MlgateError):
                raise cause from None
            raise
        except (ray.exceptions.RayError, ConnectionError, grpc.RpcError, ValueError) as exc:
            if isinstance(exc, ValueError) and "closed channel" not in str(exc):
                raise  # not the connection: a bug, reported as one
            # Ray Client over a channel the head closed: grpc's "Cannot invoke RPC on closed channel!"
            raise ClusterUnreachable(
                f"Lost the Ray cluster at {self.address} during the run: {_first_line(exc)}. Nothing was published.",
                hint="Ray retried the shards of dead nodes; the cluster itself went away (its head, or every node "
                f"that could run the tasks). Rerun when it is back; a task is retried {TASK_RETRIES} times.",
            ) from exc


__all__ = ["ClusterUnreachable", "ClusterVersionMismatch", "RayEngine", "connect"]
