"""Triple-barrier labels and forward returns on hand-checked toy series (leakage rules 2, 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.features.labels import make_labels, symbol_ids, triple_barrier

H, K, SIGMA = 3, 1.0, 0.01
BARRIER = K * SIGMA * np.sqrt(H)  # 0.01732 in log-return units


def run(close, entry_lag=1, sym=None):
    close = np.asarray(close, dtype=float)
    sym = np.zeros(len(close), dtype=np.int64) if sym is None else np.asarray(sym)
    return triple_barrier(close, sym, np.full(len(close), SIGMA), H, entry_lag, K)


def test_up_barrier_touched_first():
    # t=0 decides, enters at bar 1 (100), path 101 (+0.995%), 102 (+1.98% >= 1.73%: up), 90.
    label, ret, score = run([50, 100, 101, 102, 90, 90, 90])
    assert label[0] == 1 and score[0] == 1
    # ret_h is what the trade earns at the vertical barrier, not at the touch
    assert ret[0] == pytest.approx(90 / 100 - 1)


def test_down_barrier_touched_first():
    label, ret, score = run([100, 100, 99.5, 98, 120, 100, 100])
    assert label[0] == -1 and score[0] == -1
    assert ret[0] == pytest.approx(120 / 100 - 1)


def test_no_barrier_gives_flat_and_fractional_score():
    label, ret, score = run([100, 100, 100.5, 99.8, 101, 101, 101])
    assert label[0] == 0
    assert ret[0] == pytest.approx(0.01)
    assert score[0] == pytest.approx(np.log(1.01) / BARRIER)
    assert -1 < score[0] < 1


def test_entry_lag_is_respected():
    # The jump from bar 0 to bar 1 happens before entry (lag 1) and must not count.
    close = [100, 110, 110, 110, 110, 110, 110]
    label, ret, _ = run(close, entry_lag=1)
    assert label[0] == 0 and ret[0] == 0
    # With entry_lag=0 the trade enters at bar 0 and the jump is an up touch.
    label0, ret0, _ = run(close, entry_lag=0)
    assert label0[0] == 1 and ret0[0] == pytest.approx(0.10)


def test_last_rows_and_symbol_boundaries_have_no_label():
    close = np.linspace(100, 110, 10)
    sym = np.array([0] * 6 + [1] * 4)
    label, ret, _ = run(close, sym=sym)
    span = 1 + H
    # symbol 0: rows 0..1 have exit bars inside the symbol (rows 4, 5); later rows would cross
    assert np.isfinite(label[:2]).all() and np.isnan(label[2:6]).all()
    # symbol 1 has 4 bars = span: no row has a full label span
    assert np.isnan(label[6:]).all() and np.isnan(ret[6:]).all()
    assert span == 4


def test_make_labels_sigma_uses_only_past_and_columns():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    bars = pd.DataFrame({"symbol": "A", "datetime": pd.date_range("2020-01-01", periods=300), "close": close})
    out = make_labels(bars, (5, 20), entry_lag=1, k=1.0, vol_span=20)
    assert list(out.columns) == ["label_h5", "ret_h5", "score_h5", "label_h20", "ret_h20", "score_h20"]
    assert str(out["label_h5"].dtype) == "Int8"
    assert set(out["label_h5"].dropna().unique()) <= {-1, 0, 1}
    assert out["score_h20"].dropna().between(-1, 1).all()
    # Changing a future close changes labels but never sigma-based labels of rows whose span ends before it.
    bumped = bars.copy()
    bumped.loc[250, "close"] *= 1.5
    out2 = make_labels(bumped, (5,), entry_lag=1, k=1.0, vol_span=20)
    pd.testing.assert_series_equal(out["label_h5"].iloc[: 250 - 6], out2["label_h5"].iloc[: 250 - 6])
    # ret_h5 of row t is close[t+6]/close[t+1]-1 exactly
    t = 100
    assert out["ret_h5"].iloc[t] == pytest.approx(close[t + 6] / close[t + 1] - 1)


def test_symbol_ids():
    bars = pd.DataFrame({"symbol": ["a", "a", "b", "b", "b", "c"]})
    assert symbol_ids(bars).tolist() == [0, 0, 1, 1, 1, 2]
