"""Featurize: bars + context -> scaled, labelled, purged train/val/test frames and their schema."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.data.universe import required_history
from trendfactory.data.validation import check_min_length
from trendfactory.errors import DataValidationError
from trendfactory.features.context import compute_context_features
from trendfactory.features.labels import make_labels, symbol_ids
from trendfactory.features.splits import ROLE_CODES, SPLITS, apply_scaler, assign_roles, fit_scaler, fold_name, plan_folds
from trendfactory.features.stock import compute_stock_features, warmup_bars
from trendfactory.params import FeaturesConfig, Params

log = logging.getLogger("trendfactory")


@dataclass
class FeaturizeResult:
    """featurize's output: one frame of every bar (unscaled features, labels, one role column per
    fold), the schema, and per fold its boundaries and train-fitted scaler."""

    frame: pd.DataFrame  # symbol, datetime, stk_*/ctx_* (float32, unscaled), label/ret/score_h*, fold_XX (int8 roles)
    schema: dict
    folds: list[dict]  # per fold: boundaries (Fold.to_json), "scaler" {col: {kind, mean, std}}, "report"

    def fold_frames(self, fold: int = 0, clip: float | None = None) -> dict[str, pd.DataFrame]:
        """'train' | 'val' | 'test' -> that fold's rows, features scaled with the fold's own
        scaler (clipped to +-``clip``; the schema's clip when None): for tests and notebooks."""
        f = self.folds[fold]
        clip = self.schema["clip"] if clip is None else clip
        roles = self.frame[fold_name(fold)].to_numpy()
        feats = self.schema["feature_columns"]
        out = {}
        for name, code in ROLE_CODES.items():
            part = self.frame[roles == code].reset_index(drop=True)
            scaled = apply_scaler(part, {c: f["scaler"][c] for c in feats}, clip)
            out[name] = pd.concat([part.drop(columns=feats), scaled], axis=1)
        return out


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


def _uninformative(values: np.ndarray) -> str | None:
    """Why a feature cannot be used on these (train) rows, or None."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "no finite value on train rows (series does not cover the train period)"
    if finite.size > 1 and np.all(finite == finite[0]):
        return "constant on train rows"
    return None


def build_features(bars: pd.DataFrame, context: pd.DataFrame, params: Params, origin: str = "bars") -> FeaturizeResult:
    """All of featurize in memory; raises DataValidationError before anything is written."""
    fcfg, lcfg = params.features, params.label
    horizons = tuple(lcfg.horizons)
    warmup = warmup_bars(fcfg)
    need = required_history(fcfg, lcfg)  # the same minimum ingest applies data.min_history with
    check_min_length(bars, need.bars, origin, need.why)

    raw = compute_raw_features(bars, context, fcfg)
    labels = make_labels(bars, horizons, lcfg.entry_lag, lcfg.barrier_k, lcfg.vol_span)

    sym_id = symbol_ids(bars)
    first, last = bars["datetime"].min(), bars["datetime"].max()
    first_n, last_n = (pd.Timestamp(t).tz_localize(None) if pd.Timestamp(t).tzinfo else pd.Timestamp(t) for t in (first, last))
    folds = plan_folds(params.split, first_n, last_n)
    if not folds:
        raise DataValidationError(
            f"{origin}: no walk-forward fold: split.test_start={params.split.test_start} is after the last bar "
            f"({last_n.date()}); move split.test_start inside the data"
        )
    splits = [assign_roles(bars, sym_id, f, horizons, lcfg.entry_lag, params.split.embargo) for f in folds]
    for fold, res in zip(folds, splits):
        for name in SPLITS:
            if res.report["rows"][name] == 0:
                raise DataValidationError(
                    f"{origin}: fold {fold.index} split '{name}' is empty (fold {fold.to_json()}; bars span "
                    f"{first_n.date()} .. {last_n.date()}); move the split.* boundaries inside the data"
                )

    # A feature is kept only if every fold can scale it from its own train rows, so every
    # fold's models see the same columns.
    dropped: dict[str, str] = {}
    for col, series in raw.columns.items():
        v = series.to_numpy(dtype=np.float64)
        for fold, res in zip(folds, splits):
            why = _uninformative(v[res.assignment == "train"])
            if why:
                dropped[col] = f"{why} (fold {fold.index})"
                break
    if dropped:
        log.warning("dropping %d feature(s) with no information on some fold's train rows: %s", len(dropped), ", ".join(dropped))
    keep = [c for c in raw.columns if c not in dropped]

    fold_meta = []
    for fold, res in zip(folds, splits):
        is_train = res.assignment == "train"
        scaler = fit_scaler(pd.DataFrame({c: raw.columns[c].to_numpy(dtype=np.float64)[is_train] for c in keep}), keep)
        fold_meta.append({**fold.to_json(), "clip": fcfg.clip, "scaler": scaler, "report": res.report})

    # Unscaled float32 features: each fold scales them with its own scaler when a model reads
    # them (windows.reader), so the store is written once, not once per fold.
    columns: dict[str, np.ndarray] = {"symbol": bars["symbol"].to_numpy(), "datetime": bars["datetime"].to_numpy()}
    for col in keep:
        with np.errstate(over="ignore"):
            columns[col] = raw.columns.pop(col).to_numpy(dtype=np.float32)
    columns.update({c: labels[c].array for c in labels.columns})
    for fold, res in zip(folds, splits):
        columns[fold.name] = res.roles
    frame = pd.DataFrame(columns)
    del columns

    groups = {g: [c for c in cols if c in keep] for g, cols in raw.groups.items()}
    groups = {g: c for g, c in groups.items() if c}
    stock_cols = [c for c in keep if c.startswith("stk_")]
    ctx_cols = [c for c in keep if c.startswith("ctx_")]
    first_fold = splits[0].assignment
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
        "split": {
            "scheme": params.split.scheme,
            "embargo_bars": params.split.embargo,
            "purge_span_bars": lcfg.entry_lag + max(horizons),
            "folds": [{**fold.to_json(), **res.report} for fold, res in zip(folds, splits)],
        },
        "date_range": [str(first), str(last)],
        "symbols": int(bars["symbol"].nunique()),
        "class_balance": {  # of the first fold's blocks
            name: _class_balance(frame[first_fold == name], horizons) for name in SPLITS
        },
        "clip": fcfg.clip,
        "scaler": "z-score fitted on each fold's train rows only, clipped to +-%g; {-1,0,1} signal columns unscaled" % fcfg.clip,
    }
    return FeaturizeResult(frame=frame, schema=schema, folds=fold_meta)
