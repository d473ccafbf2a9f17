"""Packing, the stock-feature frame (names, groups, warm-ups, skips), TA-Lib parity of the
features, and no look-ahead (leakage rule 1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from trendfactory.errors import DataValidationError, ParamsError
from trendfactory.features.packing import pack
from trendfactory.features.stock import (
    GROUPS,
    compute_stock_features,
    feature_warmups,
    resolve_device,
    warmup_bars,
)
from trendfactory.params import FeaturesConfig

talib = pytest.importorskip("talib")

CFG = FeaturesConfig(device="cpu")


def make_bars(lengths, seed=0, close_only=False, shuffle=False):
    """Long-format seeded OHLCV bars, symbols of different lengths, sorted (symbol, datetime)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(lengths):
        c = rng.uniform(10, 300) * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        o = c * np.exp(rng.normal(0, 0.005, n))
        frame = {
            "symbol": f"SYM{i}",
            "datetime": pd.bdate_range("2001-01-01", periods=n) + pd.Timedelta(days=7 * i),
            "close": c,
        }
        if not close_only:
            frame["open"] = o
            frame["high"] = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.01, n)))
            frame["low"] = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
            frame["volume"] = np.exp(rng.normal(12, 1, n)).round()
        frames.append(pd.DataFrame(frame))
    bars = pd.concat(frames, ignore_index=True)
    bars = bars.sort_values(["symbol", "datetime"], kind="stable").reset_index(drop=True)
    if shuffle:
        bars = bars.sample(frac=1.0, random_state=seed)
    return bars


@pytest.fixture(scope="module")
def bars():
    return make_bars([420, 260, 333, 205], seed=1)


@pytest.fixture(scope="module")
def feats(bars):
    return compute_stock_features(bars, CFG)


# ----------------------------------------------------------------------------------------------
# packing
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True], ids=["sorted", "shuffled"])
def test_pack_round_trip(shuffle):
    bars = make_bars([50, 7, 31], seed=2, shuffle=shuffle)
    p = pack(bars, ["close", "volume"])
    assert p.symbols == ["SYM0", "SYM1", "SYM2"]
    assert p.lengths.tolist() == [50, 7, 31]
    c = p.tensors["close"]
    assert c.shape == (3, 50) and c.dtype == torch.float64
    # left-aligned, NaN-padded at the end, in time order
    for s, sym in enumerate(p.symbols):
        rows = bars[bars["symbol"] == sym].sort_values("datetime")
        n = len(rows)
        np.testing.assert_array_equal(c[s, :n].numpy(), rows["close"].to_numpy())
        assert torch.isnan(c[s, n:]).all()
    # unpack returns the values in the original row order
    np.testing.assert_array_equal(p.unpack(c), bars["close"].to_numpy())
    np.testing.assert_array_equal(p.unpack(p.tensors["volume"]), bars["volume"].to_numpy())
    p32 = pack(bars, ["close"], dtype=torch.float32)
    assert p32.tensors["close"].dtype == torch.float32


def test_pack_errors():
    bars = make_bars([5], close_only=True)
    with pytest.raises(DataValidationError, match="missing column"):
        pack(bars, ["close", "high"])
    with pytest.raises(DataValidationError, match="'symbol'"):
        pack(bars.drop(columns="symbol"), ["close"])


# ----------------------------------------------------------------------------------------------
# the frame
# ----------------------------------------------------------------------------------------------


def test_frame_layout(bars, feats):
    f = feats.frame
    assert f.index.equals(bars.index)
    assert all(c.startswith("stk_") for c in f.columns)
    assert all(dt == np.float64 for dt in f.dtypes)
    assert set(feats.groups) == set(GROUPS)
    grouped = [c for g in GROUPS for c in feats.groups[g]]
    assert sorted(grouped) == sorted(f.columns) and len(grouped) == len(set(grouped))
    expected = (
        [f"stk_ret_{n}" for n in CFG.return_lookbacks]
        + [f"stk_ma_dist_{n}" for n in CFG.ma_windows]
        + [f"stk_vol_{n}" for n in CFG.vol_windows]
        + """stk_rsi stk_rsi_buy stk_rsi_sell stk_macd stk_macd_signal stk_macd_hist stk_bb_pctb
        stk_bb_width stk_cci stk_adx stk_plus_di stk_minus_di stk_atr stk_stoch_k stk_stoch_d
        stk_wt1 stk_wt2 stk_wt_cross stk_wt_buy stk_wt_sell stk_volume_z""".split()
    )
    assert sorted(f.columns) == sorted(expected)
    assert feats.skipped == {}
    assert "hlc3" in feats.notes["wavetrend"]
    # signal columns are 0/1 (wt_cross -1/0/+1) after their warm-up
    for col in ("stk_rsi_buy", "stk_rsi_sell", "stk_wt_buy", "stk_wt_sell"):
        assert set(np.unique(f[col].dropna())) <= {0.0, 1.0}
    assert set(np.unique(f["stk_wt_cross"].dropna())) <= {-1.0, 0.0, 1.0}
    assert f["stk_wt_cross"].abs().sum() > 0 and f["stk_rsi_buy"].sum() > 0


def test_row_order_and_chunking_do_not_matter(bars, feats, monkeypatch):
    """Shuffled rows give the same value per row; so does processing one symbol per chunk
    (equal-length symbols take the dense reshape path, the others the gather path)."""
    shuffled = bars.sample(frac=1.0, random_state=9)
    f = compute_stock_features(shuffled, CFG).frame
    assert f.index.equals(shuffled.index)
    np.testing.assert_allclose(f.loc[bars.index].to_numpy(), feats.frame.to_numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)
    from trendfactory.features import indicators

    monkeypatch.setattr(indicators, "CHUNK_ELEMENTS", 1)  # one symbol per chunk
    f1 = compute_stock_features(bars, CFG).frame
    np.testing.assert_allclose(f1.to_numpy(), feats.frame.to_numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)


def test_warmups_match_nan_prefix(bars, feats):
    """Each column is NaN for exactly its warm-up bars of every symbol and finite after."""
    wu = feature_warmups(CFG)
    assert set(wu) == set(feats.frame.columns)
    longest = 0
    for sym, g in feats.frame.groupby(bars["symbol"]):
        for col, lb in wu.items():
            v = g[col].to_numpy()
            assert np.isnan(v[:lb]).all(), (sym, col)
            assert np.isfinite(v[lb:]).all(), (sym, col)
            longest = max(longest, int(np.isnan(v).sum()))
    assert warmup_bars(CFG) == longest == max(wu.values())
    assert warmup_bars(CFG) == 199  # SMA(200) with the defaults


def test_close_only_skips_high_low_indicators():
    bars = make_bars([300, 250], seed=3, close_only=True)
    out = compute_stock_features(bars, CFG)
    cols = set(out.frame.columns)
    for name, col in [("cci", "stk_cci"), ("adx", "stk_adx"), ("plus_di", "stk_plus_di"), ("minus_di", "stk_minus_di"), ("atr", "stk_atr"), ("stoch", "stk_stoch_k")]:
        assert col not in cols
        assert "high/low" in out.skipped[name] and "close only" in out.skipped[name]
    assert "stk_volume_z" not in cols and "volume" in out.skipped["volume_z"]
    assert "close" in out.notes["wavetrend"]
    assert {"stk_rsi", "stk_macd", "stk_wt1", "stk_wt_buy", "stk_bb_pctb"} <= cols
    assert out.groups["volume"] == []
    # WaveTrend on close equals the TA-Lib chain on close
    c = bars.loc[bars["symbol"] == "SYM0", "close"].to_numpy()
    esa = talib.EMA(c, 10)
    wt1 = talib.EMA((c - esa) / (0.015 * talib.EMA(np.abs(c - esa), 10)), 21)
    ours = out.frame.loc[bars["symbol"] == "SYM0", "stk_wt1"].to_numpy()
    np.testing.assert_allclose(ours, wt1, rtol=1e-6, atol=1e-9 * 50, equal_nan=True)


def test_null_high_low_are_skipped_with_reason():
    bars = make_bars([260], seed=4)
    bars.loc[5, "high"] = np.nan
    out = compute_stock_features(bars, CFG)
    assert "stk_adx" not in out.frame.columns
    assert "missing values" in out.skipped["adx"]


def test_features_match_talib(bars, feats):
    """The scale-free features are TA-Lib's indicators over the same bars."""
    f = feats.frame
    for sym in ("SYM0", "SYM3"):
        m = (bars["symbol"] == sym).to_numpy()
        h, l, c, v = (bars.loc[m, k].to_numpy() for k in ("high", "low", "close", "volume"))
        g = f[m]
        r1 = np.diff(np.log(c), prepend=np.nan)
        macd, sig, hist = talib.MACD(c, 12, 26, 9)
        up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0)
        k, d = talib.STOCH(h, l, c, 14, 3, 0, 3, 0)
        lv = np.log1p(v)
        expected = {
            "stk_ret_5": np.log(c) - np.log(np.r_[np.full(5, np.nan), c[:-5]]),
            "stk_ma_dist_50": c / talib.SMA(c, 50) - 1,
            "stk_vol_20": talib.STDDEV(r1, 20),
            "stk_rsi": talib.RSI(c, 14),
            "stk_macd": macd / c,
            "stk_macd_signal": sig / c,
            "stk_macd_hist": hist / c,
            "stk_bb_pctb": (c - lo) / (up - lo),
            "stk_bb_width": (up - lo) / mid,
            "stk_cci": talib.CCI(h, l, c, 20),
            "stk_adx": talib.ADX(h, l, c, 14),
            "stk_plus_di": talib.PLUS_DI(h, l, c, 14),
            "stk_minus_di": talib.MINUS_DI(h, l, c, 14),
            "stk_atr": talib.ATR(h, l, c, 14) / c,
            "stk_stoch_k": k,
            "stk_stoch_d": d,
            "stk_volume_z": (lv - talib.SMA(lv, 20)) / talib.STDDEV(lv, 20),
        }
        for col, ref in expected.items():
            ours = g[col].to_numpy()
            scale = np.nanmedian(np.abs(ref))
            np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8 * scale, equal_nan=True, err_msg=col)
        rsi = talib.RSI(c, 14)
        buy = (rsi[:-1] <= CFG.rsi_oversold) & (rsi[1:] > CFG.rsi_oversold)
        np.testing.assert_array_equal(g["stk_rsi_buy"].to_numpy()[CFG.rsi_period + 1 :], buy[CFG.rsi_period :])


def test_no_look_ahead(bars, feats):
    """Perturbing or dropping every bar after t never changes any feature at rows <= t."""
    rng = np.random.default_rng(5)
    pos = bars.groupby("symbol").cumcount().to_numpy()
    cut = bars["symbol"].map({s: int(rng.integers(30, 200)) for s in bars["symbol"].unique()}).to_numpy()
    later = pos > cut
    noisy = bars.copy()
    for col in ("open", "high", "low", "close", "volume"):
        noisy.loc[later, col] = noisy.loc[later, col] * np.exp(rng.normal(0, 0.3, later.sum()))
    for other in (noisy, bars[~later]):
        f2 = compute_stock_features(other, CFG).frame
        keep = bars.index[~later]
        np.testing.assert_allclose(f2.loc[keep].to_numpy(), feats.frame.loc[keep].to_numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)


def test_real_data_sp500():
    arch_data = pytest.importorskip("arch.data.sp500")
    sp = arch_data.load()
    bars = pd.DataFrame(
        {
            "symbol": "SPX",
            "datetime": sp.index,
            "open": sp["Open"],
            "high": sp["High"],
            "low": sp["Low"],
            "close": sp["Close"],
            "volume": sp["Volume"],
        }
    ).reset_index(drop=True)
    out = compute_stock_features(bars, CFG).frame
    h, l, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    np.testing.assert_allclose(out["stk_adx"], talib.ADX(h, l, c), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(out["stk_cci"], talib.CCI(h, l, c, 20), rtol=1e-6, atol=1e-6, equal_nan=True)
    assert out.iloc[warmup_bars(CFG) :].notna().all().all()


# ----------------------------------------------------------------------------------------------
# device and dtype
# ----------------------------------------------------------------------------------------------


def test_resolve_device():
    dev, dtype = resolve_device(FeaturesConfig(device="cpu"))
    assert dev.type == "cpu" and dtype == torch.float64
    assert resolve_device(FeaturesConfig(device="cpu", dtype="float32"))[1] == torch.float32
    dev, dtype = resolve_device(FeaturesConfig())
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert dtype == (torch.float32 if torch.cuda.is_available() else torch.float64)
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match="features.device"):
            resolve_device(FeaturesConfig(device="cuda"))


def test_float32_close_to_float64(bars, feats):
    f32 = compute_stock_features(bars, dataclasses.replace(CFG, dtype="float32")).frame
    assert all(dt == np.float64 for dt in f32.dtypes)
    np.testing.assert_array_equal(f32.isna().to_numpy(), feats.frame.isna().to_numpy())
    for col in ("stk_rsi", "stk_adx", "stk_wt2", "stk_cci", "stk_stoch_d"):
        np.testing.assert_allclose(f32[col], feats.frame[col], rtol=1e-3, atol=1e-2, equal_nan=True, err_msg=col)
    for col in ("stk_macd", "stk_ma_dist_10", "stk_vol_20", "stk_ret_1"):
        np.testing.assert_allclose(f32[col], feats.frame[col], rtol=1e-3, atol=1e-5, equal_nan=True, err_msg=col)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(bars, feats):
    gpu = compute_stock_features(bars, dataclasses.replace(CFG, device="cuda", dtype="float64")).frame
    np.testing.assert_allclose(gpu.to_numpy(), feats.frame.to_numpy(), rtol=1e-9, atol=1e-9, equal_nan=True)
