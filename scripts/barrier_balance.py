"""Which ``label.barrier_k`` balances the triple-barrier classes -- judged on the first fold's
train block only, so the labelling choice uses no validation or test date.

    python scripts/barrier_balance.py                     # params.yaml, ingest's bars
    python scripts/barrier_balance.py --k 0.6 0.7 0.8     # other candidates

For each candidate k it prints the down/flat/up shares of every horizon's labels on fold 0's
train rows (purged as featurize purges them) and picks the k whose largest distance of a share
from 1/3, over all horizons, is smallest. It reads ``data/raw/bars.parquet`` (run
``dvc repro ingest`` first) and the params file's ``label`` and ``split`` sections.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from trendfactory.errors import TrendfactoryError
from trendfactory.features.labels import make_labels, symbol_ids
from trendfactory.features.splits import assign_roles, plan_folds
from trendfactory.params import Params, load_params

BARS = Path("data/raw/bars.parquet")
DEFAULT_KS = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0)
CLASSES = (-1, 0, 1)


def first_train_rows(bars: pd.DataFrame, params: Params) -> np.ndarray:
    """[N] bool: the rows fold 0 trains on (after purge), for bars sorted by symbol, time."""
    stamps = pd.to_datetime(bars["datetime"])
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_localize(None)
    fold = plan_folds(params.split, stamps.min(), stamps.max())[0]
    lcfg = params.label
    split = assign_roles(bars, symbol_ids(bars), fold, tuple(lcfg.horizons), lcfg.entry_lag, params.split.embargo)
    return split.assignment == "train"


def class_shares(bars: pd.DataFrame, rows: np.ndarray, params: Params, k: float) -> dict[int, np.ndarray]:
    """Per horizon, the [3] shares of labels -1, 0, +1 among ``rows`` at barrier ``k``."""
    lcfg = params.label
    labels = make_labels(bars, tuple(lcfg.horizons), lcfg.entry_lag, k, lcfg.vol_span)
    out = {}
    for h in lcfg.horizons:
        values = labels.loc[rows, f"label_h{h}"].dropna().astype(int)
        out[h] = values.value_counts(normalize=True).reindex(CLASSES, fill_value=0.0).to_numpy()
    return out


def imbalance(shares: dict[int, np.ndarray]) -> float:
    """The largest distance of any class share from 1/3, over every horizon."""
    return float(max(np.abs(s - 1 / 3).max() for s in shares.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    ap.add_argument("--bars", type=Path, default=BARS, help=f"ingest's bars (default: {BARS})")
    ap.add_argument("--k", type=float, nargs="+", default=DEFAULT_KS, help="candidate barrier_k values")
    args = ap.parse_args(argv)
    try:
        if not args.bars.is_file():
            raise TrendfactoryError(f"{args.bars}: missing; run `dvc repro ingest` first")
        if any(k <= 0 for k in args.k):
            raise TrendfactoryError(f"--k: {min(args.k):g} is not > 0; give barrier multiples > 0")
        params = load_params(args.params)
        try:
            bars = pd.read_parquet(args.bars, columns=["symbol", "datetime", "close"])
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise TrendfactoryError(f"{args.bars}: not ingest's bars ({str(exc).splitlines()[0]}); rerun `dvc repro ingest`") from None
        rows = first_train_rows(bars, params)
    except TrendfactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    horizons = params.label.horizons
    print(f"fold 0 train rows: {int(rows.sum()):,}; shares down/flat/up per horizon; current label.barrier_k {params.label.barrier_k:g}")
    print("k     " + "  ".join(f"h{h}: down  flat  up  " for h in horizons) + "  max |share - 1/3|")
    scores = {}
    for k in args.k:
        shares = class_shares(bars, rows, params, k)
        scores[k] = imbalance(shares)
        cells = "  ".join(f"h{h}: {s[0]:.3f} {s[1]:.3f} {s[2]:.3f}" for h, s in shares.items())
        print(f"{k:<5g} {cells}  {scores[k]:.4f}")
    best = min(scores, key=lambda k: (scores[k], k))
    print(f"most balanced on fold 0's train block: barrier_k {best:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
