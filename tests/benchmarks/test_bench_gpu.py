"""benchmarks/bench_gpu.py runs: its prepared command is meant for a GPU machine lent for a few
minutes, so a broken script must show here first. Both ways of fitting (one after another with
the bare-loop ratio; two worker processes sharing the device) run on a tiny store, on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline_helpers import build_stores, tiny_params

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_stores(tmp_path_factory.mktemp("bench_gpu"), tiny_params())


@pytest.mark.parametrize("extra", [["--bare-steps", "3"], ["--bare-steps", "0", "--fits-per-gpu", "2"]], ids=["sequential", "two-at-once"])
def test_bench_gpu_runs_on_the_cpu(store, tmp_path, extra):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "benchmarks/bench_gpu.py",
        "--store",
        str(store),
        "--device",
        "cpu",
        "--models",
        "mlp,dual_tower",
        "--seeds",
        "1",
        "--max-epochs",
        "1",
        "--predict",
        "--json",
        str(out),
        *extra,
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert sorted(r["model"] for r in result["fits"]) == ["dual_tower", "mlp"]
    assert all(r["fit_s"] > 0 and r["predict_s"] > 0 and r["trainer_sps"] > 0 for r in result["fits"])
    assert result["fits_per_gpu"] == int(extra[-1]) if "--fits-per-gpu" in extra else result["fits_per_gpu"] == 1
    if "--fits-per-gpu" not in extra:
        assert all(r["ratio"] > 0 for r in result["fits"])
    assert "all 2 fits and their predictions in" in run.stdout
