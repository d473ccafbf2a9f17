"""Forward returns and triple-barrier labels (leakage rules 2 and 3).

For a row t of one symbol, a trade decided at bar t enters at e = t + entry_lag and exits at
x = e + h. With sigma_t the EWM volatility of 1-bar log returns up to and including bar t:
  ret_h   = close[x] / close[e] - 1                      (what a trade on this row earns)
  barrier = k * sigma_t * sqrt(h)                        (in log-return units)
  label_h = +1 if log(close[e+j]/close[e]) >= +barrier first (j = 1..h), -1 if <= -barrier
            first, 0 if neither is touched by x (the vertical barrier)
  score_h = label_h when a barrier is touched, else log(close[x]/close[e]) / barrier, in [-1, 1]
Rows without h + entry_lag later bars of the same symbol get missing labels.
Barriers are checked on closes, so close-only and OHLCV sources label the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_CHUNK = 200_000  # rows per block: bounds the [rows, h+1] path matrix to a few tens of MB


def ewm_volatility(bars: pd.DataFrame, span: int) -> np.ndarray:
    """sigma_t: EWM std of 1-bar log returns within each symbol, using bars <= t only."""
    logret = np.log(bars["close"]).groupby(bars["symbol"], sort=False).diff()
    vol = logret.groupby(bars["symbol"], sort=False).transform(lambda s: s.ewm(span=span, min_periods=span // 2).std())
    return vol.to_numpy(dtype=np.float64)


def symbol_ids(bars: pd.DataFrame) -> np.ndarray:
    """Integer id per row, equal within a symbol's contiguous block (bars sorted by symbol, time)."""
    sym = bars["symbol"].to_numpy()
    return np.concatenate([[0], np.cumsum(sym[1:] != sym[:-1])]).astype(np.int64)


def triple_barrier(close: np.ndarray, sym_id: np.ndarray, sigma: np.ndarray, h: int, entry_lag: int, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label float with NaN for missing, ret_h, score_h), each [N], for rows sorted by symbol, time."""
    n = len(close)
    label = np.full(n, np.nan)
    ret = np.full(n, np.nan)
    score = np.full(n, np.nan)
    span = entry_lag + h  # bars from decision to exit
    if n <= span:
        return label, ret, score
    log_c = np.log(close)
    # Rows whose exit bar exists and belongs to the same symbol.
    t_all = np.arange(n - span)
    ok_all = sym_id[t_all + span] == sym_id[t_all]
    steps = np.arange(1, h + 1)
    for lo in range(0, len(t_all), _CHUNK):
        t = t_all[lo : lo + _CHUNK][ok_all[lo : lo + _CHUNK]]
        if len(t) == 0:
            continue
        e = t + entry_lag
        path = log_c[e[:, None] + steps[None, :]] - log_c[e][:, None]  # [rows, h] log return since entry
        barrier = k * sigma[t] * np.sqrt(h)  # [rows]
        up = path >= barrier[:, None]
        dn = path <= -barrier[:, None]
        # First touch index (h when never touched); argmax gives the first True.
        first_up = np.where(up.any(axis=1), up.argmax(axis=1), h)
        first_dn = np.where(dn.any(axis=1), dn.argmax(axis=1), h)
        lab = np.where(first_up < first_dn, 1.0, np.where(first_dn < first_up, -1.0, 0.0))
        final = path[:, -1]
        valid = np.isfinite(barrier) & (barrier > 0)  # sigma is NaN until vol_span/2 returns exist
        ratio = np.divide(final, barrier, out=np.zeros_like(final), where=valid)
        sc = np.where(lab != 0, lab, np.clip(ratio, -1.0, 1.0))
        label[t[valid]] = lab[valid]
        score[t[valid]] = sc[valid]
        ret[t] = np.expm1(final)
    return label, ret, score


def make_labels(bars: pd.DataFrame, horizons: tuple[int, ...], entry_lag: int, k: float, vol_span: int) -> pd.DataFrame:
    """label_h{h} (Int8, nullable), ret_h{h}, score_h{h} for every horizon; index = bars.index."""
    sym_id = symbol_ids(bars)
    sigma = ewm_volatility(bars, vol_span)
    close = bars["close"].to_numpy(dtype=np.float64)
    out = {}
    for h in horizons:
        label, ret, score = triple_barrier(close, sym_id, sigma, h, entry_lag, k)
        out[f"label_h{h}"] = pd.arrays.IntegerArray(np.nan_to_num(label).astype(np.int8), np.isnan(label))
        out[f"ret_h{h}"] = ret
        out[f"score_h{h}"] = score
    return pd.DataFrame(out, index=bars.index)
