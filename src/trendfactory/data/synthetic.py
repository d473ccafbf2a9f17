"""Seeded synthetic OHLCV bars for tests and benchmarks.

Log returns per symbol: r[s, t] = beta_s * m[t] + d[s, t] + sigma[s, t] * e[s, t]
  m     a common market factor (its own volatility clustering),
  sigma GARCH(1,1)-like volatility clustering per symbol,
  d     a planted, persistent drift (AR(1), phi = 0.98) with std = signal_strength * 0.5 * sigma.
With signal_strength = 0, prices are a pure random walk: nothing is predictable, so any model
beating chance on it betrays look-ahead. With signal_strength > 0, past returns reveal d, so
momentum-like features carry real signal of known strength.

Any range of symbols can be generated on its own (:class:`SyntheticGenerator`), with the same
numbers as the whole universe drawn at once: every ``[S, T]`` block of random draws comes from
one generator stream in symbol order, and its state is recorded every ``every`` symbols while
the block is first skipped over, so a chunk replays exactly its own part of each block. Memory
follows the chunk, not the universe.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from trendfactory.params import SyntheticConfig

_DAILY_VOL = 0.015
_PHI = 0.98

Draw = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]


def _garch_vol(z: np.ndarray, base: float) -> np.ndarray:
    """[S, T] volatility paths with clustering from the shocks z [S, T]:
    sigma^2_t = w + a*sigma^2_{t-1}*z^2_{t-1} + b*sigma^2_{t-1}."""
    alpha, beta = 0.08, 0.9
    omega = base**2 * (1 - alpha - beta)
    var = np.empty(z.shape)
    var[:, 0] = base**2
    for t in range(1, z.shape[1]):  # O(T) loop over [S] vectors: T is a few thousand at most
        var[:, t] = omega + alpha * var[:, t - 1] * z[:, t - 1] ** 2 + beta * var[:, t - 1]
    return np.sqrt(var)


def _normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.standard_normal(shape)


def _range_factor(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.uniform(0.2, 1.0, shape)


def _volume_base(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.lognormal(13, 0.4, shape)


class _Block:
    """One [S, T] block of draws of the shared generator ``rng``, replayable for any symbols.

    Constructing it advances ``rng`` past the whole block (as one ``draw(rng, (S, T))`` would:
    numpy fills arrays in order, so consecutive row slices draw the same numbers), recording
    the state at every ``every``-th symbol; :meth:`rows` replays a range from the nearest mark."""

    def __init__(self, rng: np.random.Generator, draw: Draw, n_symbols: int, n_bars: int, every: int) -> None:
        self.draw, self.T, self.every = draw, n_bars, every
        self.marks: list[dict] = []
        for s in range(0, n_symbols, every):
            self.marks.append(rng.bit_generator.state)
            draw(rng, (min(every, n_symbols - s), n_bars))  # skipped here, replayed by rows()

    def rows(self, s0: int, s1: int) -> np.ndarray:
        """[s1 - s0, T]: the block's draws for symbols s0 .. s1-1."""
        mark = s0 // self.every
        bit_generator = np.random.PCG64()
        bit_generator.state = self.marks[mark]
        rng = np.random.Generator(bit_generator)
        if s0 > mark * self.every:
            self.draw(rng, (s0 - mark * self.every, self.T))  # the mark's symbols before s0
        return self.draw(rng, (s1 - s0, self.T))


class SyntheticGenerator:
    """The synthetic universe of ``cfg`` and ``seed``, generated a range of symbols at a time.

    ``every``: symbols between two recorded generator states (the chunk size; it changes only
    the cost of :meth:`bars`, never the numbers)."""

    def __init__(self, cfg: SyntheticConfig, seed: int, every: int | None = None) -> None:
        S, T = cfg.n_symbols, cfg.n_bars
        every = max(1, int(every or S))
        self.cfg = cfg
        rng = np.random.default_rng(seed)
        # The draw order below is the generator's definition: every block in this order.
        self.market = _garch_vol(rng.standard_normal((1, T)), _DAILY_VOL * 0.7)[0] * rng.standard_normal(T)  # [T]
        self.beta = rng.uniform(0.6, 1.4, size=(S, 1))
        self._vol_shocks = _Block(rng, _normal, S, T, every)
        self._drift_shocks = _Block(rng, _normal, S, T, every) if cfg.signal_strength > 0 else None
        self._eps = _Block(rng, _normal, S, T, every)
        self.start_price = rng.uniform(20, 200, size=(S, 1))
        self._open = _Block(rng, _normal, S, T, every)
        self._spread = _Block(rng, _normal, S, T, every)
        self._high = _Block(rng, _range_factor, S, T, every)
        self._low = _Block(rng, _range_factor, S, T, every)
        self._volume = _Block(rng, _volume_base, S, T, every)
        self.dates = pd.date_range(cfg.start, periods=T, freq=cfg.freq)
        self.symbols = [f"SYN{i:03d}" for i in range(S)]

    def bars(self, s0: int = 0, s1: int | None = None) -> pd.DataFrame:
        """Long-format bars of symbols s0 .. s1-1 (generator order), sorted by symbol, time."""
        s1 = self.cfg.n_symbols if s1 is None else s1
        S, T = s1 - s0, self.cfg.n_bars
        sigma = _garch_vol(self._vol_shocks.rows(s0, s1), _DAILY_VOL)  # [S, T]
        drift = np.zeros((S, T))
        if self._drift_shocks is not None:
            eta = self._drift_shocks.rows(s0, s1)
            scale = self.cfg.signal_strength * 0.5 * _DAILY_VOL
            for t in range(1, T):
                drift[:, t] = _PHI * drift[:, t - 1] + np.sqrt(1 - _PHI**2) * scale * eta[:, t]
        log_ret = self.beta[s0:s1] * self.market[None, :] + drift + sigma * self._eps.rows(s0, s1)  # [S, T]
        log_ret[:, 0] = 0.0
        close = self.start_price[s0:s1] * np.exp(np.cumsum(log_ret, axis=1))

        prev_close = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
        # Open near the previous close; high/low bracket open and close by a random intrabar range.
        open_ = prev_close * np.exp(0.2 * sigma * self._open.rows(s0, s1))
        spread = np.abs(sigma * self._spread.rows(s0, s1)) * 0.6
        high = np.maximum(open_, close) * np.exp(spread * self._high.rows(s0, s1))
        low = np.minimum(open_, close) * np.exp(-spread * self._low.rows(s0, s1))
        volume = np.round(self._volume.rows(s0, s1) * (1 + 20 * np.abs(log_ret)))

        frame = pd.DataFrame(
            {
                "symbol": np.repeat(np.array(self.symbols[s0:s1]), T),
                "datetime": np.tile(self.dates.to_numpy(), S),
                "open": open_.ravel(),
                "high": high.ravel(),
                "low": low.ravel(),
                "close": close.ravel(),
                "volume": volume.ravel(),
            }
        )
        if not self.cfg.ohlcv:
            frame = frame[["symbol", "datetime", "close"]]
        return frame


def generate_bars(cfg: SyntheticConfig, seed: int) -> pd.DataFrame:
    """Long-format bars [symbol, datetime, open, high, low, close, volume] sorted by symbol, time."""
    return SyntheticGenerator(cfg, seed).bars()
