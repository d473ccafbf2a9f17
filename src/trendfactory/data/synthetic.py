"""Seeded synthetic OHLCV bars for tests and benchmarks.

Log returns per symbol: r[s, t] = beta_s * m[t] + d[s, t] + sigma[s, t] * e[s, t]
  m     a common market factor (its own volatility clustering),
  sigma GARCH(1,1)-like volatility clustering per symbol,
  d     a planted, persistent drift (AR(1), phi = 0.98) with std = signal_strength * 0.5 * sigma.
With signal_strength = 0, prices are a pure random walk: nothing is predictable, so any model
beating chance on it betrays look-ahead. With signal_strength > 0, past returns reveal d, so
momentum-like features carry real signal of known strength.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trendfactory.params import SyntheticConfig

_DAILY_VOL = 0.015
_PHI = 0.98


def _garch_vol(rng: np.random.Generator, shape: tuple[int, int], base: float) -> np.ndarray:
    """[S, T] volatility paths with clustering: sigma^2_t = w + a*sigma^2_{t-1}*z^2 + b*sigma^2_{t-1}."""
    alpha, beta = 0.08, 0.9
    omega = base**2 * (1 - alpha - beta)
    z = rng.standard_normal(shape)
    var = np.empty(shape)
    var[:, 0] = base**2
    for t in range(1, shape[1]):  # O(T) loop over [S] vectors: T is a few thousand at most
        var[:, t] = omega + alpha * var[:, t - 1] * z[:, t - 1] ** 2 + beta * var[:, t - 1]
    return np.sqrt(var)


def generate_bars(cfg: SyntheticConfig, seed: int) -> pd.DataFrame:
    """Long-format bars [symbol, datetime, open, high, low, close, volume] sorted by symbol, time."""
    rng = np.random.default_rng(seed)
    S, T = cfg.n_symbols, cfg.n_bars
    market = _garch_vol(rng, (1, T), _DAILY_VOL * 0.7)[0] * rng.standard_normal(T)  # [T]
    beta = rng.uniform(0.6, 1.4, size=(S, 1))
    sigma = _garch_vol(rng, (S, T), _DAILY_VOL)  # [S, T]
    drift = np.zeros((S, T))
    if cfg.signal_strength > 0:
        eta = rng.standard_normal((S, T))
        scale = cfg.signal_strength * 0.5 * _DAILY_VOL
        for t in range(1, T):
            drift[:, t] = _PHI * drift[:, t - 1] + np.sqrt(1 - _PHI**2) * scale * eta[:, t]
    eps = rng.standard_normal((S, T))
    log_ret = beta * market[None, :] + drift + sigma * eps  # [S, T]
    log_ret[:, 0] = 0.0
    start_price = rng.uniform(20, 200, size=(S, 1))
    close = start_price * np.exp(np.cumsum(log_ret, axis=1))

    prev_close = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    # Open near the previous close; high/low bracket open and close by a random intrabar range.
    open_ = prev_close * np.exp(0.2 * sigma * rng.standard_normal((S, T)))
    spread = np.abs(sigma * rng.standard_normal((S, T))) * 0.6
    high = np.maximum(open_, close) * np.exp(spread * rng.uniform(0.2, 1.0, (S, T)))
    low = np.minimum(open_, close) * np.exp(-spread * rng.uniform(0.2, 1.0, (S, T)))
    volume = np.round(rng.lognormal(13, 0.4, (S, T)) * (1 + 20 * np.abs(log_ret)))

    dates = pd.date_range(cfg.start, periods=T, freq=cfg.freq)
    symbols = np.array([f"SYN{i:03d}" for i in range(S)])
    frame = pd.DataFrame(
        {
            "symbol": np.repeat(symbols, T),
            "datetime": np.tile(dates.to_numpy(), S),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )
    if not cfg.ohlcv:
        frame = frame[["symbol", "datetime", "close"]]
    return frame
