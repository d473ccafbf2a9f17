"""Ingest: load bars from the configured source, validate, join context, describe provenance."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import pandas as pd

from trendfactory.data import embedded
from trendfactory.data.context import build_context
from trendfactory.data.csv_source import load_csv_bars
from trendfactory.data.synthetic import generate_bars
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
        frames = [validate_bars(item.frame, item.loader) for item in loaded]
        origins = {str(s): item.loader for item, f in zip(loaded, frames) for s in f["symbol"].unique()}
        provenance = {"dataset": cfg.dataset, "loaders": [item.provenance() for item in loaded]}
    elif cfg.source == "csv":
        frames, origins = load_csv_bars(cfg.path)
        provenance = {"path": str(cfg.path), "files": sorted(set(origins.values()))}
    else:
        frame = validate_bars(generate_bars(cfg.synthetic, seed), "synthetic generator")
        frames, origins = [frame], {s: "synthetic generator" for s in frame["symbol"].unique()}
        provenance = {"generator": "trendfactory.data.synthetic.generate_bars", "seed": seed, **cfg.synthetic.__dict__}
    bars = _restrict(combine(frames), cfg)
    return bars, provenance, origins


def run_ingest(cfg: DataConfig, seed: int) -> IngestResult:
    """Everything the ingest stage writes, computed in memory (the stage writes it atomically)."""
    bars, provenance, origins = load_bars(cfg, seed)
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
        "context_mode": mode,
        "context": join_report,
        "versions": {"trendfactory": importlib.metadata.version("trendfactory"), "pandas": pd.__version__},
    }
    return IngestResult(bars=bars, context=context, manifest=manifest, origins=origins)
