"""trendfactory.parallel: fits fanned out as Ray tasks give what the sequential path gives, on a
local Ray and on a real two-node Ray cluster started on localhost by the test."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline_helpers import build_stores, tiny_params
from trendfactory.errors import TrendfactoryError
from trendfactory.parallel import Placement, pin_threads, placement, run_tasks, slots

REPO = Path(__file__).resolve().parents[1]


def square_and_where(x: int) -> tuple[int, int, str]:
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "driver"
    time.sleep(0.5)  # long enough that one node cannot take every task
    return x * x, os.getpid(), node


def pinned_blas_threads(n: int) -> list[int]:
    from threadpoolctl import threadpool_info

    pin_threads(n)
    return sorted({pool["num_threads"] for pool in threadpool_info()})


def refuse(x: int) -> int:
    if x == 2:
        raise TrendfactoryError("item 2: refused")
    return x


def test_placement_follows_params_then_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert placement(None, 3) == Placement(None, 3)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert placement(None, None).address == "10.0.0.1:6379"
    assert placement("local", 2) == Placement(None, 2)  # `local` ignores RAY_ADDRESS
    assert placement("head:6379", None).address == "head:6379"


def test_one_slot_runs_in_this_process_without_ray():
    """cpus 2 and 2-thread tasks: only one fits at a time, so no Ray is started at all."""
    out = run_tasks(square_and_where, [1, 2, 3], Placement(None, 2), cpus_per_task=2)
    assert [o[0] for o in out] == [1, 4, 9]
    assert {o[1] for o in out} == {os.getpid()} and {o[2] for o in out} == {"driver"}
    assert slots(Placement(None, 2), 2) == 1 and slots(Placement(None, 4), 1) == 4


def test_a_local_ray_runs_tasks_in_other_processes_in_order():
    out = run_tasks(square_and_where, list(range(5)), Placement(None, 2), cpus_per_task=1)
    assert [o[0] for o in out] == [0, 1, 4, 9, 16]  # the inputs' order, whatever finished first
    assert os.getpid() not in {o[1] for o in out}


def test_a_fit_runs_on_its_declared_threads_wherever_it_runs():
    """Ray starts a 1-CPU task with OMP_NUM_THREADS=1 and the stage's own process would use every
    core: pin_threads sets the BLAS/OpenMP pools to the fit's own count in both (a BLAS-bound
    solver such as logistic regression rounds differently on 1 and 2 threads)."""
    assert run_tasks(pinned_blas_threads, [2, 2], Placement(None, 2), cpus_per_task=1) == [[2], [2]]
    assert pinned_blas_threads(1) == [1]
    assert run_tasks(pinned_blas_threads, [1, 1], Placement(None, 2), cpus_per_task=1) == [[1], [1]]


def gpu_and_time(seconds: float) -> tuple[list, str, float, float]:
    import ray

    start = time.time()
    time.sleep(seconds)
    return [str(g) for g in ray.get_gpu_ids()], os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), start, time.time()


def test_fits_share_a_gpu_as_ray_tasks_of_a_fraction_of_it():
    """parallel.fits_per_gpu: 2 -> tasks of half a GPU, two at once on one GPU, each told which
    GPU is its own (CUDA_VISIBLE_DEVICES). The local Ray is given one logical GPU: Ray schedules
    by declared resources, so this runs on a machine without one. Each sleeps 3 s: two worker
    processes starting on a busy 2-core machine can be a second or more apart."""
    where = Placement(None, 2, gpus=1)
    assert slots(where, 1, 0.5) == 2 and slots(where, 1, 1.0) == 1 and slots(Placement(None, 8, gpus=2), 2, 0.5) == 4
    out = run_tasks(gpu_and_time, [3.0, 3.0], where, cpus_per_task=1, gpus_per_task=0.5)
    assert [o[:2] for o in out] == [(["0"], "0"), (["0"], "0")]
    (_, _, s0, e0), (_, _, s1, e1) = out
    assert s1 < e0 and s0 < e1, "the two half-GPU tasks did not run at the same time"


def test_task_resources_give_gpu_tasks_a_share(monkeypatch):
    """A task that trains on a GPU must ask Ray for a share (Ray hides the GPUs from a task that
    asks for none); CPUs are split between the fits sharing the GPUs; on the CPU nothing changes."""
    import torch

    from trendfactory.parallel import task_resources

    local = Placement(None, 16)
    assert task_resources(local, 1, None, 4) == (local, 1, 0.0)  # not a torch task
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert task_resources(local, 1, "auto", 4) == (local, 1, 0.0)  # no GPU seen
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert task_resources(local, 1, "cpu", 4) == (local, 1, 0.0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert task_resources(local, 1, "auto", 1) == (Placement(None, 16, gpus=1), 16, 1.0)  # one slot: in this process
    assert task_resources(local, 1, "cuda", 4) == (Placement(None, 16, gpus=1), 4, 0.25)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    where, cpus, share = task_resources(local, 1, "auto", 1)
    assert (where.gpus, cpus, share) == (2, 8, 1.0) and slots(where, cpus, share) == 2  # one fit per GPU, on Ray
    cluster = Placement("head:6379", 16)
    assert task_resources(cluster, 1, "cuda", 2)[1:] == (1, 0.5)


def test_a_failing_task_raises_its_own_error(monkeypatch):
    """The error comes back as itself and the other tasks end with the local Ray, never through
    ``ray.cancel``: a cancel racing a finishing task aborted the whole test process (exit code 1,
    no output) in about 1 run in 4 on Ray 2.60."""
    import ray

    def cancel(*args, **kwargs):
        raise AssertionError("run_tasks called ray.cancel")

    monkeypatch.setattr(ray, "cancel", cancel)
    with pytest.raises(TrendfactoryError, match=r"^item 2: refused$"):
        run_tasks(refuse, [1, 2, 3], Placement(None, 2))
    assert not ray.is_initialized()


# ---- a real two-node cluster on localhost ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    """`ray start --head` and a second `ray start --address=...` node, one CPU each, as process
    groups of their own (stopped by the fixture alone: `ray stop` would stop every Ray here)."""
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=100000000", "--block", "--disable-usage-stats"]
    logs = tmp_path_factory.mktemp("ray_logs")
    nodes = []
    try:
        nodes.append(
            subprocess.Popen(
                [str(ray_bin), "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                env=env,
                cwd=REPO,
                start_new_session=True,
                stdout=open(logs / "head.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
        address = f"127.0.0.1:{port}"
        _wait_for(lambda: _can_connect(port), 60, "the head node")
        nodes.append(
            subprocess.Popen([str(ray_bin), "start", f"--address={address}", *common], env=env, cwd=REPO, start_new_session=True, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT)
        )
        _wait_for(lambda: _alive_nodes(address, env) == 2, 90, "the second node")
        yield address
    finally:
        for proc in reversed(nodes):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def _can_connect(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive_nodes(address: str, env: dict) -> int:
    code = f"import ray; ray.init(address={address!r}, configure_logging=False); print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def _wait_for(ready, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if ready():
            return
        time.sleep(1)
    raise RuntimeError(f"Ray cluster: {what} did not come up in {seconds:.0f}s")


@pytest.fixture
def cluster_env(two_node_cluster, monkeypatch):
    import ray

    monkeypatch.setenv("RAY_ADDRESS", two_node_cluster)  # what a user sets; params leave address null
    yield two_node_cluster
    ray.shutdown()  # the driver disconnects; the cluster stays up for the next test


def test_tasks_spread_over_both_nodes_of_a_cluster(cluster_env):
    where = placement(None, None)
    assert where.address == cluster_env
    out = run_tasks(square_and_where, list(range(6)), where, cpus_per_task=1)
    assert [o[0] for o in out] == [x * x for x in range(6)]
    assert len({o[2] for o in out}) == 2  # both nodes ran tasks


def test_train_stage_on_the_cluster_equals_the_sequential_run(cluster_env, tmp_path, monkeypatch):
    """The folds x seeds of XGBoost (n_jobs 1) fitted on the two-node cluster: the same
    predictions and saved models as one after another in this process."""
    from trendfactory.stages.train import main_body

    params = tiny_params(n_symbols=4, n_bars=360, horizons=(5,), models={"xgboost": {"n_estimators": 15, "n_jobs": 1}}, evaluate={"seeds": 2})
    build_stores(tmp_path, params)
    monkeypatch.chdir(tmp_path)

    def train(address: str | None) -> dict[str, pd.DataFrame]:
        run_params = dataclasses.replace(params, parallel=dataclasses.replace(params.parallel, address=address, cpus=1))
        main_body(run_params, argparse.Namespace(model="xgboost", horizon=5))
        out = {r: pd.read_parquet(tmp_path / f"data/predictions/xgboost-h5/{r}_h5.parquet") for r in ("val", "test")}
        out["models"] = sorted(str(p.relative_to(tmp_path / "models")) for p in (tmp_path / "models/xgboost-h5").rglob("*") if p.is_file())
        return out

    on_cluster = train(None)  # RAY_ADDRESS
    shutil.rmtree(tmp_path / "models/xgboost-h5")
    sequential = train("local")  # cpus 1: in this process
    for role in ("val", "test"):
        assert set(on_cluster[role]["seed"]) == {0, 1} and set(on_cluster[role]["fold"]) == set(sequential[role]["fold"])
        pd.testing.assert_frame_equal(on_cluster[role], sequential[role])
    assert on_cluster["models"] == sequential["models"]


def test_a_cluster_address_with_nothing_there_is_one_line(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    where = placement(f"127.0.0.1:{_free_port()}", None)
    with pytest.raises(TrendfactoryError, match=r"^parallel.address / RAY_ADDRESS .*cannot connect to a Ray cluster there"):
        run_tasks(square_and_where, [1, 2], where)
