"""Featurize: bars + context -> scaled, labelled, purged train/val/test frames and their schema."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.data.validation import check_min_length
from trendfactory.errors import DataValidationError
from trendfactory.features.context import compute_context_features
from trendfactory.features.labels import make_labels, symbol_ids
from trendfactory.features.splits import SPLITS, apply_scaler, assign_splits, fit_scaler
from trendfactory.features.stock import compute_stock_features, warmup_bars
from trendfactory.params import FeaturesConfig, Params, split_dates

log = logging.getLogger("trendfactory")


@dataclass
class FeaturizeResult:
    splits: dict[str, pd.DataFrame]  # 'train' | 'val' | 'test' -> symbol, datetime, features, labels
    schema: dict
    scaler: dict


@dataclass
class RawFeatures:
    """Unscaled features of every bar: what featurize scales and the scorer re-creates."""

    columns: dict[str, pd.Series]  # stk_* then ctx_* float64 columns, index = bars.index
    groups: dict[str, list[str]]  # feature group -> its columns (stock groups, then context groups)
    skipped: dict[str, str]  # stock indicator -> why it was not computed


def compute_raw_features(bars: pd.DataFrame, context: pd.DataFrame, fcfg: FeaturesConfig) -> RawFeatures:
    """Stock (``stk_*``) and context (``ctx_*``) features of ``bars`` before scaling: no labels,
    no splits. ``build_features`` and the scorer (:mod:`trendfactory.scoring`) both call this."""
    t0 = time.perf_counter()
    stock = compute_stock_features(bars, fcfg)
    log.info("stock features: %d columns in %.1fs", stock.frame.shape[1], time.perf_counter() - t0)
    ctx = compute_context_features(bars, context, fcfg)
    columns = {c: frame[c] for frame in (stock.frame, ctx.frame) for c in frame.columns}
    return RawFeatures(columns=columns, groups={**stock.groups, **ctx.groups}, skipped=stock.skipped)


def label_columns(horizons) -> list[str]:
    return [f"{kind}_h{h}" for h in horizons for kind in ("label", "ret", "score")]


def _class_balance(frame: pd.DataFrame, horizons) -> dict:
    out = {}
    for h in horizons:
        lab = frame[f"label_h{h}"].dropna().astype(int)
        counts = lab.value_counts().reindex([-1, 0, 1], fill_value=0)
        total = int(counts.sum())
        out[f"h{h}"] = {
            "n": total,
            **{name: round(float(counts[v]) / total, 4) if total else 0.0 for name, v in (("down", -1), ("flat", 0), ("up", 1))},
        }
    return out


def build_features(bars: pd.DataFrame, context: pd.DataFrame, params: Params, origin: str = "bars") -> FeaturizeResult:
    """All of featurize in memory; raises DataValidationError before anything is written."""
    fcfg, lcfg = params.features, params.label
    horizons = tuple(lcfg.horizons)
    warmup = warmup_bars(fcfg)
    need = warmup + lcfg.entry_lag + max(horizons) + 1
    check_min_length(bars, need, origin, f"{warmup} warm-up bars + entry lag {lcfg.entry_lag} + horizon {max(horizons)} + 1")

    raw = compute_raw_features(bars, context, fcfg)
    labels = make_labels(bars, horizons, lcfg.entry_lag, lcfg.barrier_k, lcfg.vol_span)

    sym_id = symbol_ids(bars)
    train_end, val_end = split_dates(params)
    split = assign_splits(bars, sym_id, train_end, val_end, horizons, lcfg.entry_lag, params.split.embargo)
    for name in SPLITS:
        if split.report["rows"][name] == 0:
            raise DataValidationError(
                f"{origin}: split '{name}' is empty with split.train_end={train_end} and split.val_end={val_end} "
                f"(bars span {bars['datetime'].min().date()} .. {bars['datetime'].max().date()}); move the boundaries inside the data"
            )

    # Column by column, never a float64 copy of the whole matrix: peak memory stays low on
    # large universes (500 symbols x 5,000 bars is 2.5M rows).
    is_train = split.assignment == "train"
    raw_columns = raw.columns
    dropped = {}
    for col, series in raw_columns.items():
        v = series.to_numpy(dtype=np.float64)[is_train]
        finite = v[np.isfinite(v)]
        if finite.size == 0:
            dropped[col] = "no finite value on train rows (series does not cover the train period)"
        elif finite.size > 1 and np.all(finite == finite[0]):
            dropped[col] = "constant on train rows"
    if dropped:
        log.warning("dropping %d feature(s) with no information on train rows: %s", len(dropped), ", ".join(dropped))
    keep = [c for c in raw_columns if c not in dropped]
    scaler = fit_scaler(pd.DataFrame({c: raw_columns[c][is_train] for c in keep}), keep)
    scaled = {}
    for col in keep:
        scaled[col] = apply_scaler(raw_columns.pop(col).to_frame(), {col: scaler[col]}, fcfg.clip)[col].to_numpy()

    # Each split is sliced straight from the column arrays: no full-frame intermediate copy.
    columns = {"symbol": bars["symbol"].to_numpy(), "datetime": bars["datetime"].to_numpy(), **scaled}
    columns.update({c: labels[c].array for c in labels.columns})
    splits = {}
    for name in SPLITS:
        mask = split.assignment == name
        splits[name] = pd.DataFrame({c: v[mask] for c, v in columns.items()})
    del columns, scaled

    groups = {g: [c for c in cols if c in keep] for g, cols in raw.groups.items()}
    groups = {g: c for g, c in groups.items() if c}
    stock_cols = [c for c in keep if c.startswith("stk_")]
    ctx_cols = [c for c in keep if c.startswith("ctx_")]
    schema = {
        "feature_columns": keep,
        "towers": {"stock": stock_cols, "context": ctx_cols},
        "feature_groups": groups,
        "n_features": {"stock": len(stock_cols), "context": len(ctx_cols), "total": len(keep)},
        "skipped_indicators": raw.skipped,
        "dropped_features": dropped,
        "warmup_bars": warmup,
        "horizons": list(horizons),
        "label": {"entry_lag": lcfg.entry_lag, "barrier_k": lcfg.barrier_k, "vol_span": lcfg.vol_span, "columns": label_columns(horizons)},
        "split": split.report,
        "date_range": {name: [str(f["datetime"].min()), str(f["datetime"].max())] for name, f in splits.items()},
        "symbols": {name: int(f["symbol"].nunique()) for name, f in splits.items()},
        "class_balance": {name: _class_balance(f, horizons) for name, f in splits.items()},
        "scaler": "z-score fitted on train rows only, clipped to +-%g; {-1,0,1} signal columns unscaled" % fcfg.clip,
    }
    return FeaturizeResult(splits=splits, schema=schema, scaler=scaler)
