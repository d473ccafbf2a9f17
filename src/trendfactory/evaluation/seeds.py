"""Predictions of several seeds: split them, average their metrics, average their predictions.

A stochastic model (a network, the dual tower, a subsampling tree ensemble) is refitted with
``evaluate.seeds`` seeds in every fold; its prediction files then hold one row per (symbol,
datetime, seed). The factory reports each metric as its mean over seeds with the spread across
seeds beside it (as qlib does), and the comparison's tests use the seed mean of each daily
series (daily Rank IC, the book's net return). Ensembles and score correlations, which need
one score per row, use the seed-averaged predictions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

PROBA = ["p_down", "p_flat", "p_up"]
KEYS = ["symbol", "datetime"]


def seed_frames(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """One frame per seed (in seed order); a frame without a ``seed`` column is one seed."""
    if "seed" not in frame.columns or frame["seed"].nunique() <= 1:
        return [frame]
    return [f.reset_index(drop=True) for _, f in frame.groupby("seed", sort=True)]


def n_seeds(frame: pd.DataFrame) -> int:
    return int(frame["seed"].nunique()) if "seed" in frame.columns and len(frame) else 1


def mean_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (symbol, datetime): the seeds' mean probabilities and score; ``pred`` is the
    class of the mean probabilities. Other columns (label, ret, fold, horizon) are the seeds'
    common values. A single-seed frame is returned unchanged (without its seed column)."""
    if n_seeds(frame) <= 1:
        return frame.drop(columns=["seed"], errors="ignore")
    averaged = [c for c in (*PROBA, "score") if c in frame.columns]
    others = [c for c in frame.columns if c not in (*averaged, *KEYS, "seed", "pred")]
    g = frame.groupby(KEYS, sort=True)
    out = g[averaged].mean()
    out[others] = g[others].first()
    out = out.reset_index()
    out.insert(2, "pred", (np.argmax(out[PROBA].to_numpy(), axis=1) - 1).astype(np.int8))
    return out


def mean_daily(series: list[pd.DataFrame | pd.Series]) -> pd.DataFrame | pd.Series:
    """The seeds' per-date mean of daily series (rows: dates); one seed's is returned as is."""
    if len(series) == 1:
        return series[0]
    return pd.concat(series).groupby(level=0).mean().sort_index()


def mean_metrics(per_seed: list[dict]) -> tuple[dict, dict]:
    """(mean, std) over seeds of every number in nested metric dicts of one shape.

    None (or non-finite) values are left out of a mean; a key none of the seeds has a number for
    is None. The std (ddof 1) is None with a single seed."""
    if len(per_seed) == 1:
        return per_seed[0], _nones(per_seed[0])
    mean: dict = {}
    std: dict = {}
    for key in per_seed[0]:
        values = [d.get(key) for d in per_seed]
        if isinstance(values[0], dict):
            mean[key], std[key] = mean_metrics([v if isinstance(v, dict) else {} for v in values])
            continue
        nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
        if not nums:
            mean[key], std[key] = values[0], None
            continue
        mean[key] = float(np.mean(nums))
        std[key] = float(np.std(nums, ddof=1)) if len(nums) > 1 else None
        if isinstance(values[0], int) and not isinstance(values[0], bool) and all(v == values[0] for v in values):
            mean[key] = values[0]  # counts (dates, rows) that every seed shares stay integers
    return mean, std


def _nones(d: dict) -> dict[str, Any]:
    return {k: _nones(v) if isinstance(v, dict) else None for k, v in d.items()}
