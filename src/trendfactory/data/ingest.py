"""Ingest: load bars from the configured source, validate, join context, describe provenance.

After the sources are combined and cut to data.start..data.end, the universe-wide checks of
:mod:`trendfactory.data.universe` run: symbols too short for the features' warm-up
(``data.min_history``, when the caller says how many bars that is) and one-bar moves that look
like unadjusted splits (``data.on_jump``). Their messages name the user's own files.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import pandas as pd

from trendfactory.data import embedded
from trendfactory.data.context import build_context
from trendfactory.data.csv_source import load_csv_bars
from trendfactory.data.synthetic import generate_bars
from trendfactory.data.universe import HistoryNeed, enforce_min_history, find_jumps, report_jumps
from trendfactory.data.validation import combine, validate_bars
from trendfactory.errors import DataValidationError
from trendfactory.params import DataConfig


@dataclass
class IngestResult:
    bars: pd.DataFrame  # long format, sorted by (symbol, datetime)
    context: pd.DataFrame  # 'datetime' + series columns, on the bars' calendar
    manifest: dict  # provenance: source, loaders, versions, rows, symbols, ranges
    origins: dict[str, str]  # symbol -> file/loader, for error messages downstream


def _restrict(bars: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    if cfg.start:
        bars = bars[bars["datetime"] >= pd.Timestamp(cfg.start)]
    if cfg.end:
        bars = bars[bars["datetime"] <= pd.Timestamp(cfg.end) + pd.Timedelta(days=1) - pd.Timedelta(1)]
    if bars.empty:
        raise DataValidationError(
            f"bars: no rows between data.start {cfg.start} and data.end {cfg.end}; widen the range in params.yaml"
        )
    return bars.reset_index(drop=True)


def context_mode(cfg: DataConfig) -> str:
    """'embedded' or 'none' after resolving 'auto' (embedded context only fits embedded bars)."""
    if cfg.context == "auto":
        return "embedded" if cfg.source == "embedded" else "none"
    return cfg.context


def load_bars(cfg: DataConfig, seed: int) -> tuple[pd.DataFrame, dict, dict[str, str]]:
    """Validated bars, their provenance entry and symbol -> origin map."""
    if cfg.source == "embedded":
        loaded = embedded.DATASETS[cfg.dataset]()
        frames = [validate_bars(item.frame, item.loader, cfg.timezone) for item in loaded]
        origins = {str(s): item.loader for item, f in zip(loaded, frames) for s in f["symbol"].unique()}
        provenance = {"dataset": cfg.dataset, "loaders": [item.provenance() for item in loaded]}
    elif cfg.source == "csv":
        frames, origins = load_csv_bars(cfg.path, cfg.timezone)
        provenance = {"path": str(cfg.path), "files": sorted(set(origins.values()))}
    else:
        frame = validate_bars(generate_bars(cfg.synthetic, seed), "synthetic generator", cfg.timezone)
        frames, origins = [frame], {s: "synthetic generator" for s in frame["symbol"].unique()}
        provenance = {"generator": "trendfactory.data.synthetic.generate_bars", "seed": seed, **cfg.synthetic.__dict__}
    bars = _restrict(combine(frames), cfg)
    return bars, provenance, origins


def _span(cfg: DataConfig) -> str:
    """Where bars are counted, for a message: the user's file may hold more outside the range."""
    if cfg.start and cfg.end:
        return f" between data.start {cfg.start} and data.end {cfg.end}"
    if cfg.start or cfg.end:
        return f" from data.start {cfg.start}" if cfg.start else f" up to data.end {cfg.end}"
    return ""


def check_universe(
    bars: pd.DataFrame, cfg: DataConfig, origins: dict[str, str], history: HistoryNeed | None
) -> tuple[pd.DataFrame, dict, list]:
    """Bars after data.min_history (when ``history`` is given), the dropped symbols, and the
    suspect jumps ``data.on_jump: warn`` let through (``error`` raises on the first)."""
    dropped: dict[str, dict] = {}
    if history is not None:
        bars, dropped = enforce_min_history(bars, history, origins, cfg.min_history, _span(cfg))
    jumps = find_jumps(bars, cfg.jump_ratio)
    report_jumps(jumps, origins, cfg.on_jump)
    return bars, dropped, jumps


def run_ingest(cfg: DataConfig, seed: int, history: HistoryNeed | None = None) -> IngestResult:
    """Everything the ingest stage writes, computed in memory (the stage writes it atomically).

    ``history``: the bars each symbol needs (``universe.required_history(params.features,
    params.label)``); None skips data.min_history (featurize's own length check still stops
    a run with a short symbol)."""
    bars, provenance, origins = load_bars(cfg, seed)
    bars, dropped, jumps = check_universe(bars, cfg, origins, history)
    calendar = pd.DatetimeIndex(bars["datetime"].drop_duplicates().sort_values())

    mode = context_mode(cfg)
    series, context_prov = {}, {}
    if mode == "embedded":
        for name in cfg.context_series:
            loader, monthly = embedded.CONTEXT_SERIES[name]
            item = loader()
            series[name] = (item.frame, monthly)
            context_prov[name] = item.provenance()
    context, join_report = build_context(calendar, series, cfg.release_lag_days)
    for name, rep in join_report.items():
        rep.update(context_prov[name])

    manifest = {
        "source": cfg.source,
        "provenance": provenance,
        "rows": int(len(bars)),
        "symbols": sorted(map(str, bars["symbol"].unique())),
        "n_symbols": int(bars["symbol"].nunique()),
        "start": str(bars["datetime"].min()),
        "end": str(bars["datetime"].max()),
        "columns": [c for c in bars.columns],
        "has_high_low": bool({"high", "low"} <= set(bars.columns)),
        "has_volume": "volume" in bars.columns,
        "origins": {s: origins[s] for s in sorted(map(str, bars["symbol"].unique()))},  # symbol -> the user's file
        "dropped_symbols": dropped,  # data.min_history: drop -> {symbol: {file, bars, needed}}
        "suspect_jumps": [
            {"symbol": j.symbol, "datetime": str(j.when), "ratio": round(j.ratio, 6), "file": origins.get(j.symbol)}
            for j in jumps
        ],
        "context_mode": mode,
        "context": join_report,
        "versions": {"trendfactory": importlib.metadata.version("trendfactory"), "pandas": pd.__version__},
    }
    return IngestResult(bars=bars, context=context, manifest=manifest, origins=origins)
