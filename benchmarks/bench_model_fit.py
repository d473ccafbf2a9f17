"""One model's fit at the default data size: the last walk-forward fold (the largest train
split), its default params, one seed -- wall time, scoring throughput, and the validation Rank IC
(never test: this is for sizing a model, not for choosing one).

Targets (issue 11): each new network's default size fitted in <= 2 minutes per horizon on the
2-core machine; the SVM in <= 3 minutes. Needs the default window store (`dvc repro window`
or `dvc pull`).

    .venv/bin/python benchmarks/bench_model_fit.py --model svm
    .venv/bin/python benchmarks/bench_model_fit.py --model wavenet --horizon 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for networks (the train stage runs 1 per worker)")
    args = ap.parse_args()

    import torch

    from trendfactory.evaluation.metrics import ic_metrics
    from trendfactory.models import Samples, create, get_model_class, model_config
    from trendfactory.params import load_params
    from trendfactory.stages.train import prediction_frame
    from trendfactory.windows.reader import WindowSplit

    torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml")
    store = ROOT / "data" / "windows"
    fold = WindowSplit.open(store).n_folds - 1
    train, val = (Samples.open(store, args.horizon, fold, role) for role in ("train", "val"))
    cls = get_model_class(args.model)
    model = create(args.model, model_config(params, cls.name), horizon=args.horizon, seed=params.seed, train=params.train)
    n_params = None
    if cls.kind == "network":  # the default-size network, built the way the trainer builds it
        model.shape_ = (train.n_features, train.seq_len)
        n_params = sum(p.numel() for p in model.network(1).parameters())
    t0 = time.perf_counter()
    model.fit(train, val)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = prediction_frame(model, val, fold)  # the predictions contract + label, ret (as the train stage writes)
    predict_s = time.perf_counter() - t0
    rank_ic = ic_metrics(frame, args.horizon)["rank_ic"]
    what = "both horizons' heads" if cls.joint else f"horizon {args.horizon}"
    print(
        f"{cls.family}:{cls.name} on fold {fold} ({len(train):,} train / {len(val):,} val windows, {train.n_features} features, "
        f"seq_len {train.seq_len}){'' if n_params is None else f', {n_params:,} parameters'}"
    )
    print(f"  fit ({what}, one seed, {args.threads} threads): {fit_s:.1f} s; predict {len(val) / predict_s:,.0f} windows/s")
    print(f"  validation Rank IC (h={args.horizon}): {rank_ic:+.4f}")


if __name__ == "__main__":
    main()
