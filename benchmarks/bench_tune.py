"""Tuning at the default data size: ``tune.trials`` (50) LightGBM trials at one horizon for each
of the embedded data's walk-forward folds after the first (fold k's objective: the pooled
validation Rank IC of folds 0..k-1; median pruning; fold 0 keeps params.yaml's configuration),
through the tune stage as `dvc repro tune@lightgbm-5` runs it -- wall time, trials
complete/pruned per study, the best and the default configuration's objective.

Target (issue 13): a 50-trial LightGBM tuning in <= 15 minutes on the 2-core machine. Needs the
default window store (`dvc repro window` or `dvc pull`). Runs in a scratch directory that links
the store (a fresh study: its journal is the scratch directory's).

    .venv/bin/python benchmarks/bench_tune.py --model lightgbm --horizon 5 --trials 50
    .venv/bin/python benchmarks/bench_tune.py --n-jobs 1     # two one-thread trial workers on local Ray
"""

from __future__ import annotations

import argparse
import time

import yaml
from scratch import ROOT, linked_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lightgbm")
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--n-jobs", type=int, default=None, help="threads per trial (default: params.yaml's n_jobs)")
    args = ap.parse_args()

    from trendfactory.params import parse_params
    from trendfactory.runtime import configure_logging
    from trendfactory.stages.tune import main_body

    configure_logging("bench")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["run"]["tune"] = [args.model]
    raw["tune"]["trials"] = args.trials
    if args.n_jobs is not None:
        raw["models"][args.model]["n_jobs"] = args.n_jobs
    raw["parallel"] = {"address": "local", "cpus": None}
    params = parse_params(raw)
    with linked_store("bench_tune_") as scratch:
        t0 = time.perf_counter()
        main_body(params, argparse.Namespace(model=args.model, horizon=args.horizon))
        wall = time.perf_counter() - t0
        record = yaml.safe_load((scratch / f"tuned/{args.model}-h{args.horizon}.yaml").read_text())
    folds = [f for f in record["folds"] if f["study"] is not None]  # fold 0 has no study
    total = {k: sum(f["trials"][k] for f in folds) for k in ("complete", "pruned", "fail")}
    print(
        f"{args.model} h={args.horizon}: {len(folds)} studies of {args.trials} trials ({total['complete']} complete, {total['pruned']} pruned, "
        f"{total['fail']} failed) in {wall / 60:.1f} min (target <= 15 min)"
    )
    for f in folds:
        t = f["trials"]
        print(
            f"  fold {f['fold']}: pooled validation Rank IC of folds 0..{f['fold'] - 1}: best {f['value']:+.4f} (trial {f['best_trial']}), "
            f"params.yaml's configuration {f['default_value']:+.4f}; {t['complete']} complete, {t['pruned']} pruned; best params {f['params']}"
        )


if __name__ == "__main__":
    main()
