"""Real US market data that ships inside installed packages and loads offline.

Bars:
- ``sp500_large_caps`` (default): 20 S&P 500 large caps, adjusted daily closes, 1990-2022
  (``skfolio.datasets.load_sp500_dataset``). Close only.
- ``us_ohlcv``: real OHLCV for the S&P 500 and NASDAQ Composite indices (``arch.data``,
  1999-2018) and Microsoft (``pmdarima.datasets.load_msft``, 1986-2017), so the high/low
  indicators (ATR, ADX, CCI, stochastic) run on real data.

Context (market-wide series by date):
- market: S&P 500 index close (skfolio, 1990-2022), daily;
- oil: WTI spot (arch.data.wti), daily;
- credit_spread: Moody's BAA - AAA yield, monthly averages (arch.data.default);
- core_cpi: US core CPI, monthly (arch.data.core_cpi), used as year-over-year and 3-month
  annualised inflation;
- vix: CBOE volatility index (arch.data.vix), daily, only 2014-2019, so it is off by default.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Loaded:
    """A frame plus where it came from, for the manifest."""

    frame: pd.DataFrame
    package: str
    loader: str

    def provenance(self) -> dict:
        return {"package": self.package, "version": importlib.metadata.version(self.package), "loader": self.loader}


def _quiet(fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def _skfolio_prices() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    return _quiet(load_sp500_dataset)


def load_sp500_large_caps() -> list[Loaded]:
    """20 large caps, adjusted close only, long format."""
    wide = _skfolio_prices()
    wide.index.name = "datetime"
    long = wide.reset_index().melt(id_vars="datetime", var_name="symbol", value_name="close").dropna(subset=["close"])
    return [Loaded(long, "skfolio", "skfolio.datasets.load_sp500_dataset")]


def _arch_ohlcv(module: str, symbol: str) -> Loaded:
    import importlib

    df = _quiet(importlib.import_module(f"arch.data.{module}").load)
    df = df.rename(columns=str.lower)
    # Index data: 'adj close' equals 'close'; keep the adjusted one for consistency.
    factor = df["adj close"] / df["close"]
    out = pd.DataFrame(
        {
            "symbol": symbol,
            "datetime": df.index,
            "open": df["open"] * factor,
            "high": df["high"] * factor,
            "low": df["low"] * factor,
            "close": df["adj close"],
            "volume": df["volume"].astype(np.float64),
        }
    ).reset_index(drop=True)
    return Loaded(out, "arch", f"arch.data.{module}.load")


def _msft() -> Loaded:
    from pmdarima.datasets import load_msft

    df = _quiet(load_msft)
    out = pd.DataFrame(
        {
            "symbol": "MSFT",
            "datetime": pd.to_datetime(df["Date"]),
            "open": df["Open"],
            "high": df["High"],
            "low": df["Low"],
            "close": df["Close"],
            "volume": df["Volume"].astype(np.float64),
        }
    )
    return Loaded(out, "pmdarima", "pmdarima.datasets.load_msft")


def load_us_ohlcv() -> list[Loaded]:
    """S&P 500 and NASDAQ Composite index OHLCV plus MSFT OHLCV."""
    return [_arch_ohlcv("sp500", "SPX"), _arch_ohlcv("nasdaq", "IXIC"), _msft()]


DATASETS: dict[str, Callable[[], list[Loaded]]] = {
    "sp500_large_caps": load_sp500_large_caps,
    "us_ohlcv": load_us_ohlcv,
}


# ---- context series ---------------------------------------------------------------------------
# Each loader returns a Loaded whose frame has 'datetime' (the observation stamp) plus value
# columns, and whether the series is monthly (stamped at the month start, published later).


def _series(loader_path: str, column: str, name: str) -> Loaded:
    import importlib

    module, fn = loader_path.rsplit(".", 1)
    df = _quiet(getattr(importlib.import_module(module), fn))
    s = df[column].dropna()
    return Loaded(pd.DataFrame({"datetime": s.index, name: s.to_numpy(dtype=np.float64)}), module.split(".")[0], loader_path)


def load_market() -> Loaded:
    from skfolio.datasets import load_sp500_index

    df = _quiet(load_sp500_index)
    return Loaded(
        pd.DataFrame({"datetime": df.index, "market": df["SP500"].to_numpy(dtype=np.float64)}),
        "skfolio",
        "skfolio.datasets.load_sp500_index",
    )


def load_oil() -> Loaded:
    return _series("arch.data.wti.load", "DCOILWTICO", "oil")


def load_vix() -> Loaded:
    return _series("arch.data.vix.load", "vix", "vix")


def load_credit_spread() -> Loaded:
    loaded = _series("arch.data.default.load", "BAA", "baa")
    aaa = _series("arch.data.default.load", "AAA", "aaa").frame
    df = loaded.frame.merge(aaa, on="datetime")
    return Loaded(pd.DataFrame({"datetime": df["datetime"], "credit_spread": df["baa"] - df["aaa"]}), loaded.package, loaded.loader)


def load_core_cpi() -> Loaded:
    """Monthly core CPI turned into inflation rates on the monthly grid (before any join)."""
    loaded = _series("arch.data.core_cpi.load", "CPILFESL", "cpi")
    cpi = loaded.frame.set_index("datetime")["cpi"]
    out = pd.DataFrame(
        {
            "datetime": cpi.index,
            "core_cpi_yoy": (cpi / cpi.shift(12) - 1.0).to_numpy(),
            "core_cpi_3m_ann": ((cpi / cpi.shift(3)) ** 4 - 1.0).to_numpy(),
        }
    ).dropna()
    return Loaded(out, loaded.package, loaded.loader)


CONTEXT_SERIES: dict[str, tuple[Callable[[], Loaded], bool]] = {
    # name: (loader, is_monthly)
    "market": (load_market, False),
    "oil": (load_oil, False),
    "credit_spread": (load_credit_spread, True),
    "core_cpi": (load_core_cpi, True),
    "vix": (load_vix, False),
}
