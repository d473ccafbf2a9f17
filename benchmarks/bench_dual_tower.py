"""Dual tower throughput: training through the shared trainer and inference through predict,
each next to a bare PyTorch loop over the same network.

Targets (issue 5), batch 1,024, default sizes, on the 2-core CPU: training >= 100,000
samples/s through the shared trainer (a bare loop reaches ~145,000 here); inference >= 400,000
samples/s (a bare forward pass reaches ~480,000 here).

A synthetic window store with the default pipeline's feature split (22 stk_* + 34 ctx_*) and
two horizons (5, 20) is written once. Training: the trainer (batches gathered from the memmap
with one index_select each, the multi-task loss of both heads plus the regulariser, three
learning-rate groups, warm-up/cosine, clipping, bookkeeping) vs a bare loop (forward, the same
multi-task loss, backward, the same fused AdamW step) over the same batches gathered beforehand. Inference:
``model.predict`` (rows read from the store, softmax, the Predictions contract) vs a bare
``net(x)`` over a tensor already in memory. Runs alternate; paired ratios' median is the
overhead.

    .venv/bin/python benchmarks/bench_dual_tower.py [--samples 200000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from trendfactory.io import write_parquet
from trendfactory.models import Samples, create, model_config
from trendfactory.models.common.trainer import Trainer
from trendfactory.models.zoo.dual_tower import MultiHorizon
from trendfactory.params import TrainConfig, load_params
from trendfactory.windows.store import build_split
from trendfactory.windows.torch_data import BatchGatherer

N_STK, N_CTX, HORIZONS, BATCH = 22, 34, (5, 20), 1024


def synthetic_store(root: Path, n_rows: int) -> Path:
    rng = np.random.default_rng(0)
    n_symbols = 50
    per = -(-n_rows // n_symbols)
    n = per * n_symbols
    cols = {"symbol": np.repeat([f"S{i:02d}" for i in range(n_symbols)], per), "datetime": np.tile(pd.date_range("1990-01-02", periods=per, freq="B").to_numpy(), n_symbols)}
    for j in range(N_STK):
        cols[f"stk_f{j}"] = rng.standard_normal(n).astype(np.float32)
    for j in range(N_CTX):
        cols[f"ctx_f{j}"] = rng.standard_normal(n).astype(np.float32)
    for h in HORIZONS:
        cols[f"label_h{h}"] = pd.array(rng.integers(-1, 2, n), dtype="Int8")
        cols[f"ret_h{h}"] = rng.normal(0, 0.02, n)
        cols[f"score_h{h}"] = np.tanh(cols[f"ret_h{h}"] * 20)
    write_parquet(pd.DataFrame(cols), root / "train.parquet")
    build_split(root / "train.parquet", root / "train", None, list(HORIZONS), 1)
    return root / "train"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    params = load_params()
    cfg = TrainConfig(**{**params.train.__dict__, "batch_size": BATCH, "max_epochs": 1, "patience": 2, "device": "cpu", "resume": False})
    dt = model_config(params, "dual_tower")
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        full = Samples.open(synthetic_store(Path(tmp), args.samples + 20_000), HORIZONS[0])
        train, val = full.subset(np.arange(args.samples)), full.subset(np.arange(args.samples, args.samples + 20_000))
        model = create("dual_tower", dt, horizon=HORIZONS[0], seed=0, train=cfg)
        model.columns_ = list(full.feature_names)
        net0 = model._net(len(HORIZONS))
        task = MultiHorizon(dt.alpha, dt.beta, dt.gamma)
        gather = lambda s, shuffle: BatchGatherer(s.split, list(HORIZONS), BATCH, shuffle=shuffle, seed=0, ends=s.ends, lags=(), with_scores=True)  # noqa: E731
        batches = [tuple(t.clone() for t in b) for b in gather(train, True)]
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; dual tower {sum(p.numel() for p in net0.parameters()):,} parameters, "
            f"{N_STK} stk + {N_CTX} ctx features, heads {HORIZONS}, batch {BATCH}, {args.samples:,} samples"
        )

        def bare_train() -> float:
            net = copy.deepcopy(net0).train()
            groups = model.param_groups(net)
            opt = torch.optim.AdamW([{"params": g["params"], "lr": cfg.lr * g["lr_mult"]} for g in groups], weight_decay=cfg.weight_decay, fused=True)
            t = Trainer(cfg, seed=0, device=cpu, progress=False)  # only for its forward()
            t0 = time.perf_counter()
            for b in batches:
                loss = task.loss(t, net, b)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return len(batches) * BATCH / (time.perf_counter() - t0)

        def trainer_train() -> float:
            net = copy.deepcopy(net0)
            t = Trainer(cfg, seed=0, device=cpu, progress=False, name="dual_tower")
            return t.fit(net, gather(train, True), gather(val, False), model.param_groups(net), task).samples_per_second

        fitted = copy.deepcopy(net0).eval()
        model.nets_, model.groups_, model.horizons_ = [fitted], [list(HORIZONS)], list(HORIZONS)
        model.feature_names_ = list(full.feature_names)
        X = torch.from_numpy(train.tabular(()))

        @torch.no_grad()
        def bare_forward() -> float:
            t0 = time.perf_counter()
            for lo in range(0, len(X), BATCH):
                fitted(X[lo : lo + BATCH])
            return len(X) / (time.perf_counter() - t0)

        def predict() -> float:
            t0 = time.perf_counter()
            model.predict(train)
            return len(train) / (time.perf_counter() - t0)

        for what, fast, bare, target in (("training", trainer_train, bare_train, 100_000), ("inference", predict, bare_forward, 400_000)):
            if what == "inference":
                cfg_eval = model.train_config
                model.train_config = TrainConfig(**{**cfg_eval.__dict__, "eval_batch_size": BATCH})
            ours, theirs = [], []
            for i in range(args.repeats):  # ABBA order: neither side always runs second
                if i % 2 == 0:
                    theirs.append(bare())
                    ours.append(fast())
                else:
                    ours.append(fast())
                    theirs.append(bare())
            ratio = sorted(b / o - 1 for b, o in zip(theirs, ours))[len(ours) // 2]
            o, b = float(np.median(ours)), float(np.median(theirs))
            print(f"{what:9s}: ours {o:10,.0f} samples/s, bare {b:10,.0f} samples/s, overhead {ratio:+.1%}  (target >= {target:,}: {'PASS' if o >= target else 'FAIL'})")


if __name__ == "__main__":
    main()
