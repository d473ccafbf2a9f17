"""Whole `featurize` stage on synthetic 500 symbols x 5,000 OHLCV bars: time and peak memory.

Target (issue 2): <= 60 s and <= 4 GB peak on the 2-core machine.
Runs ingest (synthetic, untimed) and then build_features + writing the parquet outputs, the
same functions the stage calls, in this process; peak RSS is the process high-water mark.

    .venv/bin/python benchmarks/bench_featurize.py [--symbols 500 --bars 5000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from trendfactory.data.ingest import run_ingest
from trendfactory.features.build import build_features
from trendfactory.io import write_json, write_parquet
from trendfactory.params import parse_params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    params = parse_params(
        {
            "data": {"source": "synthetic", "start": None, "end": None, "synthetic": {"n_symbols": args.symbols, "n_bars": args.bars, "start": "2000-01-03"}},
            "split": {"train_end": "2012-12-31", "val_end": "2015-12-31"},
        }
    )
    raw = run_ingest(params.data, params.seed)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = build_features(raw.bars, raw.context, params)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_parquet(result.frame, Path(tmp) / "features.parquet")
        write_json(result.folds, Path(tmp) / "folds.json")
        write_json(result.schema, Path(tmp) / "schema.json")
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(raw.bars)
    print(
        f"featurize {args.symbols} symbols x {args.bars} bars = {n:,} rows, "
        f"{result.schema['n_features']['total']} features ({result.schema['n_features']['stock']} stock, "
        f"{result.schema['n_features']['context']} context)"
    )
    print(f"  build_features : {t1 - t0:6.1f} s")
    print(f"  write parquet  : {t2 - t1:6.1f} s")
    print(f"  total          : {t2 - t0:6.1f} s   (target <= 60 s)")
    print(f"  peak RSS       : {peak:6.0f} MB (after ingest: {rss_before:.0f} MB; target <= 4096 MB)")


if __name__ == "__main__":
    main()
