"""Fan-out of independent work inside a stage (walk-forward folds x seeds, tuning trials) as
Ray tasks: on a local Ray started on demand, or on a Ray cluster.

Where the tasks run (the ``parallel`` section of params.yaml, which no stage lists as a DVC
param: it changes where fits run, never what they give):

- ``parallel.address`` null and no ``RAY_ADDRESS`` in the environment: a local Ray with
  ``parallel.cpus`` CPUs (null: every core) is started for the stage and shut down after it.
  When the machine has room for only one task at a time (a 2-thread LightGBM on 2 cores), or
  there is one task, nothing is started: the tasks run one after another in this process.
- ``parallel.address`` set (``host:6379``, ``ray://host:10001``, ``auto``) or ``RAY_ADDRESS``
  set: the tasks go to that cluster. Its nodes must see this repository at the same path (a
  shared filesystem: the tasks read the window store and write models there) and have the
  same trendfactory installed.
- ``parallel.address: local`` forces a local Ray even when ``RAY_ADDRESS`` is set.

Results are identical to the sequential path: every task seeds itself from its own arguments
and runs with a fixed thread count (``cpus_per_task``), whichever process or node runs it,
and results come back in the order of the inputs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from trendfactory import numerics
from trendfactory.errors import TrendfactoryError

log = logging.getLogger("trendfactory")

T = TypeVar("T")
R = TypeVar("R")

LOCAL = "local"


@dataclass(frozen=True)
class Placement:
    """Where a stage's tasks run: ``address`` None = a local Ray (or this process)."""

    address: str | None
    cpus: int  # local: CPUs the local Ray may use; cluster: unused
    gpus: int = 0  # local: GPUs the local Ray may hand out (tasks that ask for a share); cluster: unused

    @property
    def is_cluster(self) -> bool:
        return self.address is not None


def placement(address: str | None, cpus: int | None) -> Placement:
    """Resolve ``parallel.address``/``parallel.cpus`` and ``RAY_ADDRESS`` (see module docstring)."""
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    if address == LOCAL:
        address = None
    return Placement(address=address, cpus=int(cpus or os.cpu_count() or 1))


def slots(where: Placement, cpus_per_task: int, gpus_per_task: float = 0.0) -> int:
    """Tasks a local Ray could run at once (a cluster's room is the cluster's business)."""
    room = where.cpus // max(1, cpus_per_task)
    if gpus_per_task > 0:
        room = min(room, int(where.gpus / gpus_per_task + 1e-9))  # a 1/k share: k tasks per GPU
    return max(1, room)


def task_resources(where: Placement, threads: int, device: str | None, per_gpu: int) -> tuple[Placement, int, float]:
    """(the placement with this machine's GPUs, CPUs per task, GPU share per task) for tasks of
    ``threads`` threads that train on ``device`` (a ``train.device`` setting; None: the CPU).

    A GPU task must ask Ray for a share: Ray gives a task that asks for none an empty
    ``CUDA_VISIBLE_DEVICES``, and torch in it sees no GPU. ``per_gpu`` tasks share each GPU
    (``parallel.fits_per_gpu``), the local CPUs split evenly between them; with one GPU and
    ``per_gpu`` 1 there is room for one task, which runs in the stage's own process."""
    if device is None:
        return where, threads, 0.0
    from trendfactory.device import resolve_device  # imports torch: only for tasks that may use it

    if resolve_device(device, "train.device").type == "cpu":
        return where, threads, 0.0
    import torch

    gpus = torch.cuda.device_count()
    where = dataclasses.replace(where, gpus=gpus)
    if where.is_cluster:
        return where, threads, 1.0 / per_gpu
    return where, max(1, where.cpus // max(1, gpus * per_gpu)), 1.0 / per_gpu


def run_tasks(fn: Callable[[T], R], items: Sequence[T], where: Placement, *, cpus_per_task: int = 1, gpus_per_task: float = 0.0, what: str = "task") -> list[R]:
    """``[fn(x) for x in items]``, fanned out as Ray tasks of ``cpus_per_task`` CPUs (and a
    ``gpus_per_task`` share of a GPU: 0.25 puts four on one GPU, Ray picks which GPU and
    sets ``CUDA_VISIBLE_DEVICES``) each when that can run two or more at once; in this process
    otherwise. ``fn`` must be a module-level function and ``items`` picklable. The first task
    to fail raises its own error here."""
    items = list(items)
    if len(items) <= 1 or (not where.is_cluster and slots(where, cpus_per_task, gpus_per_task) <= 1):
        return [fn(x) for x in items]
    mode = numerics.state().mode
    ray = _connect(where, mode)
    started = time.perf_counter()
    try:
        remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(_call)
        refs = [remote.remote(fn, x, mode) for x in items]
        n = min(len(items), slots(where, cpus_per_task, gpus_per_task)) if not where.is_cluster else len(items)
        share = f" and {gpus_per_task:g} GPU" if gpus_per_task else ""
        log.info("%d %ss on Ray (%s, %d CPU%s%s each, up to %d at once)", len(items), what, where.address or f"local, {where.cpus} CPUs", cpus_per_task, "s" if cpus_per_task > 1 else "", share, n)
        results = _gather(ray, refs)
    except BaseException:
        # the tasks still running end with this driver's job: a local Ray stops with it, a cluster
        # kills the job's workers when its driver disconnects
        ray.shutdown()
        raise
    if not where.is_cluster:
        ray.shutdown()  # the stage's own local Ray: its worker processes end with it
    log.info("%d %ss done on Ray in %.1fs", len(items), what, time.perf_counter() - started)
    return results


def _call(fn: Callable[[T], R], item: T, mode: str) -> R:
    numerics.ensure(mode)  # the worker computes on the stage's numerical paths, or says why not
    return fn(item)


def _gather(ray, refs: list) -> list:
    """Results in order; the first failure is re-raised as itself (a TrendfactoryError from a task
    stays a one-line error). The other tasks are not cancelled here: ``ray.cancel`` racing a task
    that is just finishing fails a check inside Ray 2.60's driver, which then kills this whole
    process with exit code 1 (seen in about 1 run in 4 with three tasks); ``run_tasks`` ends them
    by shutting Ray down instead."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        original = getattr(exc, "cause", None)
        raise (original if isinstance(original, BaseException) else exc.as_instanceof_cause()) from None


def _connect(where: Placement, mode: str):
    """``ray`` connected to the placement's cluster, or to a new local Ray of ``cpus`` CPUs, its
    workers started with the environment of numerics ``mode`` (set before they load numpy)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a research pipeline
    try:
        import ray
    except ImportError:  # a broken install: it is a declared dependency
        raise TrendfactoryError("parallel: Ray is not installed; run `pip install -e .` (it is in the project's dependencies)") from None
    if ray.is_initialized():
        return ray
    common = dict(include_dashboard=False, log_to_driver=True, configure_logging=False, runtime_env={"env_vars": numerics.child_env(mode)})
    if where.is_cluster:
        _check_reachable(where.address)
        try:
            ray.init(address=where.address, **common)
        except (ConnectionError, RuntimeError) as exc:
            raise TrendfactoryError(
                f"parallel.address / RAY_ADDRESS {where.address!r}: cannot connect to a Ray cluster there ({str(exc).splitlines()[0]}); start one (`ray start --head`) or set parallel.address: local"
            ) from None
        _check_shared_filesystem(ray)
    else:
        ray.init(address=LOCAL, num_cpus=where.cpus, num_gpus=where.gpus, **common)
    return ray


def _check_reachable(address: str) -> None:
    """A ``host:port`` with nothing listening fails in seconds (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # ray://..., auto: Ray's own lookup
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise TrendfactoryError(
            f"parallel.address / RAY_ADDRESS {address!r}: cannot connect to a Ray cluster there ({exc.strerror or exc}); start one (`ray start --head`) or set parallel.address: local"
        ) from None


def _sees(path: str) -> bool:
    return Path(path).is_dir()


def _check_shared_filesystem(ray) -> None:
    """Every alive node must see this working directory: the tasks read and write under it."""
    here = os.getcwd()
    probe = ray.remote(num_cpus=0)(_sees)
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        if not ray.get(probe.options(scheduling_strategy=strategy).remote(here)):
            raise TrendfactoryError(
                f"parallel: Ray node {node.get('NodeManagerAddress')} does not see {here}; every node of the cluster "
                "needs the repository at the same path (a shared filesystem) and trendfactory installed"
            )


def pin_threads(threads: int, torch_too: bool = False) -> None:
    """Run this process' native thread pools (BLAS, OpenMP; and torch's with ``torch_too``) on
    ``threads`` threads. A fit's arithmetic can depend on its thread count (a BLAS reduction
    split two ways rounds differently), and a Ray worker starts with ``OMP_NUM_THREADS`` at its
    task's CPUs while the stage's own process would use every core: pinning both to the fit's
    declared threads makes a fit give the same numbers wherever it runs."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if torch_too:
        import torch

        torch.set_num_threads(threads)
    numerics.ensure(numerics.state().mode)  # every library a fit loaded runs on the process' paths


def chdir_to(root: Path) -> None:
    """A task's first step: relative paths (data/windows, models/...) resolve under the
    repository, whatever directory the Ray worker started in."""
    if Path.cwd() != root:
        os.chdir(root)
