"""Calibration and power of the verdict's tests on simulated null panels (issue 21).

Null panel: 20 symbols x 3,000 days. Daily returns iid N(0, 1); ret_h at day t = sum of the
daily returns t+2 .. t+1+h (entry lag 1), as the labels; each model's score is a
unit-variance AR(1) per symbol with coefficient rho (stationary start), independent of the
returns; daily Rank IC = cross-sectional Spearman of score and ret_h. The long/short book of
model 0 is metrics.long_short_book's tranche book without costs: weights
(s - mean s) / sum |s - mean s| per date, position over bar t -> t+1 = mean of the weights
decided at t-1 .. t-h, gross return = position . next bar's returns (true Sharpe exactly 0).

Per (h, rho) cell it measures, on --panels panels:

- ``mean_test`` p < 0.05 (two-sided) on model 0's Rank IC;
- ``mean_ci`` 90 % interval of the mean Rank IC excluding 0;
- ``sharpe_ci`` 90 % interval of the book's annualised Sharpe excluding 0;
- ``spa_test`` consistent p < 0.05: 3 null models against a null benchmark (model 3);

and, on the first --ref-panels of them, the methods these replaced: ``bootstrap_ci``
(stationary-bootstrap percentile, ``block_size`` blocks) for both intervals and arch's
bootstrap SPA with ``block_size`` blocks. Then the power check of ``detectable_mean``: the
stated 80 %-power size m* of a cell is the mean of detectable_mean over its null panels; it
is planted (a) directly in the Rank IC series of fresh null panels (IC + m*) and (b) in the
scores of fresh panels (score = AR(1) noise + c ret_h / sqrt(h), c set so that the expected
Spearman is m*), and mean_test's rejection rate is reported. Monte-Carlo standard errors
are binomial, sqrt(p (1 - p) / panels).

Run single-threaded: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_calibration.py
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from arch.bootstrap import SPA
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared null-panel simulator in tests/

from tests.null_panels import ar1, book_returns, forward_returns, ranks, spearman_rows  # noqa: E402
from trendfactory.evaluation.significance import (  # noqa: E402
    annualised_sharpe,
    block_size,
    bootstrap_ci,
    detectable_mean,
    ewc_dof,
    mean_ci,
    mean_test,
    sharpe_ci,
    spa_test,
)

N_SYMBOLS, N_DAYS = 20, 3000
HORIZONS = (5, 20)
RHOS = (0.0, 0.9, 0.98)
BARS_PER_YEAR = 252.0
LEVEL = 0.9

# ----------------------------------------------------------------------------- simulator


def simulate_panel(rng: np.random.Generator, h: int, rho: float, n_models: int, signal: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """([n_models, T - 1 - h] daily Rank ICs, [T - 1 - h] book returns of model 0).

    Model 0's score gets ``signal * ret_h / sqrt(h)`` added (0: a null panel)."""
    eps = rng.standard_normal((n_models, N_DAYS, N_SYMBOLS))
    daily = rng.standard_normal((N_DAYS, N_SYMBOLS))
    fwd = forward_returns(daily, h)
    n_dates = N_DAYS - 1 - h
    score = ar1(eps, rho)
    if signal:
        score[0, :n_dates] += signal * fwd / math.sqrt(h)
    ic = spearman_rows(ranks(score[:, :n_dates]), ranks(fwd)[None])
    return ic, book_returns(score[0], daily, h)


def signal_for_mean_ic(target: float, n: int = N_SYMBOLS) -> float:
    """c such that score = N(0, 1) + c z (z ~ N(0, 1) cross-sectionally) has expected sample
    Spearman ``target`` with z: Moran's (1948) E[r_s] = 6 / (pi (n + 1)) (asin r + (n - 2)
    asin(r / 2)) for a bivariate normal with correlation r = c / sqrt(1 + c^2)."""
    r = optimize.brentq(lambda r: 6.0 / (math.pi * (n + 1)) * (math.asin(r) + (n - 2) * math.asin(r / 2.0)) - target, 0.0, 0.99)
    return r / math.sqrt(1.0 - r * r)


# ----------------------------------------------------------------------------- measurements


def _excludes_zero(ci: tuple[float | None, float | None]) -> bool:
    lo, hi = ci
    return lo is not None and hi is not None and (lo > 0.0 or hi < 0.0)


def _old_spa_p(bench: np.ndarray, models: np.ndarray, h: int, reps: int, seed: int) -> float:
    """spa_test before issue 21: arch's stationary-bootstrap SPA with block_size blocks."""
    size = block_size(bench[:, None] - models, h)
    spa = SPA(bench, models, block_size=size, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    return float(spa.pvalues["consistent"])


def _rate(flags: list[bool]) -> str:
    """'rate ± binomial standard error' in %."""
    if not flags:
        return "n/a"
    p = float(np.mean(flags))
    return f"{100 * p:.1f} ± {100 * math.sqrt(p * (1 - p) / len(flags)):.1f}"


def calibration_cell(h: int, rho: float, panels: int, ref_panels: int, reps: int, seed: int) -> dict[str, list]:
    """Per null panel of one (h, rho) cell: each tool's false positive, and detectable_mean."""
    rng = np.random.default_rng([seed, h, round(rho * 1000), 0])

    def sharpe(r: np.ndarray) -> float | None:  # as evaluation.compare passed it to bootstrap_ci
        return annualised_sharpe(r, BARS_PER_YEAR)

    keys = ("mean_test", "mean_ci", "sharpe_ci", "spa", "mde", "old_mean", "old_sharpe", "old_spa")
    out: dict[str, list] = {k: [] for k in keys}
    for i in range(panels):
        ic, net = simulate_panel(rng, h, rho, n_models=4)
        x = ic[0]
        out["mean_test"].append(mean_test(x, h).p < 0.05)
        out["mean_ci"].append(_excludes_zero(mean_ci(x, h, level=LEVEL)))
        out["sharpe_ci"].append(_excludes_zero(sharpe_ci(net, h, BARS_PER_YEAR, level=LEVEL)))
        # loss = -Rank IC; benchmark model 3, models 0-2: every model at the boundary of H0
        out["spa"].append(spa_test(-ic[3], -ic[:3].T, h, reps=reps, seed=i)["consistent"] < 0.05)
        out["mde"].append(detectable_mean(x, h))
        if i < ref_panels:
            out["old_mean"].append(_excludes_zero(bootstrap_ci(x, np.mean, h, level=LEVEL, reps=reps, seed=i)))
            out["old_sharpe"].append(_excludes_zero(bootstrap_ci(net, sharpe, h, level=LEVEL, reps=reps, seed=i)))
            out["old_spa"].append(_old_spa_p(-ic[3], -ic[:3].T, h, reps, i) < 0.05)
    return out


def power_cell(h: int, rho: float, stated: float, panels: int, seed: int) -> dict:
    """mean_test's rejections with ``stated`` planted in the IC series and in the scores."""
    rng = np.random.default_rng([seed, h, round(rho * 1000), 1])
    direct, planted, realised = [], [], []
    c = signal_for_mean_ic(stated)
    for _ in range(panels):
        ic, _ = simulate_panel(rng, h, rho, n_models=1)
        direct.append(mean_test(ic[0] + stated, h).p < 0.05)
        ic, _ = simulate_panel(rng, h, rho, n_models=1, signal=c)
        planted.append(mean_test(ic[0], h).p < 0.05)
        realised.append(float(ic[0].mean()))
    return {"direct": direct, "planted": planted, "realised": float(np.mean(realised)), "realised_se": float(np.std(realised, ddof=1) / math.sqrt(panels)), "c": c}


def main() -> None:
    """Print the calibration table and the power check (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=2000, help="null panels per (h, rho) cell")
    parser.add_argument("--ref-panels", type=int, default=250, help="of those, panels for the replaced bootstrap methods")
    parser.add_argument("--power-panels", type=int, default=1000, help="panels per cell and planting for the power check")
    parser.add_argument("--reps", type=int, default=1000, help="SPA Monte Carlo draws / bootstrap resamples")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()

    t0 = time.perf_counter()
    print(f"{N_SYMBOLS} symbols x {N_DAYS} days; {args.panels} null panels per cell ({args.ref_panels} for the replaced bootstrap methods), reps {args.reps}, seed {args.seed}\n")
    print("False-positive rates, % of null panels ± MC standard error (targets: 5 % for the tests, 10 % for the 90 % intervals)\n")
    print("| h | rho | B | mean_test p<0.05 | mean_ci excl. 0 | sharpe_ci excl. 0 | spa_test p<0.05 | old bootstrap_ci mean | old bootstrap_ci Sharpe | old arch SPA | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    stated: dict[tuple[int, float], np.ndarray] = {}
    for h in HORIZONS:
        for rho in RHOS:
            t = time.perf_counter()
            r = calibration_cell(h, rho, args.panels, args.ref_panels, args.reps, args.seed)
            stated[(h, rho)] = np.array(r["mde"], dtype=np.float64)
            print(
                f"| {h} | {rho} | {ewc_dof(N_DAYS - 1 - h, h)} | {_rate(r['mean_test'])} | {_rate(r['mean_ci'])} "
                f"| {_rate(r['sharpe_ci'])} | {_rate(r['spa'])} | {_rate(r['old_mean'])} | {_rate(r['old_sharpe'])} "
                f"| {_rate(r['old_spa'])} | {time.perf_counter() - t:.0f} |",
                flush=True,
            )

    print(
        f"\nPower check of detectable_mean (alpha 0.05 two-sided, power 0.80): {args.power_panels} fresh panels per cell "
        "and planting; m* = mean of detectable_mean over the cell's null panels; target 80 %\n"
    )
    print("| h | rho | m* | detectable_mean 5-95 % over panels | planted in IC: power | planted in scores: c | realised mean IC | power | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h in HORIZONS:
        for rho in RHOS:
            t = time.perf_counter()
            mde = stated[(h, rho)]
            m = float(mde.mean())
            lo, hi = np.quantile(mde, [0.05, 0.95])
            r = power_cell(h, rho, m, args.power_panels, args.seed)
            print(
                f"| {h} | {rho} | {m:.4f} | {lo:.4f}-{hi:.4f} | {_rate(r['direct'])} | {r['c']:.4f} "
                f"| {r['realised']:.4f} ± {r['realised_se']:.4f} | {_rate(r['planted'])} | {time.perf_counter() - t:.0f} |",
                flush=True,
            )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
