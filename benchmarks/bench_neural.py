"""Training throughput of every neural model: through the shared trainer vs a bare PyTorch loop.

Targets (issue 4): the trainer's overhead <= 10% for each model at its default size; the LSTM
(seq_len 32, hidden 64, batch 512) >= 7,000 samples/s on the 2-core CPU.

A synthetic window store (56 features like the default pipeline, seq_len 32, horizon 5) is
written once. For each model, both sides train the same network from the same initial weights
on the same number of samples:

* trainer: ``Trainer.fit`` for one epoch -- batches gathered from the memory-mapped store with
  one ``index_select`` each, AdamW, warm-up/cosine schedule, gradient clipping, loss tracking,
  progress bar; its reported samples/s covers the training loop only (not validation);
* bare: ``for x, y in batches: loss = CE(net(x)); zero_grad; backward; step`` over the same
  batches, gathered beforehand (free for the bare loop) -- the pure compute cost.

Runs alternate bare / trainer in ABBA order; the overhead is the median over repeats of
bare/trainer - 1 of each adjacent pair (this machine's speed drifts by 10-20% between runs, so "best of" on each
side would compare different moments); samples/s are medians.

    .venv/bin/python benchmarks/bench_neural.py [--samples 40960] [--models lstm,gru]
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
from trendfactory.params import TrainConfig, load_params
from trendfactory.windows.store import build_split
from trendfactory.windows.torch_data import BatchGatherer

F, SEQ_LEN, H = 56, 32, 5


def synthetic_store(root: Path, n_symbols: int = 20, n_bars: int = 3000) -> Path:
    rng = np.random.default_rng(0)
    n = n_symbols * n_bars
    cols = {"symbol": np.repeat([f"S{i:02d}" for i in range(n_symbols)], n_bars), "datetime": np.tile(pd.date_range("2000-01-03", periods=n_bars, freq="B").to_numpy(), n_symbols)}
    for j in range(F):
        cols[f"stk_f{j}"] = rng.standard_normal(n).astype(np.float32)
    cols[f"label_h{H}"] = pd.array(rng.integers(-1, 2, n), dtype="Int8")
    cols[f"ret_h{H}"] = rng.normal(0, 0.02, n)
    cols[f"score_h{H}"] = np.tanh(cols[f"ret_h{H}"] * 20)
    write_parquet(pd.DataFrame(cols), root / "train.parquet")
    build_split(root / "train.parquet", root / "train", None, [H], SEQ_LEN)
    return root / "train"


def bare_loop(net: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], lr: float, epochs: int = 1) -> float:
    """samples/s of the plainest training loop over pre-gathered batches."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, fused=True)  # the trainer's optimizer
    net.train()
    n = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, y in batches:
            logits, _ = net(x)  # [B, 1, 3]: one head (horizon H)
            loss = torch.nn.functional.cross_entropy(logits[:, 0], y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += y.numel()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40960, help="training samples per measurement")
    ap.add_argument("--models", default=",".join(load_params().run.neural_models))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0, help="rough length of one measurement")
    args = ap.parse_args()
    torch.manual_seed(0)
    params = load_params()
    cfg = TrainConfig(**{**params.train.__dict__, "max_epochs": 1, "device": "cpu", "resume": False})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.samples:,} samples of [{SEQ_LEN}, {F}], batch {cfg.batch_size}; medians of {args.repeats} ABBA-paired runs")
    with tempfile.TemporaryDirectory() as tmp:
        split_dir = synthetic_store(Path(tmp))
        full = Samples.open(split_dir, H)
        train = full.subset(np.arange(args.samples))
        val = full.subset(np.arange(args.samples, args.samples + 2048))
        rows = []
        for name in args.models.split(","):
            model = create(name, model_config(params, name), horizon=H, seed=0, train=cfg)
            net0 = model.build(F, SEQ_LEN)
            model.horizons_ = [H]  # one head, as net0
            gather = BatchGatherer(train.split, [H], cfg.batch_size, shuffle=True, seed=0, ends=train.ends, lags=model.lags)
            batches = [(x.clone(), y) for x, y in gather]  # the bare loop gets its batches for free
            # fast models run several epochs, so that every measurement lasts a few seconds
            epochs = max(1, round(args.seconds * bare_loop(copy.deepcopy(net0), batches[:10], cfg.lr) / args.samples))
            run_cfg = TrainConfig(**{**cfg.__dict__, "max_epochs": epochs, "patience": epochs + 1})
            trainer_sps, bare_sps = [], []

            def run_trainer() -> float:
                t = Trainer(run_cfg, seed=0, device=torch.device("cpu"), progress=False, name=name)
                cpu = torch.device("cpu")
                res = t.fit(copy.deepcopy(net0), model._batches(train, train.ends, True, cpu), model._batches(val, val.ends, False, cpu))
                return res.samples_per_second

            for i in range(args.repeats):
                # ABBA order: whichever runs second in a pair is not always the same side
                if i % 2 == 0:
                    bare_sps.append(bare_loop(copy.deepcopy(net0), batches, cfg.lr, epochs))
                    trainer_sps.append(run_trainer())
                else:
                    trainer_sps.append(run_trainer())
                    bare_sps.append(bare_loop(copy.deepcopy(net0), batches, cfg.lr, epochs))
            # the machine's speed drifts between runs: compare each trainer run with the bare run
            # just before it and take the median of those paired ratios
            ratios = sorted(b / t - 1 for b, t in zip(bare_sps, trainer_sps))
            tr, bare = float(np.median(trainer_sps)), float(np.median(bare_sps))
            rows.append((name, sum(p.numel() for p in net0.parameters()), tr, bare, ratios[len(ratios) // 2]))
            print(f"  {name}: trainer {tr:,.0f}/s, bare {bare:,.0f}/s", flush=True)
    print(f"\n{'model':12s} {'params':>9s} {'trainer/s':>10s} {'bare/s':>9s} {'overhead':>9s}  (median of {args.repeats}; target <= 10%)")
    for name, n_params, tr, bare, o in rows:
        print(f"{name:12s} {n_params:9,d} {tr:10,.0f} {bare:9,.0f} {o:+9.1%}  {'PASS' if o <= 0.10 else 'FAIL'}")
    lstm = [r for r in rows if r[0] == "lstm"]
    if lstm:
        print(f"LSTM through the trainer: {lstm[0][2]:,.0f} samples/s (target >= 7,000)")


if __name__ == "__main__":
    main()
