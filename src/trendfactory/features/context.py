"""Context-tower features `ctx_*`: market, macro and cross-sectional breadth, per datetime.

Computed once on the calendar of bar datetimes, then joined to every symbol-row by datetime.
Everything at time t uses series values known at t (the ingest as-of join already applied the
publication lags) and the universe's bars at t and before. The cross-sectional (breadth)
features are defined on dates where a single symbol trades, too: its own share above the MA
or up, and a dispersion of 0, so a thinned-out universe loses no rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.params import FeaturesConfig


@dataclass
class ContextFeatures:
    frame: pd.DataFrame  # index = bars.index, ctx_* float64 columns
    groups: dict[str, list[str]]  # "market" | "macro" | "breadth" -> columns


def _market_block(level: pd.Series, prefix: str, lookbacks: tuple[int, ...]) -> dict[str, pd.Series]:
    """Returns, realised volatility and drawdown of an index level series on the calendar."""
    logret = np.log(level).diff()
    out = {}
    for n in lookbacks:
        out[f"{prefix}_ret_{n}"] = np.log(level / level.shift(n))
        if n >= 5:
            out[f"{prefix}_vol_{n}"] = logret.rolling(n, min_periods=n).std()
            out[f"{prefix}_dd_{n}"] = level / level.rolling(n, min_periods=n).max() - 1.0
    return out


def _breadth_block(bars: pd.DataFrame, lookbacks: tuple[int, ...]) -> dict[str, pd.Series]:
    """Equal-weight universe return, breadth (share above MA / up) and return dispersion."""
    by_sym = bars.groupby("symbol", sort=False)["close"]
    logret = np.log(bars["close"]).groupby(bars["symbol"], sort=False).diff()
    out: dict[str, pd.Series] = {}
    dt = bars["datetime"]
    # Equal-weight index: mean 1-bar log return across symbols each datetime, cumulated.
    ew = logret.groupby(dt).mean().sort_index().fillna(0.0)
    ew_level = np.exp(ew.cumsum())
    out.update(_market_block(ew_level, "ctx_ew", lookbacks))
    for n in lookbacks:
        if n < 5:
            continue
        ret_n = np.log(bars["close"] / by_sym.shift(n))
        ma_n = by_sym.transform(lambda s, n=n: s.rolling(n, min_periods=n).mean())
        above = (bars["close"] > ma_n).astype(np.float64).where(ma_n.notna())
        out[f"ctx_breadth_above_ma_{n}"] = above.groupby(dt).mean()
        out[f"ctx_breadth_up_{n}"] = (ret_n > 0).astype(np.float64).where(ret_n.notna()).groupby(dt).mean()
        out[f"ctx_dispersion_{n}"] = _dispersion(ret_n, dt)
    return out


def _dispersion(ret_n: pd.Series, dt: pd.Series) -> pd.Series:
    """Cross-sectional std of ``ret_n`` per datetime; 0 where one symbol has a value.

    A sample std of one value is undefined (NaN), which would drop every window of that
    symbol ending within seq_len bars of the date (a universe thinned to one symbol by IPOs,
    delistings or another exchange's holiday). One return has no spread: 0 is its dispersion.
    Dates where two or more symbols have a value are unchanged; none stays NaN (warm-up)."""
    by_date = ret_n.groupby(dt)
    return by_date.std().mask(by_date.count() == 1, 0.0)


def compute_context_features(bars: pd.DataFrame, context: pd.DataFrame, cfg: FeaturesConfig) -> ContextFeatures:
    """ctx_* columns for each bar row. `context` = ingest's frame ('datetime' + series columns)."""
    lookbacks = tuple(sorted(set(cfg.context_lookbacks)))
    cal = context.set_index("datetime").sort_index()
    groups: dict[str, list[str]] = {"market": [], "macro": [], "breadth": []}
    cols: dict[str, pd.Series] = {}

    if "market" in cal.columns:
        block = _market_block(cal["market"], "ctx_mkt", lookbacks)
        cols.update(block)
        groups["market"] += list(block)
    if "vix" in cal.columns:
        cols["ctx_vix"] = cal["vix"] / 100.0
        cols["ctx_vix_chg_5"] = cal["vix"].diff(5) / 100.0
        groups["market"] += ["ctx_vix", "ctx_vix_chg_5"]
    if "oil" in cal.columns:
        for n in lookbacks:
            if n >= 5:
                cols[f"ctx_oil_ret_{n}"] = np.log(cal["oil"] / cal["oil"].shift(n))
                groups["macro"].append(f"ctx_oil_ret_{n}")
    if "credit_spread" in cal.columns:
        cols["ctx_credit_spread"] = cal["credit_spread"]
        cols["ctx_credit_spread_chg_60"] = cal["credit_spread"].diff(60)
        groups["macro"] += ["ctx_credit_spread", "ctx_credit_spread_chg_60"]
    for name in ("core_cpi_yoy", "core_cpi_3m_ann"):
        if name in cal.columns:
            cols[f"ctx_{name}"] = cal[name]
            groups["macro"].append(f"ctx_{name}")

    breadth = _breadth_block(bars, lookbacks)
    cols.update(breadth)
    groups["breadth"] += list(breadth)

    per_date = pd.DataFrame(cols).sort_index()
    per_date = per_date.reindex(pd.DatetimeIndex(bars["datetime"].unique()).sort_values())
    # [N rows] <- [dates]: every symbol-row gets its datetime's context values.
    joined = per_date.reindex(bars["datetime"].to_numpy())
    joined.index = bars.index
    frame = joined.astype(np.float64)
    return ContextFeatures(frame=frame, groups={g: c for g, c in groups.items() if c})
