"""Context-tower features `ctx_*`: market, macro and cross-sectional breadth, per datetime.

Computed once on the calendar of bar datetimes (:func:`context_by_date`), then joined to every
symbol-row by datetime (:func:`join_context`), one chunk of symbols at a time if need be: the
breadth block comes from the whole universe's per-date aggregates
(:mod:`trendfactory.features.breadth`). Everything at time t uses series values known at t (the
ingest as-of join already applied the publication lags) and the universe's bars at t and
before. The cross-sectional (breadth) features are defined on dates where a single symbol
trades, too: its own share above the MA or up, and a dispersion of 0, so a thinned-out
universe loses no rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.features.breadth import BreadthStats, breadth_stats
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


def _breadth_block(stats: BreadthStats, lookbacks: tuple[int, ...]) -> dict[str, pd.Series]:
    """Equal-weight universe return, breadth (share above MA / up) and return dispersion."""
    out: dict[str, pd.Series] = {}
    # Equal-weight index: mean 1-bar log return across symbols each datetime, cumulated.
    ew = stats.ew_return().sort_index().fillna(0.0)
    ew_level = np.exp(ew.cumsum())
    out.update(_market_block(ew_level, "ctx_ew", lookbacks))
    for n in stats.lookbacks:
        out[f"ctx_breadth_above_ma_{n}"] = stats.share_above_ma(n)
        out[f"ctx_breadth_up_{n}"] = stats.share_up(n)
        out[f"ctx_dispersion_{n}"] = stats.dispersion(n)
    return out


@dataclass
class ContextByDate:
    """Every ctx_* column per datetime of the universe (before the join to bar rows)."""

    frame: pd.DataFrame  # index = datetime (sorted), ctx_* columns
    groups: dict[str, list[str]]  # "market" | "macro" | "breadth" -> columns


def context_by_date(context: pd.DataFrame, breadth: BreadthStats, cfg: FeaturesConfig) -> ContextByDate:
    """ctx_* per datetime from ingest's ``context`` frame ('datetime' + series columns) and the
    universe's cross-sectional aggregates ``breadth``."""
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

    block = _breadth_block(breadth, lookbacks)
    cols.update(block)
    groups["breadth"] += list(block)
    return ContextByDate(frame=pd.DataFrame(cols).sort_index(), groups={g: c for g, c in groups.items() if c})


def join_context(by_date: ContextByDate, bars: pd.DataFrame) -> ContextFeatures:
    """[N rows] <- [dates]: every row of ``bars`` (the universe or a chunk of it) gets its
    datetime's context values."""
    joined = by_date.frame.reindex(bars["datetime"].to_numpy())
    joined.index = bars.index
    return ContextFeatures(frame=joined.astype(np.float64), groups=by_date.groups)


def compute_context_features(bars: pd.DataFrame, context: pd.DataFrame, cfg: FeaturesConfig) -> ContextFeatures:
    """ctx_* columns for each bar row, ``bars`` being the whole universe. `context` = ingest's
    frame ('datetime' + series columns)."""
    return join_context(context_by_date(context, breadth_stats(bars, cfg.context_lookbacks), cfg), bars)
