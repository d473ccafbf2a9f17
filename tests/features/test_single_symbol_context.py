"""Cross-sectional context on dates where only one symbol trades (a ragged universe: IPOs,
delistings, another exchange's holidays): defined there, so that symbol loses no window; on
dates with several symbols, exactly the cross-sectional statistics they were before."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trendfactory.data.synthetic import generate_bars
from trendfactory.features.context import compute_context_features
from trendfactory.params import FeaturesConfig, SyntheticConfig

LOOKBACKS = (5, 20)
CFG = FeaturesConfig(context_lookbacks=LOOKBACKS)


def ragged_bars() -> pd.DataFrame:
    """SYN000 trades 120 days; SYN001 and SYN002 only its first 70 (delisted), and SYN002 skips
    days 30..34 (its exchange's holiday): days 30..34 and 70..119 have SYN000 and at most one other."""
    bars = generate_bars(SyntheticConfig(n_symbols=3, n_bars=120, ohlcv=False), seed=11)
    day = bars.groupby("symbol").cumcount()
    keep = (bars["symbol"] == "SYN000") | (day < 70)
    keep &= ~((bars["symbol"] == "SYN002") & day.between(30, 34))
    return bars[keep].reset_index(drop=True)


def features(bars: pd.DataFrame) -> pd.DataFrame:
    context = pd.DataFrame({"datetime": np.sort(bars["datetime"].unique())})
    return compute_context_features(bars, context, CFG).frame


def plain_std(bars: pd.DataFrame, n: int) -> pd.Series:
    """The old definition: sample std over symbols per date, per bar row."""
    ret_n = np.log(bars["close"] / bars.groupby("symbol")["close"].shift(n))
    return pd.Series(ret_n.groupby(bars["datetime"]).std().reindex(bars["datetime"].to_numpy()).to_numpy(), index=bars.index)


def test_dispersion_is_zero_where_one_symbol_has_a_return():
    bars = ragged_bars()
    frame = features(bars)
    lone = bars["datetime"].map(bars.groupby("datetime")["symbol"].size()) == 1
    assert lone.sum() == 50  # SYN000's days 70..119
    for n in LOOKBACKS:
        col = frame[f"ctx_dispersion_{n}"]
        assert (col[lone] == 0.0).all()
        assert col[bars.groupby("symbol").cumcount() >= n].notna().all()  # no row lost after the warm-up


def test_breadth_on_a_lone_date_is_the_one_symbols_own():
    bars = ragged_bars()
    frame = features(bars)
    lone = (bars["datetime"].map(bars.groupby("datetime")["symbol"].size()) == 1).to_numpy()
    close = bars["close"]
    ret_20 = np.log(close / close.groupby(bars["symbol"]).shift(20))
    np.testing.assert_array_equal(frame["ctx_breadth_up_20"][lone], (ret_20[lone] > 0).astype(float))
    assert frame.loc[lone, [c for c in frame.columns if c.startswith("ctx_ew_")]].notna().all().all()


def test_every_context_column_is_complete_on_lone_dates_after_warm_up():
    bars = ragged_bars()
    frame = features(bars)
    warm = bars.groupby("symbol").cumcount() >= max(LOOKBACKS)
    assert frame[warm].notna().all().all(), frame[warm].isna().sum()[lambda s: s > 0].to_dict()


def test_dates_with_several_symbols_keep_the_plain_cross_sectional_std(synthetic_bars):
    for bars in (synthetic_bars, ragged_bars()):
        frame = features(bars)
        several = bars["datetime"].map(bars.groupby("datetime")["symbol"].size()) > 1
        for n in LOOKBACKS:
            # bit-for-bit: the default multi-symbol data's features do not move
            np.testing.assert_array_equal(frame[f"ctx_dispersion_{n}"][several].to_numpy(), plain_std(bars, n)[several].to_numpy())
    assert (synthetic_bars.groupby("datetime")["symbol"].size() > 1).all()


def test_two_symbols_one_still_in_warm_up_is_a_lone_return():
    # SYN001 lists on day 60: for its first n days it has no n-bar return, so SYN000's is alone.
    bars = generate_bars(SyntheticConfig(n_symbols=2, n_bars=100, ohlcv=False), seed=3)
    day = bars.groupby("symbol").cumcount()
    bars = bars[(bars["symbol"] == "SYN000") | (day >= 60)].reset_index(drop=True)
    frame = features(bars)
    syn000 = (bars["symbol"] == "SYN000").to_numpy()
    day0 = bars.groupby("symbol").cumcount().to_numpy()
    for n in LOOKBACKS:
        col = frame[f"ctx_dispersion_{n}"].to_numpy()
        assert (col[syn000 & (day0 >= n) & (day0 < 60 + n)] == 0.0).all()
        assert (col[syn000 & (day0 >= 60 + n)] > 0.0).all()
