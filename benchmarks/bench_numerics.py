"""What portable numerics cost: the same workloads in a fresh process per mode, `portable`
(x86-64-v3 code paths, the default) vs `native` (each library's fastest path for this CPU).

Workloads, each the kind of work a stage does:
- numpy: log, exp and power over 20 M floats (ingest and featurize's transcendental functions,
  where numpy's AVX-512/SVML loops are switched off in portable mode);
- matmul: float32 GEMMs through torch's BLAS (MKL pinned to its AVX2 branch);
- gru: training steps of a 2-layer GRU on [256, 60, 40] batches (a network fit's inner loop;
  torch's own kernels and oneDNN pinned to AVX2);
- sort: numpy argsort of 20 M floats (AVX-512 sorts switched off);
- torch sqrt/log: ``trendfactory.portable_math``'s sqrt, log and log1p over a [2000, 5000]
  float64 tensor (featurize's rolling volatilities and log prices): numpy's IEEE root and logs
  in portable mode, torch's MKL VML functions in native mode.

Each workload runs ``--repeats`` times in one process per mode (after a warm-up); the figure is
the median. Threads are the same in both modes (2), so the ratio is the vector width's alone.

    .venv/bin/python benchmarks/bench_numerics.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, statistics, sys, time
import trendfactory  # applies the mode before numpy / torch load
from trendfactory import numerics
from trendfactory import portable_math as pmath
import numpy as np, torch

torch.set_num_threads(2)
repeats = int(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.random(20_000_000) + 0.5
a = torch.randn(2048, 2048)
torch.manual_seed(0)
gru = torch.nn.GRU(40, 64, num_layers=2, batch_first=True)
opt = torch.optim.AdamW(gru.parameters(), lr=1e-3)
batch = torch.randn(256, 60, 40)
panel = torch.rand(2000, 5000, dtype=torch.float64) + 0.5

def numpy_math():
    np.log(x).sum(); np.exp(-x).sum(); np.power(x, 1.7).sum()

def matmul():
    for _ in range(10):
        a @ a

def gru_steps():
    for _ in range(10):
        opt.zero_grad()
        out, _ = gru(batch)
        out[:, -1].pow(2).mean().backward()
        opt.step()

def sort():
    np.argsort(x, kind="stable")

def torch_sqrt_log():
    pmath.sqrt(panel); pmath.log(panel); pmath.log1p(panel)

out = {"paths": numerics.active_paths()}
WORKLOADS = (
    ("numpy log/exp/pow, 20 M", numpy_math),
    ("matmul 2048^2 x10", matmul),
    ("GRU 10 train steps", gru_steps),
    ("argsort 20 M", sort),
    ("torch sqrt/log/log1p [2000, 5000] f64", torch_sqrt_log),
)
for name, fn in WORKLOADS:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    out[name] = statistics.median(times)
print(json.dumps(out))
"""


def run(mode: str, repeats: int) -> dict:
    env = {**os.environ, "TRENDFACTORY_NUMERICS": mode}
    for key in ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "ARROW_USER_SIMD_LEVEL"):
        env.pop(key, None)  # each mode sets its own
    env.update({"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"})
    proc = subprocess.run([sys.executable, "-c", WORKER, str(repeats)], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {mode: run(mode, args.repeats) for mode in ("native", "portable")}
    print(f"code paths: native {results['native']['paths']}; portable {results['portable']['paths']}\n")
    print("| workload | native s | portable s | portable / native |")
    print("|---|---|---|---|")
    for name in results["native"]:
        if name == "paths":
            continue
        n, p = results["native"][name], results["portable"][name]
        print(f"| {name} | {n:.3f} | {p:.3f} | {p / n:.2f} |")


if __name__ == "__main__":
    main()
