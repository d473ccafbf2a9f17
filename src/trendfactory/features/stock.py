"""Per-symbol (stock tower) features: scale-free technical indicators, computed in batches.

``compute_stock_features(bars, cfg)`` packs long-format bars into left-aligned [S, T] tensors a
chunk of symbols at a time, runs the TA-Lib-exact torch indicators of
:mod:`trendfactory.features.indicators` on them (CPU or CUDA), and maps the results back to one
row per bar. Every column is named ``stk_*`` and is comparable across symbols (returns,
ratios to the price, bounded oscillators). Leakage rule 1 holds by construction: every
indicator is causal, so the feature at row t uses bars up to and including t only.

Columns (lists and periods from :class:`~trendfactory.params.FeaturesConfig`):

==================  ==========  ==========================================================
column              group       definition
==================  ==========  ==========================================================
stk_ret_{n}         momentum    log(close_t / close_{t-n})
stk_rsi             momentum    RSI(rsi_period), 0..100
stk_rsi_buy/sell    momentum    1.0 on the bar RSI crosses up through rsi_oversold / down
                                through rsi_overbought, else 0.0
stk_ma_dist_{n}     trend       close / SMA(close, n) - 1
stk_macd(_signal,   trend       MACD line, signal, histogram (TA-Lib MACD) / close
_hist)
stk_adx, stk_plus   trend       ADX, +DI, -DI (adx_period), 0..100           [high/low]
_di, stk_minus_di
stk_vol_{n}         volatility  population std of 1-bar log returns over n bars
stk_bb_pctb         volatility  (close - lower) / (upper - lower) of Bollinger(bb_period,
                                bb_k) (0.5 when the bands collapse)
stk_bb_width        volatility  (upper - lower) / middle
stk_atr             volatility  ATR(atr_period) / close                      [high/low]
stk_cci             oscillator  CCI(cci_period)                              [high/low]
stk_stoch_k/d       oscillator  slow stochastic (stoch_k, stoch_smooth,      [high/low]
                                stoch_d), 0..100
stk_wt1, stk_wt2    oscillator  WaveTrend (wt_channel, wt_average, wt_signal) on hlc3
                                (close when the source has no high/low)
stk_wt_cross        oscillator  +1 wt1 crosses above wt2, -1 below, else 0
stk_wt_buy/sell     oscillator  cross up while wt2 < wt_oversold / down while wt2 >
                                wt_overbought
stk_volume_z        volume      z-score of log(1 + volume) over volume_z_window   [volume]
==================  ==========  ==========================================================

Each column is NaN during its warm-up (:func:`feature_warmups`), and finite afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from trendfactory import device as _device
from trendfactory import portable_math as pmath
from trendfactory.errors import DataValidationError, ParamsError
from trendfactory.features import indicators as ind
from trendfactory.features.packing import PackLayout
from trendfactory.params import FeaturesConfig

__all__ = [
    "GROUPS",
    "StockFeatures",
    "available_inputs",
    "compute_stock_features",
    "compute_feature_tensors",
    "feature_warmups",
    "feature_groups",
    "warmup_bars",
    "resolve_device",
]

#: feature groups, in output order
GROUPS = ("momentum", "trend", "volatility", "oscillator", "volume")


@dataclass
class StockFeatures:
    """Result of :func:`compute_stock_features`.

    frame: float64 ``stk_*`` columns, index = ``bars.index``; groups: group -> its columns
    (every group in :data:`GROUPS` is present, possibly empty); skipped: indicator -> why it
    was not computed; notes: indicator -> how it was computed where the source decides
    (e.g. which price WaveTrend used).
    """

    frame: pd.DataFrame
    groups: dict[str, list[str]]
    skipped: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# column plan: names, groups and warm-ups (the single source of truth for all three)
# ----------------------------------------------------------------------------------------------


def _plan(cfg: FeaturesConfig, has_high_low: bool, has_volume: bool) -> list[tuple[str, str, int]]:
    """[(column, group, warm-up bars)] in output order for a source with these columns."""
    fast, slow = sorted((cfg.macd_fast, cfg.macd_slow))
    macd_lb = slow - 1 + cfg.macd_signal - 1
    stoch_lb = cfg.stoch_k - 1 + cfg.stoch_smooth - 1 + cfg.stoch_d - 1
    wt1_lb, wt2_lb = ind.wavetrend_lookbacks(cfg.wt_channel, cfg.wt_average, cfg.wt_signal)
    p: list[tuple[str, str, int]] = []
    p += [(f"stk_ret_{n}", "momentum", n) for n in cfg.return_lookbacks]
    p += [
        ("stk_rsi", "momentum", cfg.rsi_period),
        ("stk_rsi_buy", "momentum", cfg.rsi_period + 1),
        ("stk_rsi_sell", "momentum", cfg.rsi_period + 1),
    ]
    p += [(f"stk_ma_dist_{n}", "trend", n - 1) for n in cfg.ma_windows]
    p += [
        ("stk_macd", "trend", macd_lb),
        ("stk_macd_signal", "trend", macd_lb),
        ("stk_macd_hist", "trend", macd_lb),
    ]
    if has_high_low:
        p += [
            ("stk_adx", "trend", 2 * cfg.adx_period - 1),
            ("stk_plus_di", "trend", cfg.adx_period),
            ("stk_minus_di", "trend", cfg.adx_period),
        ]
    p += [(f"stk_vol_{n}", "volatility", n) for n in cfg.vol_windows]
    p += [
        ("stk_bb_pctb", "volatility", cfg.bb_period - 1),
        ("stk_bb_width", "volatility", cfg.bb_period - 1),
    ]
    if has_high_low:
        p += [("stk_atr", "volatility", cfg.atr_period)]
        p += [
            ("stk_cci", "oscillator", cfg.cci_period - 1),
            ("stk_stoch_k", "oscillator", stoch_lb),
            ("stk_stoch_d", "oscillator", stoch_lb),
        ]
    p += [
        ("stk_wt1", "oscillator", wt1_lb),
        ("stk_wt2", "oscillator", wt2_lb),
        ("stk_wt_cross", "oscillator", wt2_lb + 1),
        ("stk_wt_buy", "oscillator", wt2_lb + 1),
        ("stk_wt_sell", "oscillator", wt2_lb + 1),
    ]
    if has_volume:
        p += [("stk_volume_z", "volume", cfg.volume_z_window - 1)]
    return p


def feature_warmups(cfg: FeaturesConfig, has_high_low: bool = True, has_volume: bool = True) -> dict[str, int]:
    """Column -> warm-up: the number of leading bars of each symbol where it is NaN."""
    return {name: lb for name, _, lb in _plan(cfg, has_high_low, has_volume)}


def feature_groups(cfg: FeaturesConfig, has_high_low: bool = True, has_volume: bool = True) -> dict[str, list[str]]:
    """Group -> columns (every group of :data:`GROUPS`, possibly empty)."""
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name, group, _ in _plan(cfg, has_high_low, has_volume):
        groups[group].append(name)
    return groups


def warmup_bars(cfg: FeaturesConfig) -> int:
    """The longest warm-up (NaN prefix, in bars) of any stock feature, for a full OHLCV
    source (a close-only source skips some features, never adds any)."""
    return max(feature_warmups(cfg).values())


# ----------------------------------------------------------------------------------------------
# device / dtype
# ----------------------------------------------------------------------------------------------


def resolve_device(cfg: FeaturesConfig) -> tuple[torch.device, torch.dtype]:
    """features.device auto|cpu|cuda (auto = cuda when available) and features.dtype
    auto|float64|float32 (auto = float64 on CPU, float32 on CUDA)."""
    dev = _device.resolve_device(cfg.device, "features.device")
    if cfg.dtype == "auto":
        dtype = torch.float32 if dev.type == "cuda" else torch.float64
    elif cfg.dtype in ("float64", "float32"):
        dtype = getattr(torch, cfg.dtype)
    else:
        raise ParamsError(f"features.dtype: got {cfg.dtype!r}, expected one of 'auto', 'float64', 'float32'")
    return dev, dtype


# ----------------------------------------------------------------------------------------------
# the computation
# ----------------------------------------------------------------------------------------------


def _lag(x: Tensor, n: int) -> Tensor:
    """x delayed by n bars (NaN for the first n)."""
    out = torch.full_like(x, float("nan"))
    if n < x.shape[1]:
        out[:, n:] = x[:, : x.shape[1] - n]
    return out


def compute_feature_tensors(
    close: Tensor,
    cfg: FeaturesConfig,
    high: Tensor | None = None,
    low: Tensor | None = None,
    volume: Tensor | None = None,
) -> dict[str, Tensor]:
    """Every stock feature of :func:`compute_stock_features` as [S, T] tensors (same layout,
    dtype and device as ``close``). High/low indicators run only when both are given; the
    volume z-score only when volume is."""
    has_hl = high is not None and low is not None
    c = close
    out: dict[str, Tensor] = {}
    logc = pmath.log(c)  # [S, T]
    for n in cfg.return_lookbacks:
        out[f"stk_ret_{n}"] = logc - _lag(logc, n)
    r = ind.rsi(c, cfg.rsi_period)
    out["stk_rsi"] = r
    out["stk_rsi_buy"] = ind.cross_above(r, cfg.rsi_oversold)
    out["stk_rsi_sell"] = ind.cross_below(r, cfg.rsi_overbought)
    for n in cfg.ma_windows:
        out[f"stk_ma_dist_{n}"] = c / ind.sma(c, n) - 1.0
    m, s, h = ind.macd(c, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
    out["stk_macd"], out["stk_macd_signal"], out["stk_macd_hist"] = m / c, s / c, h / c
    if has_hl:
        pdi, mdi, adx = ind.dmi(high, low, c, cfg.adx_period)
        out["stk_adx"], out["stk_plus_di"], out["stk_minus_di"] = adx, pdi, mdi
    r1 = out["stk_ret_1"] if "stk_ret_1" in out else logc - _lag(logc, 1)
    ms = ind.rolling_mean_std(r1, tuple(cfg.vol_windows))  # one pass for every window
    for i, n in enumerate(cfg.vol_windows):
        out[f"stk_vol_{n}"] = ms[2 * i + 1]
    up, mid, lo = ind.bbands(c, cfg.bb_period, cfg.bb_k, cfg.bb_k)
    band = up - lo
    pctb = (c - lo) / band
    out["stk_bb_pctb"] = torch.where(band == 0, torch.full_like(pctb, 0.5), pctb)
    out["stk_bb_width"] = band / mid
    if has_hl:
        out["stk_atr"] = ind.atr(high, low, c, cfg.atr_period) / c
        out["stk_cci"] = ind.cci(high, low, c, cfg.cci_period)
        k, d = ind.stoch(high, low, c, cfg.stoch_k, cfg.stoch_smooth, cfg.stoch_d)
        out["stk_stoch_k"], out["stk_stoch_d"] = k, d
    wt1, wt2 = ind.wavetrend(high if has_hl else None, low if has_hl else None, c, cfg.wt_channel, cfg.wt_average, cfg.wt_signal)
    up_x = ind.cross_above(wt1, wt2)
    dn_x = ind.cross_below(wt1, wt2)
    out["stk_wt1"], out["stk_wt2"] = wt1, wt2
    out["stk_wt_cross"] = up_x - dn_x
    out["stk_wt_buy"] = up_x * (wt2 < cfg.wt_oversold)
    out["stk_wt_sell"] = dn_x * (wt2 > cfg.wt_overbought)
    if volume is not None:
        lv = pmath.log1p(volume.clamp(min=0.0))
        mean, sd = ind.rolling_mean_std(lv, (cfg.volume_z_window,))
        z = (lv - mean) / sd
        out["stk_volume_z"] = torch.where(sd == 0, torch.zeros_like(z), z)  # flat volume: 0
    return out


def _has_values(bars: pd.DataFrame, col: str) -> bool:
    return col in bars.columns and bool(bars[col].notna().all())


def available_inputs(bars: pd.DataFrame) -> tuple[bool, bool]:
    """(non-null high and low, non-null volume) in ``bars``: which optional indicators can run."""
    return _has_values(bars, "high") and _has_values(bars, "low"), _has_values(bars, "volume")


def compute_stock_features(bars: pd.DataFrame, cfg: FeaturesConfig, inputs: tuple[bool, bool] | None = None) -> StockFeatures:
    """Scale-free per-symbol features of long-format ``bars`` (columns symbol, datetime,
    close and optionally open/high/low/volume; sorted by (symbol, datetime)).

    Returns a :class:`StockFeatures` whose frame has one row per bar (index = bars.index).
    Indicators that need high/low (ADX, ±DI, ATR, CCI, stochastic) run only when the source has
    non-null high and low; the volume z-score only when it has non-null volume. ``inputs``:
    :func:`available_inputs` of the whole universe when ``bars`` is one chunk of it (every
    chunk then gets the same columns); None: judged on ``bars``.
    """
    # Long on purpose: one block per feature family, each a few lines, over the same price arrays.
    for col in ("symbol", "close"):
        if col not in bars.columns:
            raise DataValidationError(f"bars: missing column {col!r} (have {list(bars.columns)}); stock features need long-format bars with symbol and close")
    has_hl, has_vol = available_inputs(bars) if inputs is None else inputs
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    if not has_hl:
        if "high" in bars.columns and "low" in bars.columns:
            why = "needs high/low; the source's high/low have missing values"
        else:
            why = "needs high/low; source has close only"
        for name in ("adx", "plus_di", "minus_di", "atr", "cci", "stoch"):
            skipped[name] = why
        notes["wavetrend"] = "computed on close (no high/low); hlc3 when the source has high/low"
    else:
        notes["wavetrend"] = "computed on hlc3 = (high + low + close) / 3"
    if not has_vol:
        skipped["volume_z"] = "needs volume; the source's volume has missing values" if "volume" in bars.columns else "needs volume; source has no volume"

    plan = _plan(cfg, has_hl, has_vol)
    columns = [name for name, _, _ in plan]
    groups = feature_groups(cfg, has_hl, has_vol)
    dev, dtype = resolve_device(cfg)
    if dev.type == "cpu":
        _device.keep_freed_memory()

    layout = PackLayout.from_bars(bars)
    N, S = layout.n_rows, len(layout.symbols)
    # values per original row, float64 numpy [N]
    src = {"close": bars["close"].to_numpy(dtype=np.float64, na_value=np.nan)}
    if has_hl:
        src["high"] = bars["high"].to_numpy(dtype=np.float64, na_value=np.nan)
        src["low"] = bars["low"].to_numpy(dtype=np.float64, na_value=np.nan)
    if has_vol:
        src["volume"] = bars["volume"].to_numpy(dtype=np.float64, na_value=np.nan)

    # output [N, F] in column-major order: each column contiguous, and the DataFrame below
    # wraps it without a copy; every row belongs to one symbol chunk, so np.empty is safe
    result = np.empty((N, len(columns)), dtype=np.float64, order="F")
    # symbols are processed in chunks of ~CHUNK_ELEMENTS values so every [s, T] tensor stays
    # in cache (and a long history never needs all [S, T] tensors at once: memory is bounded
    # by the output frame plus one chunk)
    rows_per_chunk = ind.chunk_rows(layout.max_len, dev)
    for s0 in range(0, S, rows_per_chunk):
        s1 = min(S, s0 + rows_per_chunk)
        T = int(layout.lengths[s0:s1].max())  # [s1-s0, T]: this chunk's longest history
        t = {k: layout.pack_values(v, s0, s1, T, dtype=dtype, device=dev) for k, v in src.items()}
        feats = compute_feature_tensors(t["close"], cfg, t.get("high"), t.get("low"), t.get("volume"))
        # back to one value per row: a plain reshape when the chunk is dense (every symbol
        # has T bars, rows in order), else a gather by (symbol, position)
        rows = layout.chunk_rows(s0, s1)
        dense = layout.is_dense(s0, s1, T)
        flat = None if dense else layout.chunk_flat_index(s0, s1, T)
        for j, name in enumerate(columns):
            arr = feats[name].to("cpu", torch.float64).reshape(-1).numpy()  # [s*T]
            if dense:
                result[rows[0] : rows[0] + rows.size, j] = arr
            else:
                result[rows, j] = arr[flat]
        del feats, t

    frame = pd.DataFrame(result, index=bars.index, columns=columns, copy=False)
    return StockFeatures(frame=frame, groups=groups, skipped=skipped, notes=notes)
