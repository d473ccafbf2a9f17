"""Benchmark: batched torch indicators vs TA-Lib looping symbol by symbol.

Synthetic, seeded OHLCV for 500 symbols x 5,000 bars. Three timings of the same indicator set
(the one the stock features use: SMA x3, RSI, MACD, ±DI/ADX, STDDEV x2 on log returns,
BBANDS, ATR, CCI, STOCH, WaveTrend, volume mean/std), best of a few repeats:

* ``talib loop``: TA-Lib called per symbol (the reference);
* ``torch indicators``: the bare functions of trendfactory.features.indicators on [500, 5000];
* ``stock features (tensors)``: compute_stock_features' computation on packed tensors, i.e.
  every stk_* feature including ratios and crosses (no packing/unpacking);
* ``compute_stock_features`` end to end (pack + compute + one row per bar DataFrame).

Run:  .venv/bin/python benchmarks/bench_indicators.py [--symbols 500] [--bars 5000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
import torch

from trendfactory.features import indicators as ind
from trendfactory.features import stock
from trendfactory.features.packing import pack
from trendfactory.params import FeaturesConfig


def synthetic_ohlcv(n_symbols: int, n_bars: int, seed: int = 0) -> dict[str, np.ndarray]:
    """[S, T] arrays of a seeded random walk with an intrabar range and lognormal volume."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0, 0.015, (n_symbols, n_bars))
    close = 50.0 * np.exp(np.cumsum(ret, axis=1))
    open_ = close * np.exp(rng.normal(0.0, 0.004, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, close.shape)))
    volume = np.exp(rng.normal(13.0, 0.5, close.shape)).round()
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def talib_loop(a: dict[str, np.ndarray], cfg: FeaturesConfig) -> None:
    import talib

    h_, l_, c_, v_ = a["high"], a["low"], a["close"], a["volume"]
    for i in range(c_.shape[0]):
        h, l, c, v = h_[i], l_[i], c_[i], v_[i]
        r1 = np.diff(np.log(c), prepend=np.nan)
        for n in cfg.ma_windows:
            talib.SMA(c, n)
        talib.RSI(c, cfg.rsi_period)
        talib.MACD(c, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
        talib.ADX(h, l, c, cfg.adx_period)
        talib.PLUS_DI(h, l, c, cfg.adx_period)
        talib.MINUS_DI(h, l, c, cfg.adx_period)
        for n in cfg.vol_windows:
            talib.STDDEV(r1, n)
        talib.BBANDS(c, cfg.bb_period, cfg.bb_k, cfg.bb_k)
        talib.ATR(h, l, c, cfg.atr_period)
        talib.CCI(h, l, c, cfg.cci_period)
        talib.STOCH(h, l, c, cfg.stoch_k, cfg.stoch_smooth, 0, cfg.stoch_d, 0)
        ap = (h + l + c) / 3.0
        esa = talib.EMA(ap, cfg.wt_channel)
        d = talib.EMA(np.abs(ap - esa), cfg.wt_channel)
        wt1 = talib.EMA((ap - esa) / (0.015 * d), cfg.wt_average)
        talib.SMA(wt1, cfg.wt_signal)
        lv = np.log1p(v)
        talib.SMA(lv, cfg.volume_z_window)
        talib.STDDEV(lv, cfg.volume_z_window)


def torch_indicators(t: dict[str, torch.Tensor], cfg: FeaturesConfig) -> None:
    h, l, c, v = t["high"], t["low"], t["close"], t["volume"]
    logc = torch.log(c)
    r1 = torch.full_like(c, float("nan"))
    r1[:, 1:] = logc[:, 1:] - logc[:, :-1]
    for n in cfg.ma_windows:
        ind.sma(c, n)
    ind.rsi(c, cfg.rsi_period)
    ind.macd(c, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
    ind.dmi(h, l, c, cfg.adx_period)  # ADX, +DI and -DI together
    for n in cfg.vol_windows:
        ind.stddev(r1, n)
    ind.bbands(c, cfg.bb_period, cfg.bb_k, cfg.bb_k)
    ind.atr(h, l, c, cfg.atr_period)
    ind.cci(h, l, c, cfg.cci_period)
    ind.stoch(h, l, c, cfg.stoch_k, cfg.stoch_smooth, cfg.stoch_d)
    ind.wavetrend(h, l, c, cfg.wt_channel, cfg.wt_average, cfg.wt_signal)
    lv = torch.log1p(v)
    ind.sma(lv, cfg.volume_z_window)
    ind.stddev(lv, cfg.volume_z_window)


def stock_feature_tensors(t: dict[str, torch.Tensor], cfg: FeaturesConfig) -> None:
    """What compute_stock_features computes, chunk by chunk, without packing/unpacking."""
    S, T = t["close"].shape
    rows = ind.chunk_rows(T, t["close"].device)
    for s0 in range(0, S, rows):
        ch = {k: v[s0 : s0 + rows] for k, v in t.items()}
        stock.compute_feature_tensors(ch["close"], cfg, ch["high"], ch["low"], ch["volume"])


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    stock._keep_freed_memory()  # what compute_stock_features does on CPU (see its docstring)
    cfg = FeaturesConfig(device="cpu", dtype="float64")
    a = synthetic_ohlcv(args.symbols, args.bars)
    S, T = a["close"].shape
    bars = pd.DataFrame(
        {
            "symbol": np.repeat([f"S{i:04d}" for i in range(S)], T),
            "datetime": np.tile(pd.bdate_range("2000-01-03", periods=T).to_numpy(), S),
            **{k: v.reshape(-1) for k, v in a.items()},
        }
    )
    t = pack(bars, ["open", "high", "low", "close", "volume"]).tensors

    # warm up once (first calls allocate and build matmul plans)
    torch_indicators(t, cfg)
    stock_feature_tensors(t, cfg)

    res = {
        "talib loop (reference)": best_of(lambda: talib_loop(a, cfg), args.repeats),
        "torch indicators": best_of(lambda: torch_indicators(t, cfg), args.repeats),
        "stock features (tensors)": best_of(lambda: stock_feature_tensors(t, cfg), args.repeats),
        "compute_stock_features": best_of(lambda: stock.compute_stock_features(bars, cfg), max(1, args.repeats // 2)),
    }
    ref = res["talib loop (reference)"]
    print(f"{S} symbols x {T} bars, float64, torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}")
    print(f"{'':28s} {'ms':>9s} {'x talib':>8s}")
    for k, ms in res.items():
        print(f"{k:28s} {ms:9.1f} {ms / ref:8.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (whole process: data, bars frame, TA-Lib and torch runs)")


if __name__ == "__main__":
    main()
