"""Null panels as the project builds its daily series: shared by the significance tests and
benchmarks/bench_calibration.py, so the suite checks, at a small size, the same simulator the
calibration table comes from."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter


def ranks(a: np.ndarray) -> np.ndarray:
    """0-based ranks along the last axis (continuous data: no ties)."""
    return np.argsort(np.argsort(a, axis=-1), axis=-1).astype(np.int16)


def spearman_rows(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Spearman correlation of each pair of rank rows: 1 - 6 sum d^2 / (n (n^2 - 1)), no ties."""
    n = ra.shape[-1]
    d = (ra - rb).astype(np.int32)
    return 1.0 - 6.0 * (d * d).sum(axis=-1) / (n * (n * n - 1))


def ar1(eps: np.ndarray, rho: float) -> np.ndarray:
    """Unit-variance stationary AR(1) along axis -2 (time) driven by eps."""
    if rho == 0.0:
        return eps
    e = eps * math.sqrt(1.0 - rho * rho)
    e[..., 0, :] = eps[..., 0, :]  # start in the stationary distribution: no burn-in needed
    return lfilter([1.0], [1.0, -rho], e, axis=-2)


def forward_returns(daily: np.ndarray, h: int) -> np.ndarray:
    """ret_h[t] = sum of daily[t+2 .. t+1+h] along axis -2; T - 1 - h dates."""
    zeros = np.zeros_like(daily[..., :1, :])
    c = np.concatenate([zeros, np.cumsum(daily, axis=-2)], axis=-2)  # c[k] = sum of the first k
    t = daily.shape[-2]
    return c[..., h + 2 :, :] - c[..., 2 : t - h + 1, :]


def book_returns(score: np.ndarray, daily: np.ndarray, h: int) -> np.ndarray:
    """[..., T - 1 - h] gross returns of the tranche book of score [..., T, S] on daily [..., T, S].

    As ``metrics.long_short_book`` without costs (checked in tests/evaluation/test_significance.py): weights
    (s - mean s) / sum |s - mean s| per date, the position over bar t -> t+1 is the mean of
    the weights decided at t-1 .. t-h (entry lag 1), the return is position . daily[t+1].
    """
    dev = score - score.mean(axis=-1, keepdims=True)
    w = dev / np.abs(dev).sum(axis=-1, keepdims=True)
    c = np.concatenate([np.zeros_like(w[..., :1, :]), np.cumsum(w, axis=-2)], axis=-2)  # c[k] = sum of w[:k]
    t = np.arange(h, w.shape[-2] - 1)
    pos = (c[..., t, :] - c[..., t - h, :]) / h
    return (pos * daily[..., t + 1, :]).sum(axis=-1)
