"""Fan-out of a train stage's fits on a local Ray: the folds x seeds of one single-threaded
model (``n_jobs: 1``) fitted one after another in the stage's process, then as Ray tasks on a
local Ray with every core -- wall times, their ratio, that the predictions are identical, and
Ray's overhead (start-up, and per task, measured on empty tasks).

Target (issue 13): on the 2-core machine, fanned out <= 0.6x the sequential time. Needs the
default window store (`dvc repro window` or `dvc pull`). Runs in a scratch directory that links
the store, so the project's models/ and predictions are not touched.

    .venv/bin/python benchmarks/bench_fanout.py --model xgboost --horizon 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import yaml
from scratch import ROOT, linked_store


def _noop(x: int) -> int:
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="xgboost", help="a tabular model with n_jobs (xgboost, lightgbm, catboost, random_forest)")
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--empty-tasks", type=int, default=40, help="empty tasks for the per-task overhead")
    args = ap.parse_args()

    import pandas as pd

    from trendfactory.parallel import Placement, run_tasks
    from trendfactory.params import parse_params
    from trendfactory.runtime import configure_logging
    from trendfactory.stages.train import main_body

    configure_logging("bench")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["models"][args.model]["n_jobs"] = 1
    cpus = os.cpu_count() or 1
    with linked_store("bench_fanout_") as scratch:
        times, preds = {}, {}
        for label, n in (("sequential", 1), ("local Ray", cpus)):
            raw["parallel"] = {"address": "local", "cpus": n}
            params = parse_params(raw)
            t0 = time.perf_counter()
            main_body(params, argparse.Namespace(model=args.model, horizon=args.horizon))
            times[label] = time.perf_counter() - t0
            preds[label] = pd.read_parquet(scratch / f"data/predictions/{args.model}-h{args.horizon}/test_h{args.horizon}.parquet")
            n_fits = len(preds[label].groupby(["fold", "seed"]))
            shutil.rmtree(scratch / "models")
        pd.testing.assert_frame_equal(preds["sequential"], preds["local Ray"])

        t0 = time.perf_counter()
        run_tasks(_noop, [0, 1], Placement(None, cpus))  # start-up + 2 tasks + shut-down
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_tasks(_noop, list(range(args.empty_tasks)), Placement(None, cpus))
        per_task = (time.perf_counter() - t0 - startup) / (args.empty_tasks - 2)

    ratio = times["local Ray"] / times["sequential"]
    print(f"{args.model} h={args.horizon}, n_jobs 1: {n_fits} fits (folds x seeds), {cpus} CPUs")
    print(f"  sequential (the stage's process): {times['sequential']:.1f} s")
    print(f"  local Ray ({cpus} CPUs):              {times['local Ray']:.1f} s  = {ratio:.2f}x sequential (target <= 0.6x)")
    print(f"  predictions identical: yes; Ray start-up + shut-down {startup:.1f} s, overhead per task {per_task * 1000:.0f} ms")


if __name__ == "__main__":
    main()
