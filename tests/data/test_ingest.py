"""Ingest from every source: real embedded data, a user's CSV, the synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.data.ingest import run_ingest
from trendfactory.data.synthetic import generate_bars
from trendfactory.params import DataConfig, SyntheticConfig


def test_embedded_default_is_real_sp500_large_caps_with_context():
    res = run_ingest(DataConfig(), seed=0)
    m = res.manifest
    assert m["n_symbols"] == 20 and "AAPL" in m["symbols"] and "XOM" in m["symbols"]
    assert m["start"].startswith("1990-01-02") and m["end"].startswith("2018-12-31")
    assert m["provenance"]["loaders"][0]["loader"] == "skfolio.datasets.load_sp500_dataset"
    assert m["provenance"]["loaders"][0]["version"]
    assert not m["has_high_low"]
    assert list(res.bars.columns) == ["symbol", "datetime", "close"]
    assert res.bars.groupby("symbol")["datetime"].is_monotonic_increasing.all()
    ctx = res.context
    assert {"market", "oil", "credit_spread", "core_cpi_yoy"} <= set(ctx.columns)
    assert len(ctx) == res.bars["datetime"].nunique()
    assert m["context"]["core_cpi"]["release_lag_days"] == 45
    # Real values: BAA-AAA spread spiked in the 2008 crisis.
    spread = ctx.set_index("datetime")["credit_spread"]
    assert spread["2009-03-02"] > 2.5 > spread["2006-06-01"]


def test_embedded_ohlcv_has_high_low_and_volume():
    res = run_ingest(DataConfig(dataset="us_ohlcv", context="none"), seed=0)
    assert res.manifest["has_high_low"] and res.manifest["has_volume"]
    assert sorted(res.manifest["symbols"]) == ["IXIC", "MSFT", "SPX"]
    b = res.bars
    assert (b["high"] >= b["low"]).all()


def test_synthetic_is_seeded_and_has_planted_signal_knob():
    cfg = SyntheticConfig(n_symbols=3, n_bars=50)
    a, b = generate_bars(cfg, seed=1), generate_bars(cfg, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_bars(cfg, seed=2)["close"].equals(a["close"])
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all() and (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    res = run_ingest(DataConfig(source="synthetic", synthetic=cfg, start=None, end=None), seed=1)
    assert res.manifest["context_mode"] == "none" and list(res.context.columns) == ["datetime"]
    assert res.manifest["rows"] == 150


def test_csv_source_and_date_range(tmp_path):
    bars = generate_bars(SyntheticConfig(n_symbols=2, n_bars=30, ohlcv=False), seed=3)
    bars.rename(columns={"symbol": "Ticker", "datetime": "Date", "close": "Adj Close"}).to_csv(tmp_path / "b.csv", index=False)
    cfg = DataConfig(source="csv", path=str(tmp_path / "b.csv"), start="2000-01-10", end="2000-01-20")
    res = run_ingest(cfg, seed=0)
    assert res.bars["datetime"].min() == pd.Timestamp("2000-01-10")
    assert res.bars["datetime"].max() == pd.Timestamp("2000-01-20")
    np.testing.assert_allclose(res.bars["close"].to_numpy()[:1], bars[bars["datetime"] == "2000-01-10"]["close"].to_numpy()[:1])


def test_empty_date_range_is_a_clear_error():
    from trendfactory.errors import DataValidationError

    with pytest.raises(DataValidationError, match="no rows between data.start 2030-01-01"):
        run_ingest(DataConfig(start="2030-01-01", end="2031-01-01"), seed=0)
