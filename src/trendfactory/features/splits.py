"""Time splits with purge and embargo (leakage rule 4) and the train-only scaler (rule 5)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


@dataclass
class SplitResult:
    assignment: np.ndarray  # [N] object: 'train' | 'val' | 'test' | 'purged' | 'embargoed'
    report: dict = field(default_factory=dict)


def _end_of_day(d: _dt.date) -> pd.Timestamp:
    return pd.Timestamp(d) + pd.Timedelta(days=1) - pd.Timedelta(1)


def assign_splits(
    bars: pd.DataFrame,
    sym_id: np.ndarray,
    train_end: _dt.date,
    val_end: _dt.date,
    horizons: tuple[int, ...],
    entry_lag: int,
    embargo: int,
) -> SplitResult:
    """Split rows by time, purge label spans that cross a boundary, embargo after each boundary.

    Purge: a row is dropped when the exit bar of any horizon's label (t + entry_lag + h) falls
    after the end of the row's own split. Embargo: the first `embargo` bars of each symbol in
    val and test are dropped, so serially correlated features just before a boundary never sit
    next to the samples just after it.
    """
    dt = bars["datetime"].to_numpy()
    bounds = [_end_of_day(train_end).to_datetime64(), _end_of_day(val_end).to_datetime64()]
    split_idx = np.searchsorted(np.array(bounds), dt, side="left")  # 0 train, 1 val, 2 test
    n = len(bars)
    split_end = np.array(bounds + [np.datetime64("NaT")])[split_idx]

    crosses = np.zeros(n, dtype=bool)
    for h in horizons:
        span = entry_lag + h
        exit_pos = np.arange(n) + span
        has_exit = exit_pos < n
        has_exit[has_exit] = sym_id[exit_pos[has_exit]] == sym_id[has_exit]
        exit_dt = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        exit_dt[has_exit] = dt[exit_pos[has_exit]]
        # NaT comparisons are False: the test split (no end) and rows without an exit never purge.
        crosses |= has_exit & (split_idx < 2) & (exit_dt > split_end)

    # Position of each row within its (symbol, split) block, for the embargo.
    block = sym_id * 3 + split_idx
    starts = np.concatenate([[0], np.flatnonzero(block[1:] != block[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, [n]]))
    pos_in_block = np.arange(n) - np.repeat(starts, lengths)
    embargoed = (split_idx > 0) & (pos_in_block < embargo)

    names = np.array(SPLITS, dtype=object)[split_idx]
    assignment = names.copy()
    assignment[crosses] = "purged"
    assignment[embargoed & ~crosses] = "embargoed"

    report = {
        "boundaries": {"train_end": str(train_end), "val_end": str(val_end)},
        "rows": {s: int((assignment == s).sum()) for s in SPLITS},
        "purged": {s: int((crosses & (names == s)).sum()) for s in SPLITS[:2]},
        "embargoed": {s: int((embargoed & ~crosses & (names == s)).sum()) for s in SPLITS[1:]},
        "embargo_bars": embargo,
        "purge_span_bars": entry_lag + max(horizons),
    }
    return SplitResult(assignment=assignment, report=report)


def is_indicator_column(values: np.ndarray) -> bool:
    """Signal columns take values in {-1, 0, 1} only: they stay unscaled."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.isin(np.unique(finite), (-1.0, 0.0, 1.0)).all())


def fit_scaler(train: pd.DataFrame, columns: list[str]) -> dict[str, dict]:
    """Per-column z-score parameters fitted on train rows only (NaNs ignored)."""
    scaler = {}
    for col in columns:
        v = train[col].to_numpy(dtype=np.float64)
        if is_indicator_column(v):
            scaler[col] = {"kind": "identity", "mean": 0.0, "std": 1.0}
            continue
        mean = float(np.nanmean(v))
        std = float(np.nanstd(v))
        scaler[col] = {"kind": "zscore", "mean": mean, "std": std if std > 0 else 1.0}
    return scaler


def apply_scaler(frame: pd.DataFrame, scaler: dict[str, dict], clip: float) -> pd.DataFrame:
    """Scaled float32 features, clipped to +-clip standard deviations (robust to outliers)."""
    out = {}
    for col, p in scaler.items():
        v = (frame[col].to_numpy(dtype=np.float64) - p["mean"]) / p["std"]
        if p["kind"] == "zscore":
            v = np.clip(v, -clip, clip)
        out[col] = v.astype(np.float32)
    return pd.DataFrame(out, index=frame.index)
