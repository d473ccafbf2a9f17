"""Purge, embargo and the train-only scaler (leakage rules 4 and 5)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trendfactory.features.labels import symbol_ids
from trendfactory.features.splits import apply_scaler, assign_roles, fit_scaler, plan_folds
from trendfactory.params import SplitConfig


def make_bars(n=60, symbols=("A", "B")):
    dates = pd.date_range("2020-01-01", periods=n, freq="D")
    return pd.DataFrame({"symbol": np.repeat(symbols, n), "datetime": np.tile(dates, len(symbols))})


def fixed_split(bars, train_end, val_end, horizons, entry_lag, embargo):
    """The fixed scheme's roles as featurize assigns them: its one fold (plan_folds), then assign_roles."""
    split = SplitConfig(scheme="fixed", train_end=str(train_end), val_end=str(val_end), embargo=embargo)
    (fold,) = plan_folds(split, bars["datetime"].min(), bars["datetime"].max())
    return assign_roles(bars, symbol_ids(bars), fold, horizons, entry_lag, split.embargo)


def test_purge_and_embargo_counts_and_positions():
    bars = make_bars()
    train_end, val_end = dt.date(2020, 1, 20), dt.date(2020, 2, 9)  # rows 0..19 train, 20..39 val, 40..59 test
    res = fixed_split(bars, train_end, val_end, horizons=(2, 5), entry_lag=1, embargo=3)
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
    res = fixed_split(bars, train_end, val_end, (h,), lag, embargo=0)
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


# ---- walk-forward: every fold obeys the rules at each of its own boundaries ----------------


def _walk_forward(**split):
    from trendfactory.data.ingest import run_ingest
    from trendfactory.features.build import build_features
    from trendfactory.params import parse_params

    params = parse_params(
        {
            "data": {"source": "synthetic", "start": None, "end": None, "synthetic": {"n_symbols": 4, "n_bars": 1400, "start": "2000-01-03", "signal_strength": 0.3}},
            "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
            "label": {"horizons": [3, 10]},
            "split": {"scheme": "walk_forward", "test_start": "2002-07-01", "fold": 1, "val_years": 1, "embargo": 4, **split},
        }
    )
    raw = run_ingest(params.data, params.seed)
    return raw.bars, build_features(raw.bars, raw.context, params), params


@pytest.mark.parametrize("train_years", [None, 1])
def test_every_fold_keeps_label_spans_inside_their_blocks(train_years):
    from trendfactory.features.splits import fold_name

    bars, result, params = _walk_forward(train_years=train_years)
    frame = result.frame
    assert len(result.folds) == 3  # test blocks from 2002-07, one a year, to the end (2005-05)
    sym = frame["symbol"].to_numpy()
    when = frame["datetime"].to_numpy()
    span = params.label.entry_lag + max(params.label.horizons)
    for k, f in enumerate(result.folds):
        roles = frame[fold_name(k)].to_numpy()
        val_start, test_start = np.datetime64(f["val_start"]), np.datetime64(f["test_start"])
        train_rows, val_rows, test_rows = (np.flatnonzero(roles == c) for c in (1, 2, 3))
        assert train_rows.size and val_rows.size and test_rows.size
        # blocks are where the fold says, in time order, with a rolling start when asked
        assert when[train_rows].max() < val_start <= when[val_rows].min()
        assert when[val_rows].max() < test_start <= when[test_rows].min()
        if f["test_end"]:
            assert when[test_rows].max() < np.datetime64(f["test_end"])
        if train_years:
            assert when[train_rows].min() >= np.datetime64(f["train_start"])
        # purge: no train/val label span reaches the next block, so none reaches the test block
        for rows, end in ((train_rows, val_start), (val_rows, test_start)):
            exit_row = rows + span
            inside = exit_row < len(frame)
            same = np.zeros_like(inside)
            same[inside] = sym[exit_row[inside]] == sym[rows[inside]]
            assert (when[exit_row[inside & same]] < end).all(), f"fold {k}: a label span crosses into the next block"
        # embargo: the first `embargo` bars of each symbol's val and test blocks are dropped
        for block_start, rows in ((val_start, val_rows), (test_start, test_rows)):
            for s in np.unique(sym):
                in_block = np.flatnonzero((sym == s) & (when >= block_start))
                first_kept = rows[sym[rows] == s].min()
                assert first_kept >= in_block[params.split.embargo]


def test_every_fold_scaler_is_fitted_on_its_own_train_rows_only():
    from trendfactory.features.splits import fold_name

    _, result, _ = _walk_forward()
    frame = result.frame
    for k, f in enumerate(result.folds):
        train = frame[frame[fold_name(k)] == 1]
        for col in ("stk_ret_5", "stk_vol_20", "ctx_ew_ret_5"):
            v = train[col].to_numpy(np.float64)
            assert f["scaler"][col]["mean"] == pytest.approx(np.nanmean(v), rel=1e-6)
            assert f["scaler"][col]["std"] == pytest.approx(np.nanstd(v), rel=1e-6)
    # later folds train on more rows, so their scalers differ: each fold fits its own
    assert result.folds[0]["scaler"]["stk_vol_20"] != result.folds[-1]["scaler"]["stk_vol_20"]


def test_fold_views_scale_with_their_own_scaler_and_keep_their_role(tmp_path):
    from trendfactory.features.splits import fold_name
    from trendfactory.io import write_parquet
    from trendfactory.windows.reader import WindowSplit
    from trendfactory.windows.store import build_split

    _, result, params = _walk_forward()
    write_parquet(result.frame, tmp_path / "features.parquet")
    build_split(tmp_path / "features.parquet", tmp_path / "w", result.schema["feature_columns"], result.schema["horizons"], 8, folds=result.folds)
    raw = WindowSplit.open(tmp_path / "w")
    for k, f in enumerate(result.folds):
        roles = result.frame[fold_name(k)].to_numpy()
        for role, code in (("train", 1), ("val", 2), ("test", 3)):
            view = WindowSplit.open(tmp_path / "w", k, role)
            assert (roles[view.index(3)] == code).all() and view.index(3).size > 0
        view = WindowSplit.open(tmp_path / "w", k, "test")
        j = view.feature_names.index("stk_vol_20")
        p = f["scaler"]["stk_vol_20"]
        expect = np.clip((raw.features[:, j].astype(np.float64) - p["mean"]) / p["std"], -params.features.clip, params.features.clip)
        np.testing.assert_allclose(view.features[:, j], expect, rtol=1e-5, atol=1e-5, equal_nan=True)
