"""Significance of daily IC and return series that are autocorrelated by construction.

Why this module exists: a daily Rank IC against the h-bar forward return ``ret_h`` overlaps
h - 1 bars with the next day's, and model scores built from moving averages persist from day
to day, so the daily IC series is autocorrelated up to lag ~h - 1. The Newey-West t with h - 1
Bartlett lags in ``metrics.ic_metrics`` down-weights exactly those lags and rejects a true null
about twice as often as it should (9-12 % at a nominal 5 % once scores persist, rho >= 0.9,
at h = 5 and 20). ``mean_test`` is calibrated for such series (4.8-5.5 %); the bootstrap
tools are better than ignoring the dependence but still somewhat liberal. The false-positive
rates are measured in tests/evaluation/test_significance.py:

- ``mean_test``: t-test of mean = 0 with the equal-weighted cosine (EWC) long-run variance and
  its fixed-b Student-t reference (Lazarus, Lewis, Stock & Watson 2018);
- ``bootstrap_ci``: stationary-bootstrap percentile interval of any statistic of one series
  (mean Rank IC, ``annualised_sharpe``);
- ``spa_test`` / ``model_confidence_set``: Hansen's SPA test and the Hansen-Lunde-Nason model
  confidence set over several models' daily losses (loss = -daily Rank IC), from ``arch``;
- ``deflated_sharpe_ratio``: Bailey & Lopez de Prado's correction of a Sharpe ratio for the
  number of strategies tried.

Neither statsmodels (0.15) nor arch (8.0) offers EWC or fixed-b inference (their HAC kernels
are Bartlett, Parzen, QS, ... with normal critical values), so ``mean_test`` implements EWC
here; it is a type-II DCT of the series. Every function is pure; undefined values are
``None``, never NaN, because results are written to JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.bootstrap import MCS, SPA, StationaryBootstrap, optimal_block_length
from scipy import fft, stats

MIN_OBS = 10  # below this many finite points no test is reported (t, p, intervals are None)
_TINY = 1e-12  # a (long-run) std at or below this is zero: ratios of float noise are not statistics
_EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class MeanTest:
    """Result of ``mean_test``: the mean, its t-statistic, two-sided p-value, t dof, and n."""

    mean: float | None
    t: float | None
    p: float | None
    dof: int | None
    n: int


def _check_horizon(horizon: int, caller: str) -> None:
    if horizon < 1:
        raise ValueError(f"{caller}: got horizon={horizon}, expected an integer >= 1")


def _finite(x: np.ndarray | pd.Series) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _float_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


# ----------------------------------------------------------------------------- HAR t-test


def ewc_dof(n: int, horizon: int) -> int:
    """Number B of cosines (= Student-t dof) ``mean_test`` uses for n points at this horizon.

    B = max(2, min(floor(0.4 n^(2/3)), floor(n / (3 horizon)))).

    - 0.4 n^(2/3) is Lazarus, Lewis, Stock & Watson's (2018) size/power trade-off rule for EWC.
    - n / (3 h) caps it so that the highest cosine used, whose period is 2n / B >= 6h, stays
      slow next to the ~h-lag dependence of overlapping h-bar returns. With B cosines the
      estimator averages the spectral density over frequencies up to pi B / n; for the
      triangular autocorrelation of overlapping returns (persistent scores, the worst case)
      the cap n / (2h) lets that average fall ~7 % below the long-run variance (t inflated
      ~3.5 %, size ~5.8 % at h = 20), n / (3h) only ~3 % (size ~5.3 %). Measured false-
      positive rates are in tests/evaluation/test_significance.py.
    - 2 is the floor: a t with 1 dof (Cauchy) has no usable power.
    """
    _check_horizon(horizon, "ewc_dof")
    return max(2, min(int(0.4 * n ** (2.0 / 3.0)), n // (3 * horizon)))


def mean_test(x: np.ndarray, horizon: int) -> MeanTest:
    """HAR t-test of mean(x) = 0 for a daily series autocorrelated up to lag ~horizon - 1.

    Equal-weighted cosine (EWC) long-run variance with fixed-b inference (Lazarus, Lewis,
    Stock & Watson 2018, "HAR Inference: Recommendations for Practice", JBES 36(4)):

        L_j = sqrt(2/T) sum_t cos(pi j (t - 1/2) / T) (x_t - mean),   j = 1..B
        lrv = (1/B) sum_j L_j^2,      t = sqrt(T) mean / sqrt(lrv)  ~  Student t with B dof.

    The L_j are (asymptotically) independent N(0, lrv) because the cosines are orthonormal
    and slow, so t is exactly t_B for iid Gaussian x and close to it for any series whose
    spectrum is flat below frequency pi B / T; B is ``ewc_dof(T, horizon)``. NaNs are dropped;
    with fewer than ``MIN_OBS`` points, or a constant series, t and p are None.
    """
    _check_horizon(horizon, "mean_test")
    x = _finite(x)
    n = len(x)
    if n == 0:
        return MeanTest(mean=None, t=None, p=None, dof=None, n=0)
    mean = float(x.mean())
    if n < MIN_OBS:
        return MeanTest(mean=mean, t=None, p=None, dof=None, n=n)
    b = ewc_dof(n, horizon)
    # The orthonormal type-II DCT is exactly sqrt(2/T) sum_t cos(pi j (t - 1/2) / T) x_t for
    # j >= 1 (O(T log T), no basis matrix); cosines j >= 1 sum to zero, demeaning is for float
    # accuracy only.
    proj = fft.dct(x - mean, type=2, norm="ortho")[1 : b + 1]
    lrv = float(proj @ proj) / b
    if math.sqrt(lrv) <= _TINY:
        return MeanTest(mean=mean, t=None, p=None, dof=b, n=n)
    t = math.sqrt(n) * mean / math.sqrt(lrv)
    p = float(2.0 * stats.t.sf(abs(t), b))
    return MeanTest(mean=mean, t=_float_or_none(t), p=_float_or_none(p), dof=b, n=n)


# ----------------------------------------------------------------------------- bootstrap


def block_size(x: np.ndarray, horizon: int) -> int:
    """Mean block length of the stationary bootstrap: max(2 horizon, Politis-White optimum).

    Blocks must be long next to the h - 1 lags over which overlapping h-bar returns are
    correlated, or every resample loses that dependence and intervals come out too narrow;
    Politis & White's data-driven length (arch's ``optimal_block_length``) takes over when
    the series is more persistent than that. ``x`` may be [T] or [T, k] (largest column's
    optimum). Capped at T // 2 so a resample still mixes more than one block on average.
    """
    _check_horizon(horizon, "block_size")
    x = np.asarray(x, dtype=np.float64)
    opt = optimal_block_length(x)["stationary"].to_numpy()
    opt = float(np.max(opt[np.isfinite(opt)])) if np.isfinite(opt).any() else 0.0
    size = max(2 * horizon, math.ceil(opt))
    return int(max(1, min(size, len(x) // 2)))


def annualised_sharpe(x: np.ndarray, bars_per_year: float) -> float | None:
    """mean / std(ddof=1) * sqrt(bars_per_year), as ``metrics.trading_metrics``; None if undefined."""
    x = _finite(x)
    if len(x) < 2:
        return None
    std = float(x.std(ddof=1))
    return float(x.mean()) / std * math.sqrt(bars_per_year) if std > _TINY else None


def bootstrap_ci(
    x: np.ndarray,
    statistic: Callable[[np.ndarray], float | None],
    horizon: int,
    *,
    level: float = 0.9,
    reps: int = 1000,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Two-sided ``level`` percentile interval of ``statistic(x)`` by the stationary bootstrap.

    Politis & Romano's stationary bootstrap (arch's ``StationaryBootstrap``) resamples blocks
    of geometric length with mean ``block_size(x, horizon)``, which keeps the autocorrelation
    of overlapping-return series inside the blocks. The percentile method needs no variance
    formula, so the same code serves the mean Rank IC and ``annualised_sharpe`` (e.g.
    ``lambda r: annualised_sharpe(r, 252)``). Deterministic given ``seed``. NaNs are dropped;
    (None, None) with fewer than ``MIN_OBS`` points or when the statistic is undefined
    (None / NaN) on the sample or on any resample.

    Coverage is below ``level`` for persistent IC series: at block 2h the bootstrap variance
    is ~0.86 of the long-run variance and comes from only ~T / b blocks, so on null panels a
    90 % interval of the mean Rank IC excluded 0 in 11-18 % of cases (nominal 10 %). Use
    ``mean_test``'s p-value, not "the interval excludes 0", as the significance test.
    """
    _check_horizon(horizon, "bootstrap_ci")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_ci: got level={level}, expected a value in (0, 1)")
    x = _finite(x)
    if len(x) < MIN_OBS or _float_or_none(statistic(x)) is None:
        return None, None

    def func(sample: np.ndarray) -> np.ndarray:
        v = statistic(sample)
        return np.array([np.nan if v is None else float(v)])

    bs = StationaryBootstrap(block_size(x, horizon), x, seed=seed)
    lo, hi = bs.conf_int(func, reps=reps, method="percentile", size=level)[:, 0]
    return _float_or_none(lo), _float_or_none(hi)


# ----------------------------------------------------------------------------- multiple models


def spa_test(
    benchmark_loss: np.ndarray,
    model_losses: np.ndarray,
    horizon: int,
    *,
    reps: int = 1000,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """Hansen's (2005) SPA test of H0: no model has a lower expected loss than the benchmark.

    Losses are daily, lower is better; in this project loss = -(daily Rank IC) and the
    benchmark is the best baseline. ``model_losses`` is [T, M]. Dates where the benchmark or
    any model is NaN are dropped. Uses arch's ``SPA`` with the stationary bootstrap and
    ``block_size`` blocks (>= 2 horizon). Returns the p-values ``consistent`` (Hansen's
    recommended one), ``lower`` and ``upper`` (bounds), plus ``n`` and ``block_size``; a small
    p means at least one model beats the benchmark. The p-values are None with fewer than
    ``MIN_OBS`` complete dates.

    Like ``bootstrap_ci`` it is somewhat liberal on persistent IC series: on null panels
    (3 null models against a null benchmark) consistent p < 0.05 came out 7.5-9.5 %.

    Note: arch 8.0.0 uses ``studentize`` only to pick the models that enter the consistent
    p-value; its statistic is the unstudentized max mean loss differential (White's Reality
    Check statistic with Hansen's re-centring), still a valid test.
    """
    _check_horizon(horizon, "spa_test")
    bench = np.asarray(benchmark_loss, dtype=np.float64).ravel()
    models = np.asarray(model_losses, dtype=np.float64)
    if models.ndim == 1:
        models = models[:, None]
    if models.ndim != 2 or models.shape[0] != len(bench):
        raise ValueError(
            f"spa_test: got benchmark_loss [{len(bench)}] and model_losses {list(models.shape)}; "
            f"expected [T] and [T, M]"
        )
    # a model whose losses equal the benchmark's cannot beat it (and has a zero-variance difference)
    models = models[:, [j for j in range(models.shape[1]) if not np.array_equal(models[:, j], bench)]]
    if models.shape[1] == 0:
        return {"consistent": 1.0, "lower": 1.0, "upper": 1.0, "n": len(bench), "block_size": None}
    keep = np.isfinite(bench) & np.isfinite(models).all(axis=1)
    bench, models = bench[keep], models[keep]
    n = len(bench)
    if n < MIN_OBS:
        return {"consistent": None, "lower": None, "upper": None, "n": n, "block_size": None}
    size = block_size(bench[:, None] - models, horizon)
    spa = SPA(bench, models, block_size=size, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    pv = spa.pvalues
    return {
        "consistent": float(pv["consistent"]),
        "lower": float(pv["lower"]),
        "upper": float(pv["upper"]),
        "n": n,
        "block_size": size,
    }


def model_confidence_set(
    losses: pd.DataFrame,
    horizon: int,
    *,
    size: float = 0.10,
    reps: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Hansen, Lunde & Nason (2011) model confidence set p-value of each model (column).

    ``losses`` is [T dates x models], lower is better (loss = -daily Rank IC). Models with
    p-value >= ``size`` form the (1 - size) confidence set: with that probability it contains
    the best model(s). Dates where any model is NaN are dropped (the MCS compares models on
    common dates). Uses arch's ``MCS`` (range statistic, "R" method) with the stationary
    bootstrap and ``block_size`` blocks. Fewer than ``MIN_OBS`` complete dates: {}.
    """
    _check_horizon(horizon, "model_confidence_set")
    if not 0.0 < size < 1.0:
        raise ValueError(f"model_confidence_set: got size={size}, expected a value in (0, 1)")
    frame = losses.astype(np.float64).dropna(how="any")
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    names = list(frame.columns)
    if len(frame) < MIN_OBS:
        return {}
    # Models with identical losses (e.g. an ensemble that fell back to another's scores) have a
    # zero-variance loss difference, which arch cannot studentise: test one of each, and give
    # its twins its p-value.
    twin_of = {}
    for name in names:
        twin_of[name] = next((k for k in twin_of.values() if np.array_equal(frame[k].to_numpy(), frame[name].to_numpy())), name)
    distinct = list(dict.fromkeys(twin_of.values()))
    if len(distinct) == 1:  # a single model is trivially the best one
        return {name: 1.0 for name in names}
    arr = frame[distinct].to_numpy()
    block = block_size(arr - arr.mean(axis=1, keepdims=True), horizon)
    mcs = MCS(frame[distinct], size=size, reps=reps, block_size=block, method="R", seed=seed)
    mcs.compute()
    pv = mcs.pvalues["Pvalue"]
    return {name: float(pv[twin_of[name]]) for name in names}


# ----------------------------------------------------------------------------- deflated Sharpe


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, trial_sharpes_var: float) -> float | None:
    """Bailey & Lopez de Prado (2014) deflated Sharpe ratio of one strategy among ``n_trials``.

    The probability that the true Sharpe ratio exceeds SR0, the Sharpe the best of
    ``n_trials`` skill-less strategies would show by luck:

        DSR = Phi( (SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )
        SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    SR = mean / std(ddof=1) of the T per-period ``returns`` (not annualised), g3 their
    skewness, g4 their (non-excess) kurtosis, V = ``trial_sharpes_var`` the variance of the
    per-period Sharpe ratios across the trials, N = ``n_trials``, gamma the Euler-Mascheroni
    constant. SR0 is an approximation of E[max of N null Sharpes] for large N; for N = 1 the
    expected maximum is E[one null Sharpe] = 0, so SR0 = 0 and DSR is the probabilistic
    Sharpe ratio PSR(0). The formula assumes serially independent returns. NaNs are dropped;
    None with fewer than ``MIN_OBS`` returns, zero std, or a non-positive variance term.
    """
    if n_trials < 1:
        raise ValueError(f"deflated_sharpe_ratio: got n_trials={n_trials}, expected an integer >= 1")
    if not trial_sharpes_var >= 0.0:
        raise ValueError(f"deflated_sharpe_ratio: got trial_sharpes_var={trial_sharpes_var}, expected >= 0")
    r = _finite(returns)
    t = len(r)
    if t < MIN_OBS:
        return None
    std = float(r.std(ddof=1))
    if std <= _TINY:
        return None
    sr = float(r.mean()) / std
    skew = float(stats.skew(r))
    kurt = float(stats.kurtosis(r, fisher=False))
    if n_trials == 1:
        sr0 = 0.0
    else:
        norm = stats.norm
        sr0 = math.sqrt(trial_sharpes_var) * (
            (1.0 - _EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n_trials)
            + _EULER_GAMMA * norm.ppf(1.0 - 1.0 / (n_trials * math.e))
        )
    var_term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if var_term <= 0.0:
        return None
    return _float_or_none(stats.norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(var_term)))
