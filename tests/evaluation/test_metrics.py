"""Evaluation metrics: classification vs sklearn, IC vs scipy / hand values, the tranche book by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss

from trendfactory.evaluation.metrics import (
    classification_metrics,
    confusion,
    daily_ic,
    ic_metrics,
    long_short_book,
    next_bar_returns,
    trading_metrics,
)
from trendfactory.evaluation.significance import mean_test

# ----------------------------------------------------------------------------- classification


def test_classification_hand_case():
    y_true = [-1, 0, 1, 1]
    pred = [-1, 1, 1, 1]  # "flat" never predicted
    proba = [[0.8, 0.1, 0.1], [0.0, 0.0, 1.0], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6]]
    m = classification_metrics(y_true, pred, proba)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1_down"] == pytest.approx(1.0)
    assert m["f1_flat"] == 0.0  # counted as a label with F1 0, not skipped
    assert m["f1_up"] == pytest.approx(0.8)  # precision 2/3, recall 1
    assert m["macro_f1"] == pytest.approx(0.6)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)  # recalls 1, 0, 1
    # A zero probability on the true class is clipped to 1e-15: large but finite.
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 1e-15, 0.7, 0.6])))
    assert m["n"] == 4 and isinstance(m["n"], int)
    np.testing.assert_array_equal(confusion(y_true, pred), [[1, 0, 0], [0, 0, 1], [0, 0, 2]])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("missing", [None, 0, -1])
def test_classification_matches_sklearn(seed, missing):
    rng = np.random.default_rng(seed)
    n = 200
    y_true = rng.integers(-1, 2, n)
    proba = rng.dirichlet([1.0, 1.0, 1.0], n)
    pred = np.array([-1, 0, 1])[proba.argmax(axis=1)]
    if missing is not None:  # a class the model never predicts
        pred[pred == missing] = 1
    m = classification_metrics(y_true, pred, proba)
    labels = [-1, 0, 1]
    per_class = f1_score(y_true, pred, labels=labels, average=None, zero_division=0)
    assert m["accuracy"] == pytest.approx(np.mean(y_true == pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0))
    assert [m["f1_down"], m["f1_flat"], m["f1_up"]] == pytest.approx(list(per_class))
    assert m["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=labels))
    cm = confusion(y_true, pred)
    assert cm.shape == (3, 3) and cm.sum() == n
    assert cm[0, 2] == np.sum((y_true == -1) & (pred == 1))  # rows true, columns pred
    if missing is not None:
        assert cm[:, missing + 1].sum() == 0


def test_balanced_accuracy_ignores_class_absent_from_truth():
    # No true "down" rows: balanced accuracy is the mean recall of flat and up only.
    m = classification_metrics([0, 0, 1, 1], [-1, 0, 1, 1], np.full((4, 3), 1 / 3))
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["log_loss"] == pytest.approx(math.log(3))


def test_macro_f1_counts_all_three_labels():
    # "down" is absent from both truth and predictions: it still counts, with F1 0.
    m = classification_metrics([0, 1, 1], [0, 1, 0], np.full((3, 3), 1 / 3))
    assert m["f1_flat"] == pytest.approx(2 / 3) and m["f1_up"] == pytest.approx(2 / 3)
    assert m["f1_down"] == 0.0
    assert m["macro_f1"] == pytest.approx(4 / 9)


@pytest.mark.parametrize(
    ("y_true", "pred", "proba", "match"),
    [
        ([0, 2], [0, 1], np.full((2, 3), 1 / 3), "y_true: got label 2"),
        ([0, 1], [0, 1, 1], np.full((2, 3), 1 / 3), r"pred \[3\]"),
        ([0, 1], [0, 1], np.full((2, 2), 1 / 2), r"proba \[2, 2\]"),
        ([], [], np.zeros((0, 3)), "0 rows"),
    ],
)
def test_classification_bad_input(y_true, pred, proba, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y_true, pred, proba)


# ----------------------------------------------------------------------------- IC


def _ic_frame(rows: dict[str, tuple[list[float], list[float]]]) -> pd.DataFrame:
    parts = []
    for date, (score, ret) in rows.items():
        parts.append(pd.DataFrame({"datetime": pd.Timestamp(date), "symbol": [f"s{i}" for i in range(len(score))], "score": score, "ret": ret}))
    return pd.concat(parts, ignore_index=True)


TOY = {
    "2024-01-02": ([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.4]),
    "2024-01-03": ([1, 1, 2, 3], [0.5, 0.1, 0.2, 0.9]),  # tied scores
    "2024-01-04": ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4]),  # constant score: dropped
    "2024-01-05": ([1, 2, 3, 4], [0.2, 0.2, 0.2, 0.2]),  # constant return: dropped
    "2024-01-08": ([1, 2, np.nan, 4], [0.1, np.nan, 0.3, np.inf]),  # one finite pair: dropped
}


def test_daily_ic_toy_pearson_and_spearman():
    frame = _ic_frame(TOY).sample(frac=1.0, random_state=0)  # row order must not matter
    kept = pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="datetime")
    ic = daily_ic(frame, "pearson")
    rank_ic = daily_ic(frame, "spearman")
    pd.testing.assert_index_equal(ic.index, kept)
    pd.testing.assert_index_equal(rank_ic.index, kept)
    # Day 1 by hand: centred x (-1.5, -.5, .5, 1.5), y (-.15, .05, -.05, .15): .4 / sqrt(5 * .05).
    assert ic.iloc[0] == pytest.approx(0.8)
    assert rank_ic.iloc[0] == pytest.approx(0.8)
    x, y = TOY["2024-01-03"]
    assert ic.iloc[1] == pytest.approx(stats.pearsonr(x, y)[0])
    assert rank_ic.iloc[1] == pytest.approx(stats.spearmanr(x, y)[0])
    assert rank_ic.iloc[1] != pytest.approx(ic.iloc[1])


def test_daily_ic_random_vs_scipy(rng):
    dates = pd.bdate_range("2024-01-01", periods=8)
    frame = pd.DataFrame({"datetime": np.repeat(dates, 12), "symbol": np.tile(np.arange(12), 8), "score": rng.integers(0, 5, 96) * 1.0})
    frame["ret"] = 0.01 * frame["score"] + rng.normal(0, 0.02, 96)
    for method, ref in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        got = daily_ic(frame, method)
        want = [ref(g["score"], g["ret"])[0] for _, g in frame.groupby("datetime")]
        np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-10)


def _autocorrelated_ic_frame(rng, n_dates: int, n_symbols: int = 30, phi: float = 0.95) -> pd.DataFrame:
    """Cross-sections whose signal strength follows an AR(1), so the daily IC is autocorrelated."""
    strength = np.zeros(n_dates)
    for t in range(1, n_dates):
        strength[t] = phi * strength[t - 1] + rng.normal(0, 0.3)
    strength += 0.1
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    score = rng.normal(size=(n_dates, n_symbols))
    ret = strength[:, None] * score + rng.normal(size=(n_dates, n_symbols))
    return pd.DataFrame(
        {
            "datetime": np.repeat(dates, n_symbols),
            "symbol": np.tile(np.arange(n_symbols), n_dates),
            "score": score.ravel(),
            "ret": ret.ravel(),
        }
    )


def test_ic_metrics_formulas(rng):
    frame = _autocorrelated_ic_frame(rng, 60)
    m = ic_metrics(frame, horizon=1)
    for key, method in (("ic", "pearson"), ("rank_ic", "spearman")):
        s = daily_ic(frame, method)
        assert m[key] == pytest.approx(s.mean())
        assert m[f"{key}ir"] == pytest.approx(s.mean() / s.std(ddof=1))
        # the headline t and p are the calibrated HAR ones
        har = mean_test(s.to_numpy(), 1)
        assert m[f"{key}_t"] == pytest.approx(har.t) and m[f"{key}_p"] == pytest.approx(har.p)
        # Horizon 1: no overlap, zero lags, the Newey-West t is the plain one.
        assert m[f"{key}_t_newey_west"] == pytest.approx(s.mean() / s.std(ddof=1) * math.sqrt(60), rel=1e-12)
    assert m["ic_dates"] == 60
    assert not any("tstat" in k for k in m)  # one t per series under the headline name, no uncalibrated "t-stat"


def test_har_and_newey_west_t_shrink_for_autocorrelated_ic(rng):
    frame = _autocorrelated_ic_frame(rng, 250)
    s = daily_ic(frame).to_numpy()
    assert np.corrcoef(s[1:], s[:-1])[0, 1] > 0.5  # the premise: strongly autocorrelated ICs
    m = ic_metrics(frame, horizon=20)
    for key, method in (("ic", "pearson"), ("rank_ic", "spearman")):
        x = daily_ic(frame, method).to_numpy()
        plain = x.mean() / x.std(ddof=1) * math.sqrt(len(x))
        for t in (m[f"{key}_t"], m[f"{key}_t_newey_west"]):
            assert abs(t) < 0.6 * abs(plain) and np.sign(t) == np.sign(plain)
        assert 0.0 < m[f"{key}_p"] <= 1.0


def test_newey_west_matches_statsmodels(rng):
    sm = pytest.importorskip("statsmodels.api")
    frame = _autocorrelated_ic_frame(rng, 120)
    s = daily_ic(frame).to_numpy()
    fit = sm.OLS(s, np.ones_like(s)).fit(cov_type="HAC", cov_kwds={"maxlags": 4, "use_correction": True})
    assert ic_metrics(frame, horizon=5)["ic_t_newey_west"] == pytest.approx(fit.tvalues[0], rel=1e-10)


def test_ic_metrics_undefined_values_are_none():
    one_date = _ic_frame({"2024-01-02": TOY["2024-01-02"]})
    m = ic_metrics(one_date, horizon=5)
    assert m["ic"] == pytest.approx(0.8) and m["ic_dates"] == 1
    assert m["icir"] is None and m["ic_t"] is None and m["ic_p"] is None and m["ic_t_newey_west"] is None
    # Two dates with the same IC: zero std.
    same = _ic_frame({"2024-01-02": TOY["2024-01-02"], "2024-01-03": TOY["2024-01-02"]})
    assert ic_metrics(same, horizon=1)["rank_icir"] is None
    empty = _ic_frame({"2024-01-04": TOY["2024-01-04"]})  # only a constant date
    m = ic_metrics(empty, horizon=1)
    assert m["ic_dates"] == 0
    assert all(v is None for k, v in m.items() if k != "ic_dates")


# ----------------------------------------------------------------------------- trading

CAL = pd.bdate_range("2024-01-01", periods=6)  # d0 .. d5
RETURNS = pd.DataFrame(
    [
        [0.01, 0.02, -0.01],
        [0.02, -0.01, 0.03],
        [-0.02, 0.04, np.nan],
        [0.01, 0.00, 0.02],
        [0.03, 0.01, 0.00],
        [np.nan, np.nan, np.nan],
    ],
    index=CAL.rename("datetime"),
    columns=["a", "b", "c"],
)


def _preds(rows: dict[pd.Timestamp, list[float]], symbols=("a", "b", "c")) -> pd.DataFrame:
    return pd.DataFrame([{"datetime": d, "symbol": s, "score": v} for d, scores in rows.items() for s, v in zip(symbols, scores)])


def test_book_hand_checked():
    # d0: scores (1, 0, -1) -> w0 = (.5, 0, -.5); d1: (0, 0, 3) -> mean 1, w1 = (-1, -1, 2) / 4.
    frame = _preds({CAL[0]: [1, 0, -1], CAL[1]: [0, 0, 3]}).iloc[::-1]
    book = long_short_book(frame, RETURNS, horizon=2, entry_lag=1, cost_bps=10.0)
    # pos_t = (w_{t-1} + w_{t-2}) / 2: d0 0; d1 (.25, 0, -.25); d2 (.125, -.125, 0); d3 (-.125, -.125, .25).
    # Rows: d0 through d1 + entry_lag + h - 1 = d3.
    pd.testing.assert_index_equal(book.index, RETURNS.index[:4])
    assert list(book.columns) == ["gross", "cost", "net", "turnover", "bench", "exposure"]
    gross = [0.0, 0.25 * 0.02 - 0.25 * 0.03, 0.125 * -0.02 - 0.125 * 0.04, -0.125 * 0.01 + 0.25 * 0.02]
    turnover = [0.0, 0.5, 0.125 + 0.125 + 0.25, 0.25 + 0.0 + 0.25]
    np.testing.assert_allclose(book["gross"], gross, atol=1e-15)
    np.testing.assert_allclose(book["turnover"], turnover, atol=1e-15)
    np.testing.assert_allclose(book["cost"], np.array(turnover) * 1e-3, atol=1e-15)
    np.testing.assert_allclose(book["net"], [0.0, -0.003, -0.008, 0.00325], atol=1e-15)
    np.testing.assert_allclose(book["exposure"], [0.0, 0.5, 0.25, 0.5], atol=1e-15)
    np.testing.assert_allclose(book["bench"], [0.02 / 3, 0.04 / 3, 0.01, 0.01], atol=1e-15)


def test_book_clipped_at_calendar_end_and_entry_lag_zero():
    frame = _preds({CAL[4]: [1, 0, -1]})
    book = long_short_book(frame, RETURNS, horizon=3, entry_lag=0, cost_bps=0.0)
    pd.testing.assert_index_equal(book.index, RETURNS.index[4:])  # d4 + 2 > d5: clipped
    # entry_lag 0: held from d4 itself, earning d4's returns at 1/3 weight.
    assert book["gross"].iloc[0] == pytest.approx((0.5 * 0.03 - 0.5 * 0.0) / 3)
    assert book["bench"].isna().iloc[-1]  # no finite return on the last bar


def test_book_turnover_on_the_first_calendar_bar():
    # Entering on the calendar's first bar is a trade from flat: turnover = the exposure.
    frame = _preds({CAL[0]: [1, 0, -1]})
    book = long_short_book(frame, RETURNS, horizon=2, entry_lag=0, cost_bps=10.0)
    np.testing.assert_allclose(book["turnover"], [0.5, 0.0])
    np.testing.assert_allclose(book["cost"], [0.5e-3, 0.0])
    np.testing.assert_allclose(book["exposure"], [0.5, 0.5])


def _random_world(rng, n_dates=300, n_symbols=20):
    cal = pd.bdate_range("2020-01-01", periods=n_dates)
    rets = pd.DataFrame(rng.normal(0.0003, 0.01, (n_dates, n_symbols)), index=cal.rename("datetime"), columns=[f"s{i}" for i in range(n_symbols)])
    return rets


def _foresight(rets: pd.DataFrame, horizon: int, entry_lag: int) -> pd.DataFrame:
    """Score at d = the return the tranche decided at d will earn (bars d+lag .. d+lag+h-1)."""
    future = sum(rets.shift(-k) for k in range(entry_lag, entry_lag + horizon))
    long = future.stack().rename("score").reset_index()
    return long.rename(columns={"level_1": "symbol"}).dropna()


def test_book_dollar_neutral_and_perfect_foresight(rng):
    rets = _random_world(rng)
    frame = _foresight(rets, horizon=5, entry_lag=1)
    book = long_short_book(frame, rets, horizon=5, entry_lag=1, cost_bps=5.0)
    flipped = long_short_book(frame.assign(score=-frame["score"]), rets, horizon=5, entry_lag=1, cost_bps=5.0)
    assert (book["exposure"] <= 1 + 1e-12).all()
    assert book["exposure"].iloc[10:-10].min() > 0.5
    assert (book["net"] > 0).mean() > 0.9
    assert trading_metrics(book, 252)["sharpe"] > 5
    assert trading_metrics(flipped, 252)["sharpe"] < -5
    np.testing.assert_allclose(flipped["turnover"], book["turnover"])  # same trades, mirrored


def test_book_positions_are_dollar_neutral(rng):
    rets = _random_world(rng, n_dates=40, n_symbols=7)
    frame = rets.stack().rename("ret").reset_index().rename(columns={"level_1": "symbol"})
    frame["score"] = rng.normal(size=len(frame))
    frame = frame.sample(frac=0.7, random_state=1)  # ragged cross-sections, shuffled rows
    # A unit return on every symbol: a dollar-neutral book earns exactly 0 gross, every day.
    ones = pd.DataFrame(1.0, index=rets.index, columns=rets.columns)
    book = long_short_book(frame, ones, horizon=3, entry_lag=1, cost_bps=0.0)
    np.testing.assert_allclose(book["gross"], 0.0, atol=1e-12)
    assert book["exposure"].max() > 0.5


def test_book_constant_scores_zero_exposure():
    # 0.1 and 0.7: equal scores whose float mean differs from them in the last bit.
    frame = _preds({CAL[0]: [0.1, 0.1, 0.1], CAL[1]: [0.7, 0.7, 0.7]})
    book = long_short_book(frame, RETURNS, horizon=2, entry_lag=1, cost_bps=10.0)
    assert len(book) == 4
    assert (book[["exposure", "turnover", "net"]] == 0).all().all()
    m = trading_metrics(book, 252)
    assert m["sharpe"] is None and m["win_rate"] is None
    assert m["annual_return"] == 0.0 and m["max_drawdown"] == 0.0


@pytest.mark.parametrize(
    ("frame", "kwargs", "match"),
    [
        (_preds({pd.Timestamp("2023-12-29"): [1, 2, 3]}), {}, "missing from next_returns"),
        (pd.concat([_preds({CAL[0]: [1, 2, 3]})] * 2), {}, r"duplicate \(symbol, datetime\)"),
        (_preds({CAL[0]: [1, 2, 3]}), {"horizon": 0}, "horizon >= 1"),
    ],
)
def test_book_bad_input(frame, kwargs, match):
    args = {"horizon": 2, "entry_lag": 1, "cost_bps": 0.0} | kwargs
    with pytest.raises(ValueError, match=match):
        long_short_book(frame, RETURNS, **args)


def test_trading_metrics_hand_series():
    net = [0.01, -0.02, 0.03, -0.01, -0.015, 0.02]
    book = pd.DataFrame(
        {
            "net": net,
            "turnover": [1.0, 0.0, 0.5, 0.5, 0.0, 0.0],
            "exposure": [1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
            "bench": [0.01, 0.01, np.nan, 0.03, 0.0, 0.01],
        }
    )
    m = trading_metrics(book, 252)
    # cumsum .01 -.01 .02 .01 -.005 .015; running max .01 .01 .02 .02 .02 .02
    assert m["max_drawdown"] == pytest.approx(-0.025)
    assert m["win_rate"] == pytest.approx(2 / 5)  # day 2 has no exposure and does not count
    assert m["turnover"] == pytest.approx(2 / 6)
    assert m["days"] == 6
    assert m["annual_return"] == pytest.approx(np.mean(net) * 252)
    assert m["sharpe"] == pytest.approx(np.mean(net) / np.std(net, ddof=1) * math.sqrt(252))
    bench = [0.01, 0.01, 0.03, 0.0, 0.01]  # the NaN day is skipped
    assert m["bench_annual_return"] == pytest.approx(np.mean(bench) * 252)
    assert m["bench_sharpe"] == pytest.approx(np.mean(bench) / np.std(bench, ddof=1) * math.sqrt(252))


def test_trading_metrics_empty_book():
    no_preds = pd.DataFrame({"datetime": pd.Series(dtype="datetime64[ns]"), "symbol": pd.Series(dtype=object), "score": pd.Series(dtype=float)})
    book = long_short_book(no_preds, RETURNS, horizon=2, entry_lag=1, cost_bps=0.0)
    assert len(book) == 0 and list(book.columns) == ["gross", "cost", "net", "turnover", "bench", "exposure"]
    m = trading_metrics(book, 252)
    assert m["days"] == 0
    assert all(v is None for k, v in m.items() if k != "days")


def test_next_bar_returns():
    d = pd.bdate_range("2024-01-01", periods=4)
    bars = pd.DataFrame(
        {
            "symbol": ["a", "a", "a", "b", "b", "b"],
            "datetime": [d[0], d[1], d[2], d[0], d[2], d[3]],  # b has no bar on d1
            "close": [10.0, 11.0, 9.9, 20.0, 22.0, 11.0],
        }
    )
    wide = next_bar_returns(bars)
    pd.testing.assert_index_equal(wide.index, d.rename("datetime"))
    assert list(wide.columns) == ["a", "b"]
    np.testing.assert_allclose(wide["a"], [0.1, -0.1, np.nan, np.nan])
    # b: d0 -> its next bar d2 (+10%), nothing on d1, d2 -> d3 (-50%), NaN on its last bar.
    np.testing.assert_allclose(wide["b"], [0.1, np.nan, -0.5, np.nan])
    with pytest.raises(ValueError, match="not sorted"):
        next_bar_returns(bars.iloc[::-1])
