"""Why do the networks stop after one epoch? Learning curves of a few networks on the last
walk-forward fold, with early stopping off, for a few learning rates.

Each run trains ``--epochs`` epochs through the project's own trainer on the default pipeline's
window store (run `dvc repro window` first) and records, per epoch, the train loss, the
validation log loss and the validation daily Rank IC (the comparison's metric). Writes
``docs/learning_curves.png`` and ``docs/results/learning_curves.json``, from which
``trendfactory results`` renders the table and sentences in docs/models.md (with how many of
the default run's network fits kept their first epoch, from metrics/train/), and prints a table.

    .venv/bin/python benchmarks/learning_curves.py                       # mlp and lstm, 3 learning rates
    .venv/bin/python benchmarks/learning_curves.py --models mlp --lrs 1e-3 1e-4 --epochs 4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def curves(model: str, lr: float, epochs: int, fold: int, horizon: int) -> dict[str, list[float]]:
    """Per-epoch history of one fit (no early stopping: patience = epochs)."""
    from trendfactory.models import Samples, create, model_config
    from trendfactory.params import load_params

    params = load_params(ROOT / "params.yaml")
    train_cfg = dataclasses.replace(params.train, lr=lr, max_epochs=epochs, patience=epochs, resume=False)
    store = ROOT / "data" / "windows"
    train, val = (Samples.open(store, horizon, fold, role) for role in ("train", "val"))
    history: dict[str, list[float]] = {}

    def record(metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            history.setdefault(k, []).append(float(v))

    from trendfactory.models.base import FitContext

    m = create(model, model_config(params, model), horizon=horizon, seed=params.seed, train=train_cfg)
    m.fit(train, val, FitContext(on_epoch=record))
    return history


def fold_span(fold: int, horizon: int) -> dict[str, list[str]]:
    """The first and last sample date of the fold's train and validation blocks."""
    from trendfactory.models import Samples

    spans = {}
    for role in ("train", "val"):
        dates = Samples.open(ROOT / "data" / "windows", horizon, fold, role).keys()["datetime"]
        spans[role] = [str(dates.min().date()), str(dates.max().date())]
    return spans


def default_run_stops() -> dict:
    """How many of the default run's network fits kept their first epoch (metrics/train/<model>/metrics.json)."""
    from trendfactory.params import load_params

    params = load_params(ROOT / "params.yaml")
    models = [*params.run.neural_models, *params.run.joint_models]
    fits = [f for m in models for f in json.loads((ROOT / "metrics" / "train" / m / "metrics.json").read_text())["folds"]]
    return {"patience": params.train.patience, "models": models, "fits": len(fits), "first": sum(f["best_iteration"] == 0 for f in fits)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp", "lstm"])
    ap.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-4, 1e-4])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--fold", type=int, default=-1, help="walk-forward fold (default: the last)")
    ap.add_argument("--horizon", type=int, default=5, help="the head whose curves are drawn is every head's mean; horizon picks the samples")
    ap.add_argument("--out", default=str(ROOT / "docs" / "learning_curves.png"))
    args = ap.parse_args()

    from trendfactory.windows.reader import WindowSplit

    fold = args.fold if args.fold >= 0 else WindowSplit.open(ROOT / "data" / "windows").n_folds - 1
    results = {}
    for model in args.models:
        for lr in args.lrs:
            t0 = time.perf_counter()
            h = curves(model, lr, args.epochs, fold, args.horizon)
            results[(model, lr)] = h
            best_loss = int(np.argmin(h["val/loss"])) + 1
            best_ric = int(np.nanargmax(h["val/rank_ic"])) + 1
            print(
                f"{model:6s} lr {lr:.0e}: best val loss at epoch {best_loss}, best val Rank IC at epoch {best_ric}; "
                f"val loss {' '.join(f'{v:.4f}' for v in h['val/loss'])}; val Rank IC {' '.join(f'{v:+.4f}' for v in h['val/rank_ic'])}; "
                f"train loss {' '.join(f'{v:.4f}' for v in h['train/loss'])} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    from trendfactory.evaluation.experiment_results import RESULTS_DIR, save_snapshot
    from trendfactory.params import load_params

    default_lr = load_params(ROOT / "params.yaml").train.lr
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    runs = [{"model": m, "lr": lr, "default": lr == default_lr, "train_loss": h["train/loss"], "val_loss": h["val/loss"], "val_rank_ic": h["val/rank_ic"]} for (m, lr), h in results.items()]
    snap = {"view": "curves", "commit": commit, "fold": fold, **fold_span(fold, args.horizon), "runs": runs, "stopped": default_run_stops()}
    save_snapshot(ROOT / RESULTS_DIR / "learning_curves.json", snap)
    print(f"wrote {RESULTS_DIR / 'learning_curves.json'}; `trendfactory results` renders it into docs/models.md")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(args.models), 3, figsize=(15, 3.8 * len(args.models)), squeeze=False)
    for i, model in enumerate(args.models):
        for lr in args.lrs:
            h = results[(model, lr)]
            x = np.arange(1, len(h["val/loss"]) + 1)
            for j, (key, title) in enumerate((("train/loss", "train loss"), ("val/loss", "validation log loss"), ("val/rank_ic", "validation daily Rank IC"))):
                axes[i, j].plot(x, h[key], marker="o", label=f"lr {lr:.0e}")
                axes[i, j].set_title(f"{model}: {title}")
                axes[i, j].set_xlabel("epoch")
                axes[i, j].grid(alpha=0.3)
        axes[i, 0].legend()
    fig.suptitle(f"Learning curves, walk-forward fold {fold} (train to its validation block), both horizon heads", fontsize=11)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
