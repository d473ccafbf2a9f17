"""Ingest: load bars from the configured source, validate, join context, describe provenance.

The universe is handled ``data.chunk_symbols`` symbols at a time (:mod:`trendfactory.data.sources`
serves each chunk's validated bars): each chunk goes to a sink -- the stage appends it to
bars.parquet, :func:`run_ingest` collects it in memory -- so peak memory follows the chunk,
not the universe. The universe-wide checks of :mod:`trendfactory.data.universe` still see the
whole universe: symbols too short for the features' warm-up (``data.min_history``, when the
caller says how many bars that is) are judged from every symbol's bar count before any chunk
is loaded, and one-bar moves that look like unadjusted splits (``data.on_jump``) are found per
chunk and judged against the universe's median move at their dates, read back once every
chunk is written. Their messages name the user's own files.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.data import embedded
from trendfactory.data.chunks import FrameSink, batched
from trendfactory.data.context import build_context
from trendfactory.data.sources import open_source
from trendfactory.data.universe import (
    HistoryNeed,
    Jump,
    JumpCandidate,
    judge_jumps,
    jump_candidates,
    min_history_drops,
    report_jumps,
    returns_at,
)
from trendfactory.errors import DataValidationError
from trendfactory.params import DataConfig


@dataclass
class IngestResult:
    bars: pd.DataFrame  # long format, sorted by (symbol, datetime)
    context: pd.DataFrame  # 'datetime' + series columns, on the bars' calendar
    manifest: dict  # provenance: source, loaders, versions, rows, symbols, ranges
    origins: dict[str, str]  # symbol -> file/loader, for error messages downstream


@dataclass
class IngestSummary:
    """What ingest produces besides the bars (which went to the sink chunk by chunk)."""

    context: pd.DataFrame
    manifest: dict
    origins: dict[str, str]


def context_mode(cfg: DataConfig) -> str:
    """'embedded' or 'none' after resolving 'auto' (embedded context only fits embedded bars)."""
    if cfg.context == "auto":
        return "embedded" if cfg.source == "embedded" else "none"
    return cfg.context


def date_span(cfg: DataConfig) -> str:
    """Where bars are counted, for a message: the user's file may hold more outside the range."""
    if cfg.start and cfg.end:
        return f" between data.start {cfg.start} and data.end {cfg.end}"
    if cfg.start or cfg.end:
        return f" from data.start {cfg.start}" if cfg.start else f" up to data.end {cfg.end}"
    return ""


def _judge(candidates: list[JumpCandidate], sink) -> list[Jump]:
    """The candidates that are jumps, judged against every symbol's return at their times
    (read back from ``sink``, chunk by chunk: a few rows per chunk)."""
    if not candidates:
        return []
    times = np.unique(np.array([c.time for c in candidates], dtype=np.int64))
    returns = pd.concat([returns_at(chunk, times) for chunk in sink.chunks(["symbol", "datetime", "close"])], ignore_index=True)
    return judge_jumps(candidates, returns)


def ingest_chunks(cfg: DataConfig, seed: int, history: HistoryNeed | None, sink) -> IngestSummary:
    """Validate the universe and write its bars to ``sink`` a chunk of ``data.chunk_symbols``
    symbols at a time (``sink``: :class:`~trendfactory.data.chunks.FrameSink` or
    :class:`~trendfactory.data.chunks.ParquetSink`); raises DataValidationError before the
    sink's output is complete. ``history``: as :func:`run_ingest`."""
    # Long on purpose: one streaming loop whose state (chunk, sinks, universe checks) would otherwise travel through many parameters.
    source = open_source(cfg, seed)
    if source.counts.empty:
        raise DataValidationError(f"bars: no rows between data.start {cfg.start} and data.end {cfg.end}; widen the range in params.yaml")
    dropped: dict[str, dict] = {}
    if history is not None:
        dropped = min_history_drops(source.counts, history, source.origins, cfg.min_history, date_span(cfg))
    symbols = [str(s) for s in source.counts.index if str(s) not in dropped]

    rows, first, last = 0, None, None
    calendar = np.array([], dtype="datetime64[ns]")
    candidates: list[JumpCandidate] = []
    for group in batched(symbols, cfg.chunk_symbols):
        bars = source.load(list(group))
        candidates += jump_candidates(bars, cfg.jump_ratio)
        dt = bars["datetime"].to_numpy().astype("datetime64[ns]")
        calendar = np.union1d(calendar, dt)  # the universe's bar times: O(dates) memory
        lo, hi = pd.Timestamp(bars["datetime"].min()), pd.Timestamp(bars["datetime"].max())
        first, last = (lo, hi) if first is None else (min(first, lo), max(last, hi))
        rows += len(bars)
        sink.write(bars)
        del bars
    jumps = _judge(candidates, sink)
    report_jumps(jumps, source.origins, cfg.on_jump)

    mode = context_mode(cfg)
    series, context_prov = {}, {}
    if mode == "embedded":
        for name in cfg.context_series:
            loader, monthly = embedded.CONTEXT_SERIES[name]
            item = loader()
            series[name] = (item.frame, monthly)
            context_prov[name] = item.provenance()
    context, join_report = build_context(pd.DatetimeIndex(calendar), series, cfg.release_lag_days)
    for name, rep in join_report.items():
        rep.update(context_prov[name])

    origins = source.origins
    manifest = {
        "source": cfg.source,
        "provenance": source.provenance,
        "rows": int(rows),
        "symbols": sorted(symbols),
        "n_symbols": len(symbols),
        "start": str(first),
        "end": str(last),
        "columns": list(source.columns),
        "has_high_low": bool({"high", "low"} <= set(source.columns)),
        "has_volume": "volume" in source.columns,
        "origins": {s: origins[s] for s in sorted(symbols)},  # symbol -> the user's file
        "dropped_symbols": dropped,  # data.min_history: drop -> {symbol: {file, bars, needed}}
        "suspect_jumps": [{"symbol": j.symbol, "datetime": str(j.when), "ratio": round(j.ratio, 6), "file": origins.get(j.symbol)} for j in jumps],
        "context_mode": mode,
        "context": join_report,
        "versions": {"trendfactory": importlib.metadata.version("trendfactory"), "pandas": pd.__version__},
    }
    return IngestSummary(context=context, manifest=manifest, origins=origins)


def run_ingest(cfg: DataConfig, seed: int, history: HistoryNeed | None = None) -> IngestResult:
    """Everything the ingest stage writes, in memory (the stage streams the bars to disk instead).

    ``history``: the bars each symbol needs (``universe.required_history(params.features,
    params.label)``); None skips data.min_history (featurize's own length check still stops
    a run with a short symbol)."""
    sink = FrameSink()
    summary = ingest_chunks(cfg, seed, history, sink)
    return IngestResult(bars=sink.frame, context=summary.context, manifest=summary.manifest, origins=summary.origins)
