"""Featurize: bars + context -> unscaled features, labels and fold roles of every bar, each
fold's train-fitted scaler, and the schema.

The universe is processed ``data.chunk_symbols`` symbols at a time, in two passes over the
chunks (:func:`featurize`). The first gathers what needs the whole universe: each symbol's bar
count (the history check), the date range (the folds), which inputs every symbol has (so every
chunk gets the same indicators) and the per-date cross-sectional aggregates of the breadth
features. The second computes each chunk's rows -- stock features, the joined context, labels,
fold roles: all per symbol, so the same as in one piece -- adds the chunk's train rows to each
fold's column statistics, and hands the rows to a sink (the stage appends them to
features.parquet). Memory follows the chunk, not the universe. :func:`build_features` is the
same computation with the bars in memory (one chunk when the universe has at most
``chunk_symbols`` symbols).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.data.chunks import FrameChunks, FrameSink
from trendfactory.data.universe import required_history
from trendfactory.data.validation import check_symbol_lengths
from trendfactory.errors import DataValidationError
from trendfactory.features.breadth import breadth_stats
from trendfactory.features.context import ContextByDate, context_by_date, join_context
from trendfactory.features.labels import make_labels, symbol_ids
from trendfactory.features.splits import (
    ROLE_CODES,
    SPLITS,
    ColumnStats,
    apply_scaler,
    assign_roles,
    fold_name,
    merge_reports,
    plan_folds,
    scaler_from_stats,
)
from trendfactory.features.stock import available_inputs, compute_stock_features, warmup_bars
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


@dataclass
class Universe:
    """What featurize needs of the whole universe before it computes any chunk's rows."""

    counts: pd.Series  # symbol -> bars, sorted by symbol
    first: pd.Timestamp  # first and last bar time
    last: pd.Timestamp
    inputs: tuple[bool, bool]  # every symbol has high/low, volume (stock.available_inputs)
    context: ContextByDate  # every ctx_* column per datetime


def scan_universe(chunks: Iterable[pd.DataFrame], context: pd.DataFrame, fcfg: FeaturesConfig) -> Universe:
    """The first pass over the universe's chunks (whole symbols each)."""
    counts, breadth, first, last = [], None, None, None
    has_hl = has_vol = True
    for bars in chunks:
        counts.append(bars.groupby("symbol", sort=True).size())
        stats = breadth_stats(bars, fcfg.context_lookbacks)
        breadth = stats if breadth is None else breadth.merge(stats)
        lo, hi = bars["datetime"].min(), bars["datetime"].max()
        first, last = (lo, hi) if first is None else (min(first, lo), max(last, hi))
        hl, vol = available_inputs(bars)
        has_hl, has_vol = has_hl and hl, has_vol and vol
    if breadth is None:
        raise DataValidationError("bars: no rows; ingest at least one symbol's bars")
    counts = pd.concat(counts) if len(counts) > 1 else counts[0]
    return Universe(counts.sort_index(), first, last, (has_hl, has_vol), context_by_date(context, breadth, fcfg))


def compute_raw_features(bars: pd.DataFrame, context: pd.DataFrame, fcfg: FeaturesConfig, universe: Universe | None = None) -> RawFeatures:
    """Stock (``stk_*``) and context (``ctx_*``) features of ``bars`` before scaling: no labels,
    no splits. ``universe``: the scan of the whole universe when ``bars`` is one chunk of it;
    None when ``bars`` is the whole universe. Featurize and the scorer
    (:mod:`trendfactory.scoring`) both call this."""
    universe = universe or scan_universe([bars], context, fcfg)
    stock = compute_stock_features(bars, fcfg, universe.inputs)
    ctx = join_context(universe.context, bars)
    columns = {c: frame[c] for frame in (stock.frame, ctx.frame) for c in frame.columns}
    return RawFeatures(columns=columns, groups={**stock.groups, **ctx.groups}, skipped=stock.skipped)


def label_columns(horizons) -> list[str]:
    return [f"{kind}_h{h}" for h in horizons for kind in ("label", "ret", "score")]


def _label_counts(labels: pd.DataFrame, rows: np.ndarray, horizons) -> dict[int, np.ndarray]:
    """Per horizon: how many of ``rows`` are labelled down, flat, up."""
    out = {}
    for h in horizons:
        lab = labels[f"label_h{h}"].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
        out[h] = np.array([np.count_nonzero(lab == v) for v in (-1.0, 0.0, 1.0)], dtype=np.int64)
    return out


def _class_balance(counts: dict[int, np.ndarray]) -> dict:
    out = {}
    for h, c in counts.items():
        total = int(c.sum())
        out[f"h{h}"] = {
            "n": total,
            **{name: round(float(c[i]) / total, 4) if total else 0.0 for i, name in enumerate(("down", "flat", "up"))},
        }
    return out


def _uninformative(stats: ColumnStats) -> str | None:
    """Why a feature cannot be used on these (train) rows, or None."""
    if stats.finite == 0:
        return "no finite value on train rows (series does not cover the train period)"
    if stats.finite > 1 and stats.low == stats.high:
        return "constant on train rows"
    return None


class _TrainStats:
    """Per fold: each feature's train statistics, the split report, the first fold's label
    counts; summed over the chunks as they pass."""

    def __init__(self, n_folds: int, horizons) -> None:
        self.columns: list[dict[str, ColumnStats]] = [{} for _ in range(n_folds)]
        self.reports: list[dict | None] = [None] * n_folds
        self.labels: dict[str, dict[int, np.ndarray]] = {name: {h: np.zeros(3, np.int64) for h in horizons} for name in SPLITS}
        self.horizons = horizons

    def add(self, raw: RawFeatures, labels: pd.DataFrame, splits) -> None:
        for k, res in enumerate(splits):
            is_train = res.assignment == "train"
            acc = self.columns[k]
            for col, series in raw.columns.items():
                part = ColumnStats.of(series.to_numpy(dtype=np.float64)[is_train])
                acc[col] = acc[col].merge(part) if col in acc else part
            self.reports[k] = res.report if self.reports[k] is None else merge_reports(self.reports[k], res.report)
        for name in SPLITS:  # the first fold's blocks
            for h, c in _label_counts(labels, splits[0].assignment == name, self.horizons).items():
                self.labels[name][h] += c


def _chunk_frame(bars: pd.DataFrame, raw: RawFeatures, labels: pd.DataFrame, folds, splits) -> pd.DataFrame:
    """The chunk's output rows: symbol, datetime, every feature (float32, unscaled), labels,
    one int8 role column per fold."""
    # Unscaled float32 features: each fold scales them with its own scaler when a model reads
    # them (windows.reader), so the store is written once, not once per fold.
    columns: dict[str, np.ndarray] = {"symbol": bars["symbol"].to_numpy(), "datetime": bars["datetime"].to_numpy()}
    for col in list(raw.columns):
        with np.errstate(over="ignore"):
            columns[col] = raw.columns.pop(col).to_numpy(dtype=np.float32)
    columns.update({c: labels[c].array for c in labels.columns})
    for fold, res in zip(folds, splits):
        columns[fold.name] = res.roles
    return pd.DataFrame(columns)


def featurize(chunks: Iterable[pd.DataFrame], context: pd.DataFrame, params: Params, sink, origin: str = "bars") -> tuple[dict, list[dict]]:
    """All of featurize over a universe given as ``chunks`` (whole symbols each, in output order;
    iterated twice): the rows go to ``sink`` (``write`` per chunk, then ``drop_columns`` of the
    features no fold can use), the schema and the folds (boundaries, scaler, report) are
    returned. Raises DataValidationError before the sink's output is complete."""
    # Long on purpose: the featurize pass over chunks with its two-phase scaler; its state is the chunk loop's.
    fcfg, lcfg = params.features, params.label
    horizons = tuple(lcfg.horizons)
    warmup = warmup_bars(fcfg)
    need = required_history(fcfg, lcfg)  # the same minimum ingest applies data.min_history with
    universe = scan_universe(chunks, context, fcfg)
    check_symbol_lengths(universe.counts, need.bars, origin, need.why)

    first, last = universe.first, universe.last
    first_n, last_n = (pd.Timestamp(t).tz_localize(None) if pd.Timestamp(t).tzinfo else pd.Timestamp(t) for t in (first, last))
    folds = plan_folds(params.split, first_n, last_n)
    if not folds:
        raise DataValidationError(f"{origin}: no walk-forward fold: split.test_start={params.split.test_start} is after the last bar ({last_n.date()}); move split.test_start inside the data")

    train = _TrainStats(len(folds), horizons)
    n_chunks = -(-len(universe.counts) // params.data.chunk_symbols)
    features = groups = skipped = None
    for i, bars in enumerate(chunks):
        t0 = time.perf_counter()
        raw = compute_raw_features(bars, context, fcfg, universe)
        labels = make_labels(bars, horizons, lcfg.entry_lag, lcfg.barrier_k, lcfg.vol_span)
        sym_id = symbol_ids(bars)
        splits = [assign_roles(bars, sym_id, f, horizons, lcfg.entry_lag, params.split.embargo) for f in folds]
        train.add(raw, labels, splits)
        if features is None:  # the same columns in every chunk (inputs and context are the universe's)
            features, groups, skipped = list(raw.columns), raw.groups, raw.skipped
        sink.write(_chunk_frame(bars, raw, labels, folds, splits))
        log.info("chunk %d/%d: %d symbols, %d rows in %.1fs", i + 1, n_chunks, bars["symbol"].nunique(), len(bars), time.perf_counter() - t0)
        del raw, labels, splits

    for fold, report in zip(folds, train.reports):
        for name in SPLITS:
            if report["rows"][name] == 0:
                raise DataValidationError(
                    f"{origin}: fold {fold.index} split '{name}' is empty (fold {fold.to_json()}; bars span {first_n.date()} .. {last_n.date()}); move the split.* boundaries inside the data"
                )

    # A feature is kept only if every fold can scale it from its own train rows, so every
    # fold's models see the same columns.
    dropped: dict[str, str] = {}
    for col in features:
        for fold, stats in zip(folds, train.columns):
            why = _uninformative(stats[col])
            if why:
                dropped[col] = f"{why} (fold {fold.index})"
                break
    if dropped:
        log.warning("dropping %d feature(s) with no information on some fold's train rows: %s", len(dropped), ", ".join(dropped))
        sink.drop_columns(list(dropped))
    keep = [c for c in features if c not in dropped]

    fold_meta = []
    for fold, stats, report in zip(folds, train.columns, train.reports):
        scaler = scaler_from_stats({c: stats[c] for c in keep})
        fold_meta.append({**fold.to_json(), "clip": fcfg.clip, "scaler": scaler, "report": report})

    groups = {g: [c for c in cols if c in keep] for g, cols in groups.items()}
    groups = {g: c for g, c in groups.items() if c}
    stock_cols = [c for c in keep if c.startswith("stk_")]
    ctx_cols = [c for c in keep if c.startswith("ctx_")]
    schema = {
        "feature_columns": keep,
        "towers": {"stock": stock_cols, "context": ctx_cols},
        "feature_groups": groups,
        "n_features": {"stock": len(stock_cols), "context": len(ctx_cols), "total": len(keep)},
        "skipped_indicators": skipped,
        "dropped_features": dropped,
        "warmup_bars": warmup,
        "horizons": list(horizons),
        "label": {"entry_lag": lcfg.entry_lag, "barrier_k": lcfg.barrier_k, "vol_span": lcfg.vol_span, "columns": label_columns(horizons)},
        "split": {
            "scheme": params.split.scheme,
            "embargo_bars": params.split.embargo,
            "purge_span_bars": lcfg.entry_lag + max(horizons),
            "folds": [{**fold.to_json(), **report} for fold, report in zip(folds, train.reports)],
        },
        "date_range": [str(first), str(last)],
        "symbols": int(len(universe.counts)),
        "class_balance": {name: _class_balance(train.labels[name]) for name in SPLITS},  # of the first fold's blocks
        "clip": fcfg.clip,
        "scaler": "z-score fitted on each fold's train rows only, clipped to +-%g; {-1,0,1} signal columns unscaled" % fcfg.clip,
    }
    return schema, fold_meta


def build_features(bars: pd.DataFrame, context: pd.DataFrame, params: Params, origin: str = "bars") -> FeaturizeResult:
    """All of featurize in memory (:func:`featurize` over ``bars`` in chunks of
    ``data.chunk_symbols`` symbols, the rows collected); raises DataValidationError before
    anything is written."""
    sink = FrameSink()
    schema, folds = featurize(FrameChunks(bars, params.data.chunk_symbols, origin), context, params, sink, origin)
    return FeaturizeResult(frame=sink.frame, schema=schema, folds=folds)
