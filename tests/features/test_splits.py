"""Purge, embargo and the train-only scaler (leakage rules 4 and 5)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trendfactory.features.labels import symbol_ids
from trendfactory.features.splits import apply_scaler, assign_splits, fit_scaler


def make_bars(n=60, symbols=("A", "B")):
    dates = pd.date_range("2020-01-01", periods=n, freq="D")
    return pd.DataFrame({"symbol": np.repeat(symbols, n), "datetime": np.tile(dates, len(symbols))})


def test_purge_and_embargo_counts_and_positions():
    bars = make_bars()
    train_end, val_end = dt.date(2020, 1, 20), dt.date(2020, 2, 9)  # rows 0..19 train, 20..39 val, 40..59 test
    res = assign_splits(bars, symbol_ids(bars), train_end, val_end, horizons=(2, 5), entry_lag=1, embargo=3)
    a = res.assignment[:60]  # symbol A
    # Purge: a train row t is dropped when t + 1 + 5 > 19, i.e. t >= 14 (rows 14..19).
    assert (a[:14] == "train").all() and (a[14:20] == "purged").all()
    # Embargo: the first 3 val rows (20..22) go; val rows t >= 34 cross into test and are purged.
    assert (a[20:23] == "embargoed").all() and (a[23:34] == "val").all() and (a[34:40] == "purged").all()
    # Test: embargo only, nothing purged after the last boundary.
    assert (a[40:43] == "embargoed").all() and (a[43:] == "test").all()
    # Symbol B gets the same treatment: purge/embargo never leak across symbols.
    assert (res.assignment[60:] == a).all()
    r = res.report
    assert r["purged"] == {"train": 12, "val": 12}
    assert r["embargoed"] == {"val": 6, "test": 6}
    assert r["rows"] == {"train": 28, "val": 22, "test": 34}


def test_no_label_span_crosses_a_boundary():
    rng = np.random.default_rng(0)
    bars = make_bars(200, ("A", "B", "C"))
    bars = bars.drop(index=rng.choice(len(bars), 50, replace=False)).reset_index(drop=True)  # ragged calendars
    train_end, val_end = dt.date(2020, 3, 1), dt.date(2020, 5, 1)
    h, lag = 7, 1
    res = assign_splits(bars, symbol_ids(bars), train_end, val_end, (h,), lag, embargo=0)
    sym = bars["symbol"].to_numpy()
    when = bars["datetime"].to_numpy()
    for i in np.flatnonzero(np.isin(res.assignment, ["train", "val"])):
        j = i + lag + h
        if j < len(bars) and sym[j] == sym[i]:
            end = np.datetime64(train_end if res.assignment[i] == "train" else val_end) + np.timedelta64(1, "D")
            assert when[j] < end, f"row {i} label span ends after its split"


def test_scaler_is_fitted_on_train_rows_only():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan], "sig": [1.0, 0.0, -1.0, 0.0]})
    scaler = fit_scaler(train, ["x", "sig"])
    assert scaler["x"]["mean"] == pytest.approx(2.0)
    assert scaler["x"]["std"] == pytest.approx(np.std([1.0, 2.0, 3.0]))
    assert scaler["sig"]["kind"] == "identity"
    # Applying to later data uses the train statistics, not the new data's.
    later = pd.DataFrame({"x": [102.0, 2.0], "sig": [1.0, -1.0]})
    out = apply_scaler(later, scaler, clip=5.0)
    assert out["x"].tolist() == [5.0, 0.0]  # 100/0.816 clipped to 5
    assert out["sig"].tolist() == [1.0, -1.0]
    assert out["x"].dtype == np.float32
