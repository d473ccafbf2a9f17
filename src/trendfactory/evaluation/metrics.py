"""Metrics for -1/0/+1 trend predictions: classification, signal quality (IC), a long/short book.

Definitions are fixed so numbers compare across models and with qlib (docs/evaluation.md, "Metrics"):

- classification over the labels (-1, 0, +1): accuracy, balanced accuracy, macro and per-class
  F1, log loss, confusion matrix;
- IC / Rank IC: mean over dates of the cross-sectional Pearson / Spearman correlation between
  ``score`` and the realised forward return ``ret``; ICIR = mean / std of the daily IC (not
  annualised); the t-statistic and p-value of the mean are the calibrated HAR ones
  (``significance.mean_test``), the Newey-West t is kept beside them under its own name;
- trading: a dollar-neutral long/short book, each day's signal held h bars in 1/h tranches,
  costs per unit of turnover; Sharpe, annual return and max drawdown in qlib's additive mode.

Every function is pure (numpy / pandas in, numbers out). Undefined values are ``None``, never
NaN, because the metric dicts are written to JSON.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, log_loss

from trendfactory.evaluation.ic import daily_ic  # noqa: F401 - the metric's one definition, re-exported
from trendfactory.evaluation.significance import TINY, annualised_sharpe, mean_test

LABELS = (-1, 0, 1)  # class order everywhere: (down, flat, up), as the proba columns
BOOK_COLUMNS = ("gross", "cost", "net", "turnover", "bench", "exposure")
_PROBA_EPS = 1e-15  # floor for probabilities: a confident miss costs -log(1e-15) ~ 34.5, not inf

Metrics = dict[str, float | int | None]


# ----------------------------------------------------------------------------- classification


def _as_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name}: got shape {y.shape}, expected a 1-d array of labels")
    bad = ~np.isin(y, LABELS)
    if bad.any():
        raise ValueError(f"{name}: got label {y[bad][0].item()!r}, expected one of {list(LABELS)}")
    return y.astype(np.int64)


def classification_metrics(y_true, pred, proba) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro / per-class F1 and log loss of [n] labels, [n, 3] proba."""
    y_true = _as_labels(y_true, "y_true")
    pred = _as_labels(pred, "pred")
    proba = np.asarray(proba, dtype=np.float64)
    n = len(y_true)
    if n == 0:
        raise ValueError("classification_metrics: got 0 rows, expected at least 1")
    if len(pred) != n or proba.shape != (n, 3):
        raise ValueError(f"classification_metrics: got y_true [{n}], pred [{len(pred)}], proba {list(proba.shape)}; expected [n], [n], [n, 3] with proba columns (down, flat, up)")
    labels = list(LABELS)
    # All three labels always: a class the model never predicts scores F1 = 0, it is not skipped.
    f1 = f1_score(y_true, pred, labels=labels, average=None, zero_division=0)
    with warnings.catch_warnings():
        # Mean recall over the classes present in y_true (sklearn's definition): a predicted class
        # with no true rows has no recall, and sklearn warns that it leaves it out.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = balanced_accuracy_score(y_true, pred)
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(f1.mean()),
        "f1_down": float(f1[0]),
        "f1_flat": float(f1[1]),
        "f1_up": float(f1[2]),
        "log_loss": float(log_loss(y_true, np.clip(proba, _PROBA_EPS, 1.0), labels=labels)),
        "n": n,
    }


def confusion(y_true, pred) -> np.ndarray:
    """3x3 counts, rows true and columns predicted, both in the order (-1, 0, +1)."""
    return confusion_matrix(_as_labels(y_true, "y_true"), _as_labels(pred, "pred"), labels=list(LABELS))


# ----------------------------------------------------------------------------- signal quality


def _finite_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _newey_west_std(x: np.ndarray, lags: int) -> float:
    """Long-run std of x: Bartlett-weighted autocovariances up to ``lags``.

    Divided by n - 1 (not n) so that lags = 0 gives the sample std (ddof=1) exactly, and the
    Newey-West t-statistic at horizon 1 equals the plain one.
    """
    n = len(x)
    e = x - x.mean()
    lrv = float(e @ e)
    for lag in range(1, min(lags, n - 1) + 1):
        lrv += 2.0 * (1.0 - lag / (lags + 1)) * float(e[lag:] @ e[:-lag])
    return math.sqrt(max(lrv, 0.0) / (n - 1))


def _mean_and_ir(x: np.ndarray) -> tuple[float | None, float | None]:
    """(mean, mean / std) of a daily series; None where undefined."""
    if len(x) == 0:
        return None, None
    mean = float(x.mean())
    if len(x) < 2:
        return mean, None
    std = float(x.std(ddof=1))
    return mean, (mean / std if std > TINY else None)


def ic_metrics(frame: pd.DataFrame, horizon: int) -> Metrics:
    """IC and Rank IC: mean, ICIR, calibrated HAR t and p (``<key>_t``, ``<key>_p``), the
    Newey-West t (``<key>_t_newey_west``, horizon - 1 Bartlett lags), and ic_dates.

    Daily ICs of h-bar forward returns overlap by h - 1 bars and model scores persist, so a
    plain t (ICIR * sqrt(dates)) overstates significance badly and the Newey-West one still
    rejects a true null 8-12 % of the time at 5 %; the HAR t (``significance.mean_test``) is
    the one every page and metrics file heads with. The Newey-West t stays for comparison
    with other tools that report it.
    """
    if horizon < 1:
        raise ValueError(f"ic_metrics: got horizon={horizon}, expected an integer >= 1")
    out: Metrics = {}
    n_dates = 0
    for key, method in (("ic", "pearson"), ("rank_ic", "spearman")):
        series = daily_ic(frame, method).to_numpy()
        n_dates = len(series)  # the same dates for both: ranks are constant iff values are
        mean, ir = _mean_and_ir(series)
        har = mean_test(series, horizon)
        lr_std = _newey_west_std(series, horizon - 1) if len(series) >= 2 else 0.0
        out[key] = mean
        out[f"{key}ir"] = ir
        out[f"{key}_t"] = har.t
        out[f"{key}_p"] = har.p
        out[f"{key}_t_newey_west"] = _finite_or_none(mean / lr_std * math.sqrt(len(series))) if lr_std > TINY else None
    out["ic_dates"] = n_dates
    return out


# ----------------------------------------------------------------------------- trading


def next_bar_returns(bars: pd.DataFrame) -> pd.DataFrame:
    """Wide [datetime x symbol] simple return from each bar's close to the symbol's next close.

    NaN on each symbol's last bar and on dates where a symbol has no bar. The index is the
    union of all bar dates (the trading calendar), sorted.
    """
    sym = bars["symbol"]
    if (bars["datetime"].groupby(sym, sort=False).diff() <= pd.Timedelta(0)).any():
        raise ValueError("next_bar_returns: bars are not sorted by symbol, datetime; sort them first")
    close = bars["close"].astype(np.float64)
    ret = close.groupby(sym, sort=False).shift(-1) / close - 1.0
    long = pd.DataFrame({"datetime": bars["datetime"], "symbol": sym, "ret": ret})
    wide = long.pivot(index="datetime", columns="symbol", values="ret").sort_index()
    wide.index.name = "datetime"
    return wide


def _daily_weights(preds: pd.DataFrame) -> pd.Series:
    """w_i = (s_i - mean s) / sum |s_j - mean s| within each date; 0 when a date's scores are equal."""
    g = preds.groupby("datetime")["score"]
    dev = preds["score"] - g.transform("mean")
    gross = dev.abs().groupby(preds["datetime"]).transform("sum")
    # Tested on the values: the deviations of equal scores are float noise, not exact zeros.
    flat = g.transform("max") == g.transform("min")
    return (dev / gross.where(~flat, 1.0)).where(~flat, 0.0)


def long_short_book(frame: pd.DataFrame, next_returns: pd.DataFrame, horizon: int, entry_lag: int, cost_bps: float) -> pd.DataFrame:
    """Daily gross / cost / net return, turnover, benchmark and exposure of the tranche book.

    The position over bar t -> t+1 is pos_t = (1/h) * sum_{k=entry_lag}^{entry_lag+h-1} w_{t-k}
    (dates on the next_returns calendar): the trade decided at d enters at the close of
    d + entry_lag and exits h bars later, as the labels do. Rows run from the first prediction
    date through the last bar the last tranche is held (or the calendar end).
    """
    # Long on purpose: the book's steps (ranks, weights, entry lag, costs) work on the same frames in one pass.
    if horizon < 1 or entry_lag < 0 or cost_bps < 0:
        raise ValueError(f"long_short_book: got horizon={horizon}, entry_lag={entry_lag}, cost_bps={cost_bps}; expected horizon >= 1, entry_lag >= 0, cost_bps >= 0")
    calendar = next_returns.index
    if not (calendar.is_unique and calendar.is_monotonic_increasing):
        raise ValueError("long_short_book: next_returns index must be sorted, unique trading dates")
    preds = frame.loc[np.isfinite(frame["score"].to_numpy(dtype=np.float64)), ["datetime", "symbol", "score"]]
    if preds.duplicated(["datetime", "symbol"]).any():
        raise ValueError("long_short_book: frame has duplicate (symbol, datetime) rows; keep one score each")
    if preds.empty:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in BOOK_COLUMNS}).rename_axis("datetime")

    wide = preds.assign(w=_daily_weights(preds)).pivot(index="datetime", columns="symbol", values="w")
    missing = wide.index.difference(calendar)
    if len(missing):
        raise ValueError(f"long_short_book: {len(missing)} prediction dates are missing from next_returns' index (first {missing[0]}); build next_returns from bars covering the prediction dates")
    # Symbols scored but absent from next_returns keep their weights (so the book stays
    # dollar-neutral) and earn nothing, as any unknown return does.
    known = set(next_returns.columns)
    symbols = list(next_returns.columns) + [s for s in wide.columns if s not in known]
    w = wide.reindex(index=calendar, columns=symbols).fillna(0.0).to_numpy()  # [T, S]
    r = next_returns.reindex(columns=symbols).to_numpy(dtype=np.float64)  # [T, S]
    finite = np.isfinite(r)
    r0 = np.where(finite, r, 0.0)

    # Sum of h shifted weight matrices (a rolling sum, without a rolling sum's float residue
    # that would leave tiny positions and turnover after the last tranche exits).
    n_dates = len(calendar)
    pos = np.zeros_like(w)
    for k in range(entry_lag, min(entry_lag + horizon, n_dates)):
        pos[k:] += w[: n_dates - k]
    pos /= horizon

    gross = (pos * r0).sum(axis=1)
    turnover = np.abs(np.diff(pos, axis=0, prepend=np.zeros((1, pos.shape[1])))).sum(axis=1)
    cost = turnover * (cost_bps / 1e4)
    count = finite.sum(axis=1)
    bench = np.divide(r0.sum(axis=1), count, out=np.full(n_dates, np.nan), where=count > 0)
    book = pd.DataFrame(
        {
            "gross": gross,
            "cost": cost,
            "net": gross - cost,
            "turnover": turnover,
            "bench": bench,
            "exposure": np.abs(pos).sum(axis=1),
        },
        index=calendar,
    )
    book.index.name = "datetime"
    first = calendar.get_loc(wide.index.min())
    last = min(calendar.get_loc(wide.index.max()) + entry_lag + horizon - 1, n_dates - 1)
    return book.iloc[first : last + 1]


def _sharpe_and_annual(x: np.ndarray, bars_per_year: float) -> tuple[float | None, float | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None, None
    return annualised_sharpe(x, bars_per_year), float(x.mean()) * bars_per_year


def trading_metrics(book: pd.DataFrame, bars_per_year: float) -> Metrics:
    """qlib's additive risk analysis of ``book["net"]``, plus win rate, turnover and the benchmark."""
    net = book["net"].to_numpy(dtype=np.float64)
    sharpe, annual = _sharpe_and_annual(net, bars_per_year)
    bench_sharpe, bench_annual = _sharpe_and_annual(book["bench"].to_numpy(dtype=np.float64), bars_per_year)
    held = book["exposure"].to_numpy() > 0
    if len(net):
        cum = np.cumsum(net)
        max_drawdown = float((cum - np.maximum.accumulate(cum)).min())
    else:
        max_drawdown = None
    return {
        "sharpe": sharpe,
        "annual_return": annual,
        "max_drawdown": max_drawdown,
        "win_rate": float((net[held] > 0).mean()) if held.any() else None,
        "turnover": float(book["turnover"].mean()) if len(book) else None,
        "days": len(book),
        "bench_sharpe": bench_sharpe,
        "bench_annual_return": bench_annual,
    }
